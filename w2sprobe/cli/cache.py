"""``w2sprobe cache ls|rm|gc|verify``: what the workspace holds, removing it, and whether it is
intact.  The inventory itself is :mod:`w2sprobe.inventory`; this module only lays it out."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..options import Options
from .common import emit_json, layer_summary, stdout
from .help import App, completer
from .params import Control, options_command

app = App(
    help="List, remove, garbage-collect, verify, export and import cached artifacts.",
    no_args_is_help=True,
)

#: Printed as is: no markup, no highlighting, no wrapping at the terminal's width.
PLAIN = {"markup": False, "highlight": False, "soft_wrap": True}

#: Table title of each kind (``cache ls`` groups by kind in this order).
TITLES = {
    "acts": "activation files",
    "tokens": "token-level activation files",
    "runs": "runs",
    "labels": "label sets",
    "probes": "fitted probes",
    "sweeps": "sweeps",
    "reports": "reports",
}
#: The kinds, for help and completion (``w2sprobe.inventory.KINDS``, which imports h5py).
KINDS = tuple(TITLES)


@app.command("ls")
@options_command((), preset=False, inert=("seed", "device"))
def ls(
    opts: Options,
    ctl: Control,
    kind: Annotated[
        Optional[str],
        typer.Argument(
            metavar="KIND",
            help="acts, tokens, runs, labels, probes, sweeps or reports "
            "[default: every kind, grouped]",
            autocompletion=completer(KINDS),
        ),
    ] = None,
) -> None:
    """List cached artifacts: key, dataset, model, what each was made from, size, age, status."""
    from ..inventory import check_kind, scan

    kinds = [check_kind(kind)] if kind else list(KINDS)
    root = opts.cache_dir.absolute()
    now = time.time()
    inventory = scan(root, now)
    artifacts = [a for a in inventory.artifacts if a.kind in kinds]
    if ctl.as_json:
        emit_json(
            {
                "command": "cache ls",
                "cache_dir": str(root),
                "kinds": kinds,
                "entries": [a.as_dict(now) for a in artifacts],
                "leftovers": [g.as_dict() for g in inventory.strays if g.kind in kinds],
                "being_written": [str(path) for path in inventory.writing],
                "totals": {
                    k: {
                        "count": len(inventory.of(k)),
                        "size_bytes": sum(a.size_bytes for a in inventory.of(k)),
                    }
                    for k in kinds
                },
            }
        )
        return
    shown = 0
    for k in kinds:
        group = inventory.of(k)
        if group:
            stdout.print(("\n" if shown else "") + _table(k, group, now), **PLAIN)
            shown += 1
    if not shown:
        what = TITLES[kinds[0]] if len(kinds) == 1 else "artifacts"
        stdout.print(f"no {what} under {root}", **PLAIN)
    _leftovers(inventory, kinds)


def _leftovers(inventory, kinds: list[str]) -> None:
    """Writers' staging folders: dead ones for ``cache gc``, live ones being written."""
    for g in (g for g in inventory.strays if g.kind in kinds):
        stdout.print(
            f"leftover ({human_size(g.size_bytes)}, cache gc removes it): {g.path}", **PLAIN
        )
    for path in inventory.writing:
        stdout.print(f"being written: {path}", **PLAIN)


def _table(kind: str, group: list, now: float) -> str:
    """One kind's artifacts as plain aligned columns (never wrapped: keys stay copyable and
    lines greppable); the columns that say what each one is differ by kind, and where two look
    alike, a last column says in what they differ."""
    columns = list(_COLUMNS[kind])
    if any(a.variant for a in group):
        columns.append(("differs in", _variant))
    headers = [header for header, _ in columns] + ["size", "age", "status"]
    rows = [
        [str(cell(a)) for _, cell in columns]
        + [human_size(a.size_bytes), human_age(now - a.mtime), _status(a)]
        for a in group
    ]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [headers, *rows]]
    size = sum(a.size_bytes for a in group)
    legend = _LEGENDS.get(kind, "")
    return "\n".join([f"{TITLES[kind]} ({len(group)}, {human_size(size)}{legend})", *lines])


