"""``w2sprobe view``: what one layer of the cache looks like, and where the weak labels and a
probe disagree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ..options import Options
from .common import aligned, emit_json, open_study, stdout
from .params import Control, options_command
from .probe import FIELDS, WEAK_ONLY

#: Characters of an example's text shown in the listing (the CSV keeps it whole).
TEXT_WIDTH = 70


@options_command(FIELDS + ("contamination",), graph=False, panels=WEAK_ONLY)
def view(
    opts: Options,
    ctl: Control,
    top: Annotated[
        int,
        typer.Option("--top", metavar="N", help="Most-disputed strong_train examples to list."),
    ] = 10,
    projection: Annotated[
        str,
        typer.Option(
            "--projection",
            metavar="METHOD",
            help="2-D projection: pca (randomized, seeded) or umap (needs umap-learn).",
        ),
    ] = "pca",
    folds: Annotated[
        int,
        typer.Option("--folds", metavar="N", help="Folds of the separability-by-layer AUC."),
    ] = 5,
    align: Annotated[
        bool,
        typer.Option(
            "--align",
            help="Also compare the weak model's activations with the strong ones: linear CKA "
            "of every layer pair, ridge maps weak -> strong with held-out R² (extracts the weak "
            "model on the same splits when missing).",
        ),
    ] = False,
    out: Annotated[
        Optional[str],
        typer.Option(
            "--out",
            metavar="DIR",
            help="Folder for the figures, tables and view.json [default: "
            "views/<dataset>-layer<NNN>]",
        ),
    ] = None,
) -> None:
    """Project strong_train's activations at the probe layer to 2-D, coloured by ground truth,
    weak label, probe score and filter decision; directions and separability by layer; the
    examples where the probe and the weak labels disagree most.

    Files: projection.png|svg, layers.png|svg, points.csv, layers.csv, disputed.csv, with
    --align alignment.png|svg, cka.csv, ridge.csv, and, written last, view.json.
    """
    from ..inspection import build_view, default_out
    from ..probes.inputs import check_probe
    from ..views.projection import check_projection
    from ..workspace import check_out_dir

    check_projection(projection)
    if top < 0:
        raise UsageError(f"--top must be 0 or more, got {top}")
    if folds < 2:
        raise UsageError(f"--folds must be at least 2, got {folds}")
    check_probe(opts, opts.probe.probe)
    if out is not None:
        check_out_dir(Path(out), "view")
    study = open_study(opts, ctl)
    folder = Path(out) if out else default_out(study.dataset, study.probe_layer())
    check_out_dir(folder, "view")
    built, record = build_view(study, folder, projection, top, folds, align)
    summary = {"command": "view", "path": str(folder), **record}
    if ctl.as_json:
        return emit_json(summary)
    _print(summary, folder)


def _print(summary: dict, folder: Path) -> None:
    stdout.print(
        f"{summary['dataset']} layer {summary['layer']}: {summary['rows']} strong_train rows, "
        f"{summary['weak_label_wrong']} weak labels wrong; the filter removed "
        f"{summary['filter_removed']}, {summary['filter_removed_wrong']} of them wrong",
        highlight=False,
        soft_wrap=True,
    )
    rows = [
        [
            str(r["layer"]),
            f"{r['cosine']:.3f}",
            f"{r['auc_truth']:.3f}",
            f"{r['auc_weak']:.3f}",
        ]
        for r in summary["layers"]
    ]
    headers = ["layer", "cos(truth, weak)", "AUC vs truth", "AUC vs weak"]
    stdout.print(aligned(headers, rows, right=(0, 1, 2, 3)), markup=False, highlight=False)
    if summary["disputed"]:
        stdout.print(f"\nmost disputed (|probe score - weak label|, top {summary['top']}):")
        rows = [
            [
                str(r["rank"]),
                r["id"],
                f"{r['weak_label']:.3f}",
                f"{r['probe_score']:.3f}",
                str(r["ground_truth"]),
                _short(r["text"]),
            ]
            for r in summary["disputed"]
        ]
        headers = ["rank", "id", "weak", "probe", "truth", "text"]
        stdout.print(
            aligned(headers, rows, right=(0, 2, 3, 4)),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if "alignment" in summary:
        best = max(summary["alignment"]["ridge"], key=lambda r: r["r2"])
        stdout.print(
            f"\nweak layer {best['weak_layer']} explains {best['r2']:.1%} of the variance of "
            f"strong layer {best['strong_layer']} on held-out rows (ridge map, R²); CKA in "
            "cka.csv",
            highlight=False,
            soft_wrap=True,
        )
    stdout.print(f"\nview: {folder} (texts by id: w2sprobe data ids --id ID)", highlight=False)


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= TEXT_WIDTH else flat[: TEXT_WIDTH - 1] + "…"
