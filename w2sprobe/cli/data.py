"""``w2sprobe data list | show NAME | ids NAME``: the registry, one dataset's splits, its rows."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from ..options import Options
from .common import emit_json, show_table, stdout
from .help import App
from .params import DATA, Control, options_command

app = App(
    help="Inspect the dataset registry and the splits built from it.",
    no_args_is_help=True,
)

N_EXAMPLES = 3


@app.command("list")
@options_command(("data_dir",), preset=False, inert=("seed", "device", "cache_dir"))
def list_command(opts: Options, ctl: Control) -> None:
    """List every registered dataset and whether the configured mirror has it."""
    from rich.table import Column, Table

    from ..data import REGISTRY

    data_dir = opts.data.data_dir
    rows = [_list_row(spec, data_dir) for spec in REGISTRY.values()]
    if ctl.as_json:
        emit_json({"command": "data list", "data_dir": data_dir, "datasets": rows})
        return
    table = Table("hub id (config)", "train / test pool", "mirror", "train offline")
    for column in table.columns:
        column.overflow = "fold"  # wrap, never cut with an ellipsis
    # Names are what users type next: keep each on one line, whole, even on a narrow terminal.
    table.columns.insert(
        0, Column("name", no_wrap=True, min_width=max(len(row["name"]) for row in rows))
    )
    for row in rows:
        hub = row["hub_id"] + (f" ({row['hub_config']})" if row["hub_config"] else "")
        table.add_row(
            row["name"], hub, row["pools"], _yes_no(row["in_mirror"]), _yes_no(row["train_offline"])
        )
    stdout.print(f"data dir: {data_dir or '(none: hub only)'}")
    show_table(table)


#: The dataset a ``data`` sub-command looks at (``show``, ``ids``).
DatasetArg = Annotated[
    Optional[str],
    typer.Argument(metavar="NAME", help="Registry name or a data file [default: --dataset]"),
]


@app.command("show")
@options_command(DATA, inert=("device", "cache_dir"))
def show_command(
    opts: Options,
    ctl: Control,
    name: DatasetArg = None,
) -> None:
    """Build NAME's splits and print its spec, the split report, the fingerprint and examples."""
    from ..data import get_spec, is_user_data
    from ..study import define_user_datasets, load_options_splits

    define_user_datasets(opts)
    dataset = name or opts.dataset
    spec = None if is_user_data(dataset) else get_spec(dataset)
    split_set = load_options_splits(opts, dataset)
    summary = {
        "command": "data show",
        "dataset": split_set.dataset,
        "spec": _spec_dict(spec) if spec else None,
        "fingerprint": split_set.fingerprint,
        "report": split_set.report,
        "examples": _examples(split_set),
    }
    if ctl.as_json:
        emit_json(summary)
    else:
        _print_show(summary)


@app.command("ids")
@options_command(DATA, inert=("device", "cache_dir"))
def ids_command(
    opts: Options,
    ctl: Control,
    name: DatasetArg = None,
    split: Annotated[
        Optional[str],
        typer.Option(
            "--split",
            metavar="[weak_train|strong_train|val|test]",
            help="Only this split's rows [default: all four]",
        ),
    ] = None,
    ids: Annotated[
        Optional[list[str]],
        typer.Option("--id", metavar="ID", help="Only this id (repeat for several)."),
    ] = None,
) -> None:
    """Print id, split, row, label and text of every example, as the activation cache holds them.

    The splits are the ones these options make (sizes, seed, data dir): the same rows, in the
    same order, as the activation file, the label sets and the runs built with them, so an id
    from a probe's predictions (or row i of a split in the cache) maps back to the exact text
    the model read (before truncation to --max-length tokens).  Text output is tab-separated,
    one row a line, with newline, tab and backslash inside a text written as \\n, \\t, \\\\;
    --json keeps every text verbatim.
    """
    from ..data import SPLIT_NAMES
    from ..errors import UsageError
    from ..study import load_options_splits

    if split is not None and split not in SPLIT_NAMES:
        raise UsageError(f"option --split: '{split}' is not one of {', '.join(SPLIT_NAMES)}")
    dataset = name or opts.dataset
    split_set = load_options_splits(opts, dataset)
    rows = id_rows(split_set, split, ids)
    if ctl.as_json:
        emit_json(
            {
                "command": "data ids",
                "dataset": split_set.dataset,
                "seed": opts.workspace.seed,
                "fingerprint": split_set.fingerprint,
                "sizes": {n: len(s) for n, s in split_set.splits.items()},
                "rows": rows,
            }
        )
        return
    _print_id_rows(rows)


