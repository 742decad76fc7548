"""A small table type written as markdown, CSV and LaTeX, with numbers formatted one way."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from lmad.io import atomic_write_text


def format_value(value: object, digits: int = 4) -> str:
    """Floats to ``digits`` decimals, NaN as ``-``, everything else as ``str``."""
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


@dataclass
class Table:
    """Rows of values under named columns; ``title`` heads the markdown and the LaTeX caption.

    ``notes`` are lines a reader must see before the numbers (an incomplete run): the first lines
    of the markdown, the start of the LaTeX caption. CSV holds the rows only.
    """

    columns: list[str]
    rows: list[list[object]] = field(default_factory=list)
    title: str = ""
    digits: int = 4
    notes: list[str] = field(default_factory=list)

    def add(self, *values: object) -> None:
        if len(values) != len(self.columns):
            raise ValueError(f"row has {len(values)} values for {len(self.columns)} columns")
        self.rows.append(list(values))

    def cells(self) -> list[list[str]]:
        return [[format_value(v, self.digits) for v in row] for row in self.rows]

    def markdown(self) -> str:
        cells = self.cells()
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(self.columns)]
        numeric = [
            all(_is_number(r[i]) for r in self.rows) and self.rows for i in range(len(widths))
        ]

        def line(values: list[str]) -> str:
            padded = [v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric)]
            return "| " + " | ".join(padded) + " |"

        rule = ["-" * (w - 1) + (":" if n else "-") for w, n in zip(widths, numeric)]
        out = [*self.notes, ""] if self.notes else []
        out += [f"**{self.title}**", ""] if self.title else []
        out += [line(self.columns), "| " + " | ".join(rule) + " |"]
        out += [line(r) for r in cells]
        return "\n".join(out) + "\n"

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow(["" if isinstance(v, float) and math.isnan(v) else v for v in row])
        return buffer.getvalue()

    def latex(self) -> str:
        align = "".join(
            "r" if all(_is_number(r[i]) for r in self.rows) and self.rows else "l"
            for i in range(len(self.columns))
        )
        out = ["\\begin{table}[t]", "\\centering"]
        caption = " ".join([*self.notes, self.title]).strip()
        if caption:
            out.append(f"\\caption{{{_tex(caption)}}}")
        out += [f"\\begin{{tabular}}{{{align}}}", "\\toprule"]
        out.append(" & ".join(_tex(c) for c in self.columns) + " \\\\")
        out.append("\\midrule")
        out += [" & ".join(_tex(c) for c in row) + " \\\\" for row in self.cells()]
        out += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
        return "\n".join(out) + "\n"

    def write(self, folder: str | Path, stem: str = "table") -> list[Path]:
        """Write ``<stem>.md``, ``<stem>.csv`` and ``<stem>.tex`` atomically."""
        folder = Path(folder)
        return [
            atomic_write_text(folder / f"{stem}.md", self.markdown()),
            atomic_write_text(folder / f"{stem}.csv", self.csv()),
            atomic_write_text(folder / f"{stem}.tex", self.latex()),
        ]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TEX = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
}


def _tex(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text))
