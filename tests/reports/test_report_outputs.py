"""HTML, PDF and CSV rendered from the same data model (the golden yearly report): hostile strings
escaped, the PDF's text extracted with pdftotext, its pages rendered to PNG with pdftoppm."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from alerts.reports.service import render

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "reports"
REPORT = json.loads((GOLDEN / "periodic-yearly-2026-vi.json").read_text(encoding="utf-8"))
SHOTS = Path(__file__).resolve().parent / "screenshots"  # gitignored; look at them after a change


def test_html_escapes_hostile_strings_and_states_every_section() -> None:
    html = render(REPORT, "html").decode("utf-8")
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    for name in REPORT["order"]:
        assert f'<section id="{name}"' in html
    assert html.count('<div class="query">') >= len(REPORT["order"]) - 1
    assert html.count('src="data:image/svg+xml;base64,') >= 5  # over time, heat map, tactics, response, coverage
    assert "GET PREFIX-alerts/_search" in html
    assert "<strong>ok</strong>, 12 records, last seq 12" in html  # the integrity section: the chain verified


def test_csv_keeps_log_strings_as_text() -> None:
    text = render(REPORT, "csv").decode("utf-8")
    assert text.startswith("section,figure,value\n")
    assert "monitoring,total,3000" in text
    assert "\n=" not in text and ",=" not in text


@pytest.mark.skipif(not shutil.which("pdftotext") or not shutil.which("pdftoppm"),
                    reason="poppler-utils (pdftotext, pdftoppm) not installed: deploy/run ensure_test_tools")
def test_pdf_text_and_pages(tmp_path: Path) -> None:
    pdf = tmp_path / "yearly.pdf"
    pdf.write_bytes(render(REPORT, "pdf"))
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Báo cáo định kỳ về giám sát an toàn thông tin" in text
    assert "2025-12-15 – 2026-12-14" in text  # scope and period on every page
    pages = text.count("\f")
    assert pages >= 8
    assert text.count("province · 2025-12-15 – 2026-12-14") >= pages
    assert f"1 / {pages}" in text and f"{pages} / {pages}" in text
    assert '<script>alert("x")</script>' in text  # shown as text, not run
    assert "Mục lục" in text
    SHOTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-r", "60", "-png", "-f", "1", "-l", "6", str(pdf), str(SHOTS / "yearly")],
                   check=True)
    assert len(list(SHOTS.glob("yearly-*.png"))) >= 6
