"""The signed consent's PDF (rendering only: the consent service decides what it says)."""

from __future__ import annotations

import io
from datetime import datetime

from portal.domain.consent_text import WORDS


def render_signed_consent(text: list[str], signer: str, signed_at: datetime, witness: str,
                          language: str, drawing: bytes | None = None) -> bytes:
    """The signed consent as a PDF: its sentences, the drawn signature if any, and who signed
    and witnessed it when (the document whose hash the consent row keeps)."""
    from fpdf import FPDF  # imported on first use: start-up does not pay for it

    words = WORDS.get(language, WORDS["en"])
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 8, words["title"], new_x="LMARGIN", new_y="NEXT")
    for line in text:
        pdf.multi_cell(0, 6, line.encode("latin-1", "replace").decode("latin-1"),
                       new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    pdf.ln(4)
    if drawing is not None:
        pdf.image(io.BytesIO(drawing), w=70)
    signed = words["signed"].format(signer=signer, when=f"{signed_at:%Y-%m-%d %H:%M}",
                                    witness=witness)
    pdf.multi_cell(0, 6, signed.encode("latin-1", "replace").decode("latin-1"),
                   new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
