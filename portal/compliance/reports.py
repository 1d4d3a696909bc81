"""Documents rendered from compliance reads: the accounting of disclosures as CSV and PDF."""

from __future__ import annotations

import csv
import io

from portal.compliance.disclosures import DISCLOSURE_COLUMNS, DisclosureReport
from portal.domain.audit import (
    escape_csv_cell,
    escape_for_display,
)


def _latin1(text: str) -> str:
    return escape_for_display(text).encode("latin-1", "replace").decode("latin-1")


def render_disclosures_pdf(report: DisclosureReport) -> bytes:
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    pdf = FPDF(orientation="landscape", format="A4")
    pdf.set_title(f"Accounting of disclosures for {report.public_id}")
    pdf.set_author("LEAD Partner Portal")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font("helvetica", style="B", size=14)
    pdf.multi_cell(0, 8, _latin1(f"Accounting of disclosures for {report.public_id}"),
                   new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=9)
    period = (f"Period: {report.since.isoformat() if report.since else 'six years back'} to "
              f"{report.until.isoformat() if report.until else 'today'}. Generated "
              f"{report.generated_at:%Y-%m-%d %H:%M} UTC by {report.generated_by}.")
    for line in (period, "Each disclosure of this participant's information to another "
                 "organization (45 CFR 164.528; 42 CFR 2.24, 2.25). Information categories "
                 "only; no record contents."):
        pdf.multi_cell(0, 5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    if not report.rows:
        pdf.multi_cell(0, 6, "No disclosures in this period.", new_x="LMARGIN", new_y="NEXT")
    else:
        pdf.set_font("helvetica", size=7)
        widths = (24, 38, 30, 22, 32, 24, 12, 25, 28, 42)
        with pdf.table(col_widths=widths, headings_style=FontFace(emphasis="BOLD"),
                       line_height=4) as table:
            table.row([_latin1(c) for c in DISCLOSURE_COLUMNS])
            for row in report.rows:
                table.row([_latin1(c) for c in row])
    return bytes(pdf.output())


def disclosures_csv(report: DisclosureReport) -> str:
    """Spreadsheet-safe: control characters shown, a leading = + - @ neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(DISCLOSURE_COLUMNS)
    for row in report.rows:
        writer.writerow([escape_csv_cell(cell) for cell in row])
    return buffer.getvalue()

