"""Documents rendered from compliance reads: the accounting of disclosures as CSV and PDF."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, tzinfo
from typing import Any

from portal.compliance.disclosures import DISCLOSURE_COLUMNS, DisclosureReport
from portal.domain.audit import (
    escape_csv_cell,
    escape_for_display,
)

# The PDF: one block per disclosure (label and value lines, left-aligned, never justified), on
# A4 portrait, with "Page N of M" at the foot of every page.
PAGE_MARGIN = 15
LABEL_WIDTH = 48
LINE_HEIGHT = 5
FONT_SIZE = 9
# Where a word too long for its line may break: after these characters (an e-mail address after
# its @ or a dot, an id after a dash), never in the middle of a run of letters if avoidable.
_BREAK_AFTER = re.compile(r"[@./\-_:,;]")


def _latin1(text: str) -> str:
    return escape_for_display(text).encode("latin-1", "replace").decode("latin-1")


def _local(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def _zone_name(zone: tzinfo) -> str:
    return str(getattr(zone, "key", None) or zone)


def _split_word(pdf: Any, word: str, width: float) -> list[str]:
    """A word wider than the line, in pieces that fit: broken after punctuation where
    possible (``alice.example@`` / ``harbor-lead.example``), else where it must."""
    pieces = []
    while pdf.get_string_width(word) > width:
        fit = 1
        while fit < len(word) and pdf.get_string_width(word[:fit + 1]) <= width:
            fit += 1
        breaks = [m.end() for m in _BREAK_AFTER.finditer(word[:fit])]
        cut = breaks[-1] if breaks and breaks[-1] >= fit // 3 else fit
        pieces.append(word[:cut])
        word = word[cut:]
    return [*pieces, word] if word else pieces


def _wrap(pdf: Any, text: str, width: float) -> str:
    """The text in lines that fit ``width`` (mm) in the current font, broken between words,
    and long tokens broken sensibly (see _split_word)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            for piece in _split_word(pdf, word, width):
                candidate = f"{line} {piece}" if line else piece
                if line and pdf.get_string_width(candidate) > width:
                    lines.append(line)
                    line = piece
                else:
                    line = candidate
        lines.append(line)
    return "\n".join(lines)


def _reference(cell: str, report: DisclosureReport) -> str:
    """Consents by a readable description (kind, recipient, date signed); an emergency
    access by its reference."""
    if not cell:
        return ""
    parts = [p.strip() for p in cell.split(",")]
    if all(p in report.consents for p in parts):
        return "\n".join(_latin1(report.consents[p]) for p in parts)
    return _latin1(cell)


def render_disclosures_pdf(report: DisclosureReport, zone: tzinfo = UTC) -> bytes:
    """The accounting of disclosures as a PDF, with times in ``zone`` (the portal's configured
    time zone), named on the first page and on every time."""
    from fpdf import FPDF

    title = f"Accounting of disclosures for {report.public_id}"

    class Document(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font("helvetica", size=8)
            self.cell(0, 5, _latin1(f"{title} - Page {self.page_no()} of {{nb}}"),
                      align="C")

    pdf = Document(orientation="portrait", format="A4")
    pdf.set_title(title)
    pdf.set_author("LEAD Partner Portal")
    pdf.set_margins(PAGE_MARGIN, PAGE_MARGIN, PAGE_MARGIN)
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()
    width = pdf.w - 2 * PAGE_MARGIN
    pdf.set_font("helvetica", style="B", size=14)
    pdf.multi_cell(width, 8, _wrap(pdf, _latin1(title), width), align="L",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=FONT_SIZE)
    period = (f"Period: {report.since.isoformat() if report.since else 'six years back'} to "
              f"{report.until.isoformat() if report.until else 'today'}. Generated "
              f"{_local(report.generated_at, zone)} by {report.generated_by}.")
    for line in (period,
                 f"Times are in the {_zone_name(zone)} time zone.",
                 "Each disclosure of this participant's information to another organization "
                 "(45 CFR 164.528; 42 CFR 2.24, 2.25). Information categories only; no record "
                 "contents."):
        pdf.multi_cell(width, LINE_HEIGHT, _wrap(pdf, _latin1(line), width),
                       align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    if not report.rows:
        pdf.multi_cell(width, 6, "No disclosures in this period.", align="L",
                       new_x="LMARGIN", new_y="NEXT")
        pdf.alias_nb_pages()
        return bytes(pdf.output())
    labels = DISCLOSURE_COLUMNS[1:]
    times = report.times if len(report.times) == len(report.rows) else None
    value_width = width - LABEL_WIDTH
    for n, row in enumerate(report.rows, 1):
        when = _local(times[n - 1], zone) if times else f"{row[0]} UTC"
        # Keep a block's heading with its first lines.
        if pdf.will_page_break(LINE_HEIGHT * 4):
            pdf.add_page()
        pdf.set_font("helvetica", style="B", size=FONT_SIZE + 1)
        heading = _latin1(f"{n}. {when}: {row[5]}")
        pdf.multi_cell(width, LINE_HEIGHT + 1, _wrap(pdf, heading, width), align="L",
                       new_x="LMARGIN", new_y="NEXT")
        for label, raw in zip(labels, row[1:], strict=True):
            value = _reference(raw, report) if label.startswith("Consent") else _latin1(raw)
            if not value:
                continue
            pdf.set_font("helvetica", style="B", size=FONT_SIZE)
            label_text = "Consent or emergency" if label.startswith("Consent") else label
            y = pdf.get_y()
            if pdf.will_page_break(LINE_HEIGHT):
                pdf.add_page()
                y = pdf.get_y()
            pdf.multi_cell(LABEL_WIDTH, LINE_HEIGHT, _latin1(label_text), align="L",
                           new_x="RIGHT", new_y="TOP")
            pdf.set_font("helvetica", size=FONT_SIZE)
            pdf.set_xy(PAGE_MARGIN + LABEL_WIDTH, y)
            text = _wrap(pdf, value, value_width - 2)
            pdf.multi_cell(value_width, LINE_HEIGHT, text, align="L",
                           new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
        pdf.set_draw_color(201, 206, 214)
        pdf.line(PAGE_MARGIN, pdf.get_y(), PAGE_MARGIN + width, pdf.get_y())
        pdf.ln(2)
    pdf.alias_nb_pages()
    return bytes(pdf.output())


def disclosures_csv(report: DisclosureReport) -> str:
    """Spreadsheet-safe: control characters shown, a leading = + - @ neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(DISCLOSURE_COLUMNS)
    for row in report.rows:
        writer.writerow([escape_csv_cell(cell) for cell in row])
    return buffer.getvalue()
