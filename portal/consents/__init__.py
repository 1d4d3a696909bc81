"""Consents: the form, signing, the signed PDF, revocation, the staff consent list."""
