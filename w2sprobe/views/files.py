"""A view's folder: figures (PNG + SVG), tables (CSV) and ``view.json``, written last.

``projection.png|svg``, ``layers.png|svg``, ``points.csv`` (id, coordinates, every colour),
``layers.csv`` (the layer profile), ``disputed.csv`` (every strong_train row ranked by the
probe-vs-weak gap, texts included), with ``--align`` also ``alignment.png|svg``, ``cka.csv``
and ``ridge.csv``, and ``view.json``: the summary and the bytes and SHA-256
of every other file. A folder without ``view.json`` is unfinished (a rerun removes it first),
and every file is written atomically.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..atomic import file_record, write_json, write_text
from ..jsonutil import finite
from ..workspace import check_out_dir, make_out_dir
from .build import View, disputed_rows
from .figures import (
    PointColours,
    alignment_figure,
    layers_figure,
    projection_figure,
    save_figure,
)

VIEW_JSON = "view.json"


def _csv(rows: list[dict]) -> str:
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=list(rows[0]) if rows else ["empty"])
    writer.writeheader()
    writer.writerows(rows)
    return table.getvalue()


def write_view(view: View, out: Path, summary: dict) -> dict:
    """Write every file of ``view`` into ``out``; ``view.json`` (``summary`` + file records)
    last. Returns what ``view.json`` holds."""
    out = Path(out)
    check_out_dir(out, "view")
    make_out_dir(out, "view")
    (out / VIEW_JSON).unlink(missing_ok=True)  # unfinished until it is back, last
    inputs, coords = view.inputs, view.projection.coords
    names = inputs.names
    colours = PointColours(inputs.truth, inputs.weak, inputs.probe, inputs.kept, view.wrong)
    titles = {
        "truth": "ground truth\n ",
        "weak": f"weak label\n{names.get('weak', 'weak')}",
        "probe": f"probe score\n{names.get('probe', 'probe')}",
        "filter": f"filter decision\n{names.get('filter', 'filter')}",
    }
    files = {}
    for name, figure in (
        ("projection", projection_figure(coords, colours, view.projection.axis_labels(), titles)),
        ("layers", layers_figure(view.layer_rows, inputs.layer)),
    ):
        files.update({p.name: p for p in save_figure(figure, out / name).values()})
    if view.cka_rows is not None:
        strong = summary.get("model", "strong")
        weak = inputs.alignment.weak_model if inputs.alignment else "weak"
        figure = alignment_figure(view.cka_rows, view.ridge_rows, weak, strong)
        files.update({p.name: p for p in save_figure(figure, out / "alignment").values()})
        files["cka.csv"] = write_text(out / "cka.csv", _csv(view.cka_rows))
        files["ridge.csv"] = write_text(out / "ridge.csv", _csv(view.ridge_rows))
    points = [
        {
            "id": str(inputs.ids[i]),
            "x": float(coords[i, 0]),
            "y": float(coords[i, 1]),
            "ground_truth": int(inputs.truth[i]),
            "weak_label": float(inputs.weak[i]),
            "probe_score": float(inputs.probe[i]),
            "kept_by_filter": bool(inputs.kept[i]),
            "weak_label_wrong": bool(view.wrong[i]),
        }
        for i in range(len(coords))
    ]
    every_row = disputed_rows(inputs, len(inputs.ids))
    for name, rows in (
        ("points.csv", points),
        ("layers.csv", view.layer_rows),
        ("disputed.csv", every_row),
    ):
        files[name] = write_text(out / name, _csv(rows))
    record = {
        **summary,
        "projection": {"method": view.projection.method, "explained": view.projection.explained},
        "layers": view.layer_rows,
        "disputed": view.disputed,
        **(
            {"alignment": {"cka": view.cka_rows, "ridge": view.ridge_rows}}
            if view.cka_rows is not None
            else {}
        ),
        "files": {name: file_record(path) for name, path in sorted(files.items())},
    }
    write_json(out / VIEW_JSON, finite(record), indent=2)
    return record


def read_view(folder: Path) -> dict | None:
    """A finished view's record (None: unfinished, no ``view.json``)."""
    path = Path(folder) / VIEW_JSON
    return json.loads(path.read_text()) if path.is_file() else None
