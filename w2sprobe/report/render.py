"""Write a report.

It has figures (PNG, SVG and PDF), ``report.json`` always, and ``report.md`` or ``report.html``.
Every file is written atomically and ``report.json`` last (:mod:`w2sprobe.report.files`).

The HTML is self-contained (figures embedded as base64 PNG) so it can be mailed or attached
as one file; the Markdown links the image files next to it. Both formats may share a folder:
writing one never deletes the other, and ``report.json`` lists every file of the report.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from ..atomic import write_text
from ..errors import UsageError
from ..workspace import kind_root, make_out_dir
from . import files as report_files
from .build import Report
from .document import Bullets, Code, FigureBlock, Heading, Para, Table, report_blocks
from .figures import draw_figures
from .views_blocks import views_blocks
from .views_figures import alignment_vs_pgr

FORMATS = ("html", "md", "json")


def default_out_dir(report: Report) -> Path:
    """``<cache>/reports/<short hash of the inputs and options>/``."""
    return kind_root(report.cache_dir, "reports") / report.key


def write_report(report: Report, out_dir: Path | None = None, fmt: str = "html") -> dict:
    """Draw the figures and write the report; returns the JSON summary (numbers, figures, files)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown report format '{fmt}'; choose one of {', '.join(FORMATS)}")
    out_dir = make_out_dir(out_dir if out_dir is not None else default_out_dir(report), "report")
    # Unfinished from here until report.json is written again, last: a kill never leaves a
    # torn file in a report that looks complete.
    previous = report_files.begin(out_dir, report.key)
    figures, skipped = draw_figures(
        report, out_dir / "figures", extra=(("alignment_vs_pgr", alignment_vs_pgr),)
    )
    summary = {
        **report.to_dict(),
        "figures": [f.to_dict() for f in figures],
        "skipped_figures": skipped,
    }
    files = {"json": out_dir / "report.json"}
    blocks = report_blocks(report, figures, skipped, views_blocks(report))
    if fmt == "md":
        files["md"] = out_dir / "report.md"
        write_text(files["md"], to_markdown(blocks, out_dir))
    elif fmt == "html":
        files["html"] = out_dir / "report.html"
        write_text(files["html"], to_html(blocks))
    # The other format, written earlier from the same inputs into this folder, stays listed.
    files = {**previous, **files}
    listed = [files["json"], *(files[f] for f in ("md", "html") if f in files)]
    listed += [path for figure in figures for path in figure.files]
    summary["files"] = {name: str(path) for name, path in files.items()}
    summary["all_files"] = sorted(str(path) for path in listed)
    summary["out_dir"] = str(out_dir)
    summary["format"] = fmt
    return report_files.finish(out_dir, summary, listed)


# --------------------------------------------------------------------------- Markdown


def to_markdown(blocks: list, out_dir: Path) -> str:
    """GitHub-flavoured Markdown; figures link their PNG (the SVG and PDF sit beside it)."""
    parts = []
    tables = figures = 0
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Para):
            parts.append(block.text)
        elif isinstance(block, Bullets):
            parts.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            tables += 1
            parts.append(f"**Table {tables}. {block.title}**\n\n{_md_table(block)}")
        elif isinstance(block, FigureBlock):
            figures += 1
            fig = block.figure
            png, svg, pdf = (_relative(p, out_dir) for p in (fig.png, fig.svg, fig.pdf))
            parts.append(
                f"![{fig.title}]({png})\n\n*Figure {figures}. {fig.caption}* "
                f"([SVG]({svg}), [PDF]({pdf}))"
            )
        elif isinstance(block, Code):
            fence = f"```\n{block.text}\n```"
            parts.append(
                f"<details><summary>{block.summary}</summary>\n\n{fence}\n\n</details>"
                if block.summary
                else fence
            )
    return "\n\n".join(parts) + "\n"


def _md_table(table: Table) -> str:
    def cells(values):
        return "| " + " | ".join(str(v).replace("|", "\\|") for v in values) + " |"

    return "\n".join(
        [cells(table.headers), cells(["---"] * len(table.headers)), *map(cells, table.rows)]
    )


def _relative(path: Path, base: Path) -> str:
    try:
        return Path(path).relative_to(base).as_posix()
    except ValueError:
        return Path(path).as_posix()


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;\
max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
caption{caption-side:top;text-align:left;font-weight:600;padding:.2em 0}
th,td{border-bottom:1px solid #ddd;padding:.25em .7em;text-align:left;vertical-align:top}
td{overflow-wrap:anywhere}
.wide{overflow-x:auto;max-width:100%}
th{background:#f4f4f4} td{font-variant-numeric:tabular-nums}
figure{margin:1em 0} figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#444;margin-top:.4em}
pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.8em;max-height:30em;\
white-space:pre-wrap;overflow-wrap:anywhere}
"""


def to_html(blocks: list) -> str:
    """One self-contained HTML page: figures as base64 PNG, the run configs in a collapsed block."""
    body = []
    esc = html.escape
    tables = figures = 0
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{esc(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            body.append(f"<p>{esc(block.text)}</p>")
        elif isinstance(block, Bullets):
            body.append("<ul>" + "".join(f"<li>{esc(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            tables += 1
            caption = f"<caption>Table {tables}. {esc(block.title)}</caption>"
            head = "".join(f"<th>{esc(h)}</th>" for h in block.headers)
            rows = "".join(
                "<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in row) + "</tr>"
                for row in block.rows
            )
            # long keys, paths and commands wrap; a table still too wide scrolls in its own box
            body.append(
                f'<div class="wide"><table>{caption}<thead><tr>{head}</tr></thead>'
                f"<tbody>{rows}</tbody></table></div>"
            )
        elif isinstance(block, FigureBlock):
            figures += 1
            fig = block.figure
            data = base64.b64encode(Path(fig.png).read_bytes()).decode()
            body.append(
                f'<figure><img alt="{esc(fig.title)}" src="data:image/png;base64,{data}">'
                f"<figcaption>Figure {figures}. {esc(fig.caption)}</figcaption></figure>"
            )
        elif isinstance(block, Code):
            pre = f"<pre>{esc(block.text)}</pre>"
            body.append(
                f"<details><summary>{esc(block.summary)}</summary>{pre}</details>"
                if block.summary
                else pre
            )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Weak-to-strong report</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
