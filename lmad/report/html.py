"""One self-contained HTML page: the summary table, and per series its plot (embedded as base64)
and the explanation of every detected interval."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from lmad.io import atomic_write_text
from lmad.report.tables import Table

STYLE = """body{font-family:sans-serif;margin:2em;max-width:1400px}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#eee}td.num{text-align:right}img{max-width:100%}.note{color:#a00}"""


@dataclass
class ReportSection:
    title: str
    png: bytes | None = None
    table: Table | None = None
    notes: list[str] = field(default_factory=list)


def table_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for row, cells in zip(table.rows, table.cells()):
        tds = "".join(
            f'<td class="num">{html.escape(c)}</td>'
            if isinstance(v, (int, float)) and not isinstance(v, bool)
            else f"<td>{html.escape(c)}</td>"
            for v, c in zip(row, cells)
        )
        body.append(f"<tr>{tds}</tr>")
    caption = f"<caption>{html.escape(table.title)}</caption>" if table.title else ""
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in table.notes)
    return f"{notes}<table>{caption}<tr>{head}</tr>{''.join(body)}</table>"


def write_report(
    path: str | Path, title: str, intro: list[str], summary: Table, sections: list[ReportSection]
) -> Path:
    """Write the report to ``path`` (atomically); images are inlined so the file stands alone."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
    ]
    parts += [f"<p>{html.escape(line)}</p>" for line in intro]
    parts.append(table_html(summary))
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f"<p class='note'>{html.escape(n)}</p>" for n in section.notes]
        if section.png:
            data = base64.b64encode(section.png).decode("ascii")
            parts.append(
                f"<img alt='{html.escape(section.title)}' src='data:image/png;base64,{data}'>"
            )
        if section.table is not None:
            parts.append(table_html(section.table))
    parts.append("</body></html>")
    return atomic_write_text(path, "\n".join(parts))
