"""Table output: markdown alignment, NaN as '-', CSV with empty cells, LaTeX escaping."""

from __future__ import annotations

import math

import pytest

from lmad.report.html import ReportSection, write_report
from lmad.report.tables import Table


def make_table() -> Table:
    table = Table(["LLM", "variant", "F1"], title="UCR_135 & more")
    table.add("GPT-4o", "Pred", 0.5)
    table.add("offline (non-LLM baseline)", "Pred_adjust", math.nan)
    return table


def test_markdown():
    assert make_table().markdown().splitlines() == [
        "**UCR_135 & more**",
        "",
        "| LLM                        | variant     |     F1 |",
        "| -------------------------- | ----------- | -----: |",
        "| GPT-4o                     | Pred        | 0.5000 |",
        "| offline (non-LLM baseline) | Pred_adjust |      - |",
    ]


def test_csv_and_latex():
    table = make_table()
    assert (
        table.csv() == "LLM,variant,F1\nGPT-4o,Pred,0.5\noffline (non-LLM baseline),Pred_adjust,\n"
    )
    latex = table.latex()
    assert "\\caption{UCR\\_135 \\& more}" in latex
    assert "GPT-4o & Pred & 0.5000 \\\\" in latex and "Pred\\_adjust & - \\\\" in latex
    with pytest.raises(ValueError, match="2 values for 3 columns"):
        table.add("x", 1)


def test_report_is_self_contained(tmp_path):
    path = write_report(
        tmp_path / "r.html",
        "T <1>",
        ["intro & more"],
        make_table(),
        [ReportSection("S", b"\x89PNG fake", make_table(), ["1 window failed"])],
    )
    html = path.read_text()
    assert "<title>T &lt;1&gt;</title>" in html and "intro &amp; more" in html
    assert "data:image/png;base64,iVBORyBmYWtl" in html and "1 window failed" in html
    assert 'src="http' not in html and "src='http" not in html
