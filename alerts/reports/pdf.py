"""PDF from the report's HTML with WeasyPrint (CSS paged media: running header with the scope and
period, page numbers, table of contents with page numbers)."""

from __future__ import annotations

from alerts.reports import ReportError


def html_to_pdf(html: str) -> bytes:
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as error:  # OSError: Pango missing from the system
        raise ReportError(f"PDF needs WeasyPrint and Pango: {error}") from error
    data: bytes = HTML(string=html).write_pdf()
    return data