def _status(a) -> str:
    text = a.status
    if a.locked and text not in ("in use", "extracting"):
        text += " (locked)"
    if a.leftovers:
        text += f", {len(a.leftovers)} leftover file(s) for gc"
    return text


#: The order split sizes are shown in (``600/600/100/400``), named once in the table's title.
SPLITS = ("weak_train", "strong_train", "val", "test")
_LEGENDS = {
    "acts": "; rows: weak_train/strong_train/val/test",
    "tokens": "; rows: weak_train/strong_train/val/test",
    "labels": "; rows: strong_train/val/test",
}


def _rows(sizes: dict | None, splits: tuple[str, ...] = SPLITS) -> str:
    """``600/600/100/400`` in the legend's order; a split outside it is named."""
    if not isinstance(sizes, dict) or not sizes:
        return "?"
    known = [str(sizes[s]) if s in sizes else "-" for s in splits]
    other = [f"{s}={n}" for s, n in sizes.items() if s not in splits]
    return " ".join(["/".join(known), *other])


def _variant(a) -> str:
    """``config.minibatch=8``: where this artifact differs from the ones that look like it."""
    return " ".join(f"{k}={_short(v)}" for k, v in a.variant.items()) or "-"


def _short(value) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text[:8] if len(text) == 16 and text.isalnum() else text  # a hash or fingerprint


def _file_columns(title: str, detail: str) -> list:
    """The columns of an activation-like file: pooled and token files differ only in how
    each row was reduced (``title`` shows ``detail``: the pooling, or the token spec)."""
    return [
        ("key", lambda a: a.key),
        ("model", lambda a: a.model),
        ("dataset", lambda a: a.dataset),
        ("layers", lambda a: layer_summary(a.details["layers"])),
        ("rows", lambda a: _rows(a.details.get("split_sizes"))),
        (title, lambda a: a.details.get(detail) or "?"),
        ("max len", lambda a: a.details.get("max_length") or "?"),
        ("dtype", lambda a: a.details.get("compute_dtype") or "?"),
        ("stored", lambda a: a.details.get("store_dtype") or "?"),
    ]


_COLUMNS = {
    "acts": _file_columns("pool", "pooling"),
    "tokens": _file_columns("tokens", "tokens"),
    "runs": [
        ("key", lambda a: a.key),
        ("dataset", lambda a: a.dataset),
        ("experiment", lambda a: a.name or "?"),
        ("model", lambda a: a.model or "?"),
        ("seed", lambda a: "?" if a.details.get("seed") is None else a.details["seed"]),
        ("made from", lambda a: a.origin()),
    ],
    "labels": [
        ("key", lambda a: a.key),
        ("dataset", lambda a: a.dataset),
        ("name", lambda a: a.name or "?"),
        ("rows", lambda a: _rows(a.details.get("sizes"), SPLITS[1:])),
        ("made from", lambda a: a.origin()),
    ],
    "probes": [
        ("key", lambda a: a.key),
        ("dataset", lambda a: a.dataset),
        ("model", lambda a: a.model or "?"),
        ("seed", lambda a: "?" if a.details.get("seed") is None else a.details["seed"]),
        ("stored", lambda a: a.details.get("storage") or "?"),
        ("made from", lambda a: a.origin()),
    ],
    "sweeps": [
        ("key", lambda a: a.key),
        ("dataset", lambda a: a.dataset),
        ("made from", lambda a: a.origin()),
        ("points", lambda a: a.details["points"]),
    ],
    "reports": [
        ("key", lambda a: a.key),
        ("datasets", lambda a: a.dataset),
        ("files", lambda a: a.name or "-"),
        ("made from", lambda a: a.origin()),
    ],
}