def id_rows(split_set, split: Optional[str], wanted: Optional[list[str]]) -> list[dict[str, Any]]:
    """Every row (or those of ``split`` / with an id in ``wanted``), in split and row order.

    ``row`` is the row's index in its split: the row of the activation file's split group.
    """
    from ..errors import UsageError

    rows = [
        {
            "id": part.ids[i],
            "split": part.name,
            "row": i,
            "label": int(part.labels[i]),
            "text": part.texts[i],
        }
        for part in split_set.splits.values()
        if split is None or part.name == split
        for i in range(len(part))
    ]
    if not wanted:
        return rows
    found = [row for row in rows if row["id"] in set(wanted)]
    missing = sorted(set(wanted) - {row["id"] for row in found})
    if missing:
        where = f"split {split}" if split else "any split"
        ids = f"id {missing[0]} is" if len(missing) == 1 else f"ids {', '.join(missing)} are"
        raise UsageError(
            f"{ids} not in {where} of {split_set.dataset} with these sizes "
            "and seed (ids depend only on the text; the splits on --n-train/--n-val/--n-test, "
            "--seed and --data-dir)"
        )
    return found


def _print_id_rows(rows: list[dict[str, Any]]) -> None:
    # Plain writes, not rich: dataset text is printed verbatim, never read as markup or wrapped.
    import sys

    sys.stdout.write("id\tsplit\trow\tlabel\ttext\n")
    for row in rows:
        text = row["text"].replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
        sys.stdout.write(f"{row['id']}\t{row['split']}\t{row['row']}\t{row['label']}\t{text}\n")


def _list_row(spec, data_dir: Optional[str]) -> dict[str, Any]:
    from ..data import mirror_folder
    from ..data.sources import mirror_splits

    folder = mirror_folder(spec, data_dir)
    present = set(mirror_splits(folder)) if folder else set()
    return {
        "name": spec.name,
        "hub_id": spec.hub_id,
        "hub_config": spec.hub_config,
        "pools": spec.pools_text,
        "in_mirror": folder is not None,
        "mirror_splits": sorted(present),
        "train_offline": folder is not None and set(spec.train_splits) <= present,
    }


def _spec_dict(spec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "hub_id": spec.hub_id,
        "hub_config": spec.hub_config,
        "train_splits": list(spec.train_splits),
        "test_split": spec.test_split,
        "mirror_folder": spec.mirror_folder,
        "formatter": spec.formatter.__name__,
        "labels": spec.label_note,
        "description": spec.description,
    }


def _examples(split_set) -> list[dict[str, Any]]:
    """The first few rows of the first non-empty split, test first (it is never carved down)."""
    for split in (split_set.splits[name] for name in ("test", "val", "strong_train", "weak_train")):
        if len(split):
            return [
                {
                    "split": split.name,
                    "id": split.ids[i],
                    "label": int(split.labels[i]),
                    "text": split.texts[i],
                }
                for i in range(min(N_EXAMPLES, len(split)))
            ]
    return []


def _print_show(summary: dict[str, Any]) -> None:
    report, spec = summary["report"], summary["spec"]
    if spec:
        hub = spec["hub_id"] + (f" ({spec['hub_config']})" if spec["hub_config"] else "")
        _line(f"{spec['name']}: {spec['description']}")
        _line(f"hub: {hub}; labels: {spec['labels']}; formatter: {spec['formatter']}")
    _line(
        f"source: {report['source']}; seed {report['seed']}; fingerprint {summary['fingerprint']}"
    )
    show_table(_pool_table(report["pools"]))
    show_table(_split_table(report["splits"]))
    for note in report["notes"]:
        _line(f"note: {note}")
    for example in summary["examples"]:
        _line(f"\n[{example['split']} {example['id']} label={example['label']}]")
        _line(example["text"])


def _line(text: str) -> None:
    # Dataset text is printed verbatim: no rich markup, no re-wrapping.
    stdout.print(text, markup=False, highlight=False, soft_wrap=True)


def _pool_table(pools: dict[str, dict]):
    """One column per pool, one row per processing step (fits a narrow terminal)."""
    from rich.table import Table

    table = Table("", *pools, title="pools")
    rows = [
        ("from", "from"),
        ("rows loaded", "rows_loaded"),
        ("dropped empty", "dropped_empty"),
        ("dropped: not an example", "dropped_by_formatter"),
        ("dropped duplicates", "dropped_duplicates"),
        ("dropped test overlap", "dropped_test_overlap"),
        ("label 0/1 before balancing", "label_counts_before_balance"),
        ("dropped by balancing", "dropped_by_balancing"),
        ("balanced size", "balanced_size"),
    ]
    for title, key in rows:
        table.add_row(title, *(_cell(stats[key]) for stats in pools.values()))
    return table


def _split_table(splits: dict[str, dict]):
    from rich.table import Table

    table = Table("split", "size", "requested", "label 0/1", title="splits")
    for name, entry in splits.items():
        table.add_row(
            name, str(entry["size"]), str(entry["requested"]), _cell(entry["label_counts"])
        )
    return table


def _cell(value: Any) -> str:
    if isinstance(value, dict):  # label counts
        return f"{value['0']}/{value['1']}"
    return str(value)


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"
