"""LEAD partner portal: consent-controlled information sharing with a tamper-evident audit log."""

__version__ = "0.1.0"