def human_size(size: int) -> str:
    """``512 B``, ``12.3 KiB``, ``1.5 GiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop always returns


def human_age(seconds: float) -> str:
    """``45s``, ``12m``, ``3h``, ``9d``."""
    seconds = max(0.0, seconds)
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{int(seconds // length)}{unit}"
    return f"{int(seconds)}s"


@app.command("rm")
@options_command((), preset=False, inert=("seed", "device"))
def rm(
    opts: Options,
    ctl: Control,
    keys: Annotated[
        list[str],
        typer.Argument(metavar="KEY", help="Keys (or unique prefixes) from cache ls"),
    ],
    kind: Annotated[
        Optional[str],
        typer.Option(
            "--kind",
            metavar="[" + "|".join(KINDS) + "]",
            help="Look the keys up among this kind only [default: every kind]",
            autocompletion=completer(KINDS),
        ),
    ] = None,
) -> None:
    """Remove whole artifacts by key, each under its lock; what was made from them is kept and
    listed."""
    from ..inventory import remove, scan

    root = opts.cache_dir.absolute()
    removals = remove(scan(root), keys, kind)
    if ctl.as_json:
        emit_json(
            {
                "command": "cache rm",
                "cache_dir": str(root),
                "removed": [r.as_dict() for r in removals],
                "size_bytes": sum(r.size_bytes for r in removals),
            }
        )
        return
    for r in removals:
        a = r.artifact
        what = " ".join(x for x in (a.dataset, a.name) if x)
        stdout.print(
            f"removed {a.kind} {a.key} ({what}, {human_size(r.size_bytes)})",
            **PLAIN,
        )
        if r.dependents:
            made = "; ".join(f"{d.kind} {d.key} {d.name or ''}".rstrip() for d in r.dependents)
            stdout.print(
                f"  kept {len(r.dependents)} artifact(s) made from it: {made}",
                **PLAIN,
            )


@app.command("gc")
@options_command((), preset=False, inert=("seed", "device"))
def gc(
    opts: Options,
    ctl: Control,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would go and its size; remove nothing.")
    ] = False,
) -> None:
    """Remove partial activation and token files, orphaned checkpoints and unfinished runs,
    shards of finished extractions and other leftovers; never a complete artifact or a locked
    file."""
    from ..inventory import collect, find_garbage, scan

    root = opts.cache_dir.absolute()
    found = find_garbage(scan(root))
    done = found if dry_run else collect(found)
    if ctl.as_json:
        emit_json(
            {
                "command": "cache gc",
                "cache_dir": str(root),
                "dry_run": dry_run,
                "items": [g.as_dict() for g in done.garbage],
                "size_bytes": done.size_bytes,
                "in_use": [
                    {"kind": a.kind, "key": a.key, "path": str(a.path), "status": a.status}
                    for a in done.in_use
                ],
                "skipped": [g.as_dict() for g in done.skipped],
            }
        )
        return
    verb = "would remove" if dry_run else "removed"
    for g in done.garbage:
        stdout.print(
            f"{verb}  {g.kind:<7} {g.key or '-':<16} {human_size(g.size_bytes):>10}  "
            f"{g.reason}: {g.path}",
            **PLAIN,
        )
    for a in done.in_use:
        stdout.print(f"kept (in use)  {a.kind} {a.key}: {a.path}", **PLAIN)
    for g in done.skipped:
        stdout.print(
            f"kept (taken since the scan)  {g.kind} {g.key}: {g.path}",
            **PLAIN,
        )
    total = f"{len(done.garbage)} item(s), {human_size(done.size_bytes)}"
    stdout.print(f"gc: {total} {'would go' if dry_run else 'freed'} under {root}", **PLAIN)


@app.command("verify")
@options_command((), preset=False, inert=("seed", "device"))
def verify(
    opts: Options,
    ctl: Control,
    paths: Annotated[
        Optional[list[str]],
        typer.Argument(
            metavar="PATH",
            help="Activation files or artifact folders to check [default: every artifact]",
        ),
    ] = None,
) -> None:
    """Check every artifact (activation and token files, runs, label sets, probes, sweeps,
    reports) against what its writer recorded: truncated, corrupt, partial or leftover -> exit 1."""
    from ..errors import UsageError
    from ..inventory import scan, verify_path
    from ..inventory import verify as verify_all

    root = opts.cache_dir.absolute()
    if paths:
        checks = [verify_path(Path(p)) for p in paths]
    else:
        if not Path(root).is_dir():
            raise UsageError(f"no cache at {root}: nothing to verify (check --cache-dir)")
        checks = verify_all(scan(root))
    bad = [c for c in checks if c.status == "bad"]
    if ctl.as_json:
        emit_json(
            {
                "command": "cache verify",
                "cache_dir": str(root),
                "files": {str(c.path): c.problems for c in checks if c.status != "in use"},
                "artifacts": [c.as_dict() for c in checks],
                "ok": not bad,
            }
        )
    else:
        for c in checks:
            label = {"ok": "ok", "bad": "BAD", "in use": "in use"}[c.status]
            stdout.print(
                f"{label}  {c.kind} {c.path}"
                + "".join(f"\n    - {p}" for p in c.problems)
                + (f"\n    fix: {c.fix}" if c.fix else ""),
                **PLAIN,
            )
        if not checks:
            stdout.print(f"no artifacts under {root}", **PLAIN)
        else:
            stdout.print(f"verify: {len(checks) - len(bad)} ok or in use, {len(bad)} bad", **PLAIN)
    if bad:
        raise typer.Exit(1)


@app.command("export")
@options_command((), preset=False, inert=("seed", "device"))
def export(
    opts: Options,
    ctl: Control,
    key: Annotated[
        str, typer.Argument(metavar="KEY", help="Activation or token file key (or prefix)")
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="safetensors|npz|hf",
            help="safetensors, npz or hf (a Hugging Face datasets folder)",
        ),
    ] = "safetensors",
    out: Annotated[
        Optional[str],
        typer.Option("--out", metavar="PATH", help="Folder to write [default: <KEY>-<format>]"),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace what is at --out already.")
    ] = False,
) -> None:
    """Write an activation or token file's activations, ids, labels (a token file's token
    ids, positions and lengths too) and manifest in an ordinary format."""
    from ..cache.exchange import EXPORT_KINDS, check_format, check_target, export_activations
    from ..inventory import scan

    check_format(fmt)
    artifact = scan(opts.cache_dir.absolute()).find(key, EXPORT_KINDS)
    folder = Path(out) if out else Path(f"{artifact.key}-{fmt}")
    check_target(folder, force)
    record = export_activations(artifact.path, folder, fmt, force, artifact.kind)
    size = sum(f["bytes"] for f in record["files"].values())
    if ctl.as_json:
        return emit_json({"command": "cache export", "path": str(folder), **record})
    stdout.print(f"exported {artifact.key} as {fmt} to {folder} ({human_size(size)})", **PLAIN)


@app.command("import")
@options_command((), preset=False, inert=("seed", "device"))
def import_(
    opts: Options,
    ctl: Control,
    path: Annotated[str, typer.Argument(metavar="PATH", help="A folder cache export wrote")],
) -> None:
    """Add an exported activation or token file to the cache under its key (checked against its
    manifest and every file's SHA-256)."""
    from ..cache.exchange import import_activations
    from ..workspace import ensure_writable_dir

    ensure_writable_dir(opts.cache_dir)
    target, written = import_activations(Path(path), opts.cache_dir)
    if ctl.as_json:
        return emit_json(
            {"command": "cache import", "path": str(target), "written": written, "key": target.stem}
        )
    state = "imported" if written else "already cached"
    stdout.print(f"{state}: {target}", **PLAIN)
