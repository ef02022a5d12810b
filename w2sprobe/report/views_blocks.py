"""The report's "Views of the cache" section (numbers from :mod:`w2sprobe.report.views`):
the most-disputed strong_train examples per dataset, the weak-strong alignment per dataset,
and alignment against PGR across datasets."""

from __future__ import annotations

from .build import Report
from .document import Bullets, Heading, Para, Table, fmt
from .views import MISSING, TEXT_WIDTH, too_few


def views_blocks(report: Report) -> list:
    """The section's blocks; one line when no dataset has anything to show."""
    views = (report.views or {}).get("datasets") or []
    blocks: list = [Heading(2, "Views of the cache")]
    shown = [v for v in views if v.get("disputed") or v.get("alignment")]
    if not shown:
        blocks.append(
            Para(
                "No views: no dataset has a probe relabel set of its weak labels or the weak "
                "model's activations cached (w2sprobe relabel; w2sprobe view --align)."
            )
        )
        return blocks
    blocks.append(
        Para(
            "Read from the cache. Disputed examples: the strong_train rows where a probe's "
            "out-of-sample score (its relabel set) and the weak label differ most, "
            "|probe score − weak label| largest first (the ranking of w2sprobe view --top); "
            "look an id up with w2sprobe data ids --id ID. Alignment: linear CKA between the "
            "weak and the strong model's pooled activations of the same strong_train rows, for "
            "every layer pair, and a ridge map from the weak model's last layer to the strong "
            "model's last layer with its R² on held-out test rows (the share of the strong "
            "representation's variance the weak one explains linearly)."
        )
    )
    for view in views:
        if view.get("disputed"):
            blocks.append(_disputed(view["dataset"], view["disputed"]))
    blocks += _alignment(views)
    blocks += _cross(report)
    notes = []
    for kind, text in MISSING.items():  # one line each, however many datasets lack it
        lacking = [v for v in views if kind in v.get("missing", [])]
        if lacking:
            models = sorted({str(v.get("weak_model")) for v in lacking})
            text = text.replace("WEAK", "|".join(models))
            notes.append(f"{', '.join(v['dataset'] for v in lacking)}: {text}.")
    notes += [n for v in views for n in v.get("notes", [])]
    if notes:
        blocks.append(Bullets(notes))
    return blocks


def _disputed(dataset: str, d: dict) -> Table:
    rows = [
        [
            str(r["rank"]),
            r["id"],
            fmt(r["weak_label"]),
            fmt(r["probe_score"]),
            fmt(r["gap"]),
            fmt(r["ground_truth"]),
            _short(r["text"]) if r.get("text") is not None else "—",
        ]
        for r in d["top"]
    ]
    wrong = f"; {d['weak_wrong']} weak labels on the wrong side of 0.5" if d["weak_wrong"] else ""
    return Table(
        ["rank", "id", "weak label", "probe score", "|gap|", "ground truth", "text"],
        rows,
        title=f"{dataset}: most-disputed strong_train examples ({d['label_set']}: {d['probe']} "
        f"probe at layer {d['layer']} vs {d['weak_set']}; top {len(rows)} of {d['rows']} "
        f"rows{wrong}; {d['texts']})",
    )


def _alignment(views: list[dict]) -> list:
    aligned = [v for v in views if v.get("alignment")]
    if not aligned:
        return []
    summary = [
        [
            v["dataset"],
            f"{a['weak_model']} → {a['strong_model']}",
            f"{a['fit_rows']} / {a['held_rows']}",
            f"{a['weak_last']} → {a['strong_last']}",
            fmt(a["cka_last"]),
            fmt(a["r2_last"]),
        ]
        for v in aligned
        for a in [v["alignment"]]
    ]
    blocks: list = [
        Table(
            ["dataset", "weak → strong", "rows fit / held", "last layers", "CKA", "ridge R²"],
            summary,
            title="Weak vs strong representations at the last layers (linear CKA on "
            "strong_train; ridge weak → strong, R² on test)",
        )
    ]
    for v in aligned:
        a = v["alignment"]
        rows = [
            [
                str(r["weak_layer"]),
                str(r["best_strong_layer"]),
                fmt(r["best_cka"]),
                fmt(r["cka_last"]),
            ]
            for r in a["per_weak_layer"]
        ]
        blocks.append(
            Table(
                [
                    f"{a['weak_model']} layer",
                    f"best-matching {a['strong_model']} layer",
                    "its CKA",
                    f"CKA with {a['strong_model']} layer {a['strong_last']}",
                ],
                rows,
                title=f"{v['dataset']}: linear CKA per weak layer",
            )
        )
    return blocks


def _cross(report: Report) -> list:
    cross = (report.views or {}).get("alignment_vs_pgr") or {}
    points = cross.get("points") or []
    if not points:
        return []
    lines = []
    for name, label in (("cka", "CKA"), ("r2", "ridge R²")):
        stats = cross.get(name) or {}
        head = f"{label} (last layers) vs {cross.get('experiment')} PGR across the stable datasets"
        if too_few(stats):
            lines.append(
                f"{head}: too few datasets to tell (n = {stats.get('n', 0)}; a rank correlation "
                "needs at least 3 with distinct values)."
            )
        else:
            lines.append(
                f"{head}: Spearman ρ = {fmt(stats['rho'])} (two-sided p = {fmt(stats['p'])}, "
                f"n = {stats['n']})"
                + (
                    "; with so few datasets only a very strong relation would show."
                    if stats["n"] < 8
                    else "."
                )
            )
    return [Bullets(lines)]


def _short(text: str) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= TEXT_WIDTH else flat[: TEXT_WIDTH - 1] + "…"
