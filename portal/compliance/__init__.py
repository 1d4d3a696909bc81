"""Compliance: audit search and export, integrity runs, break-glass review, disclosures,
reports and oversight."""
