"""A form posted after its session ended is kept for the same person in the same browser.

When a staff member's session ends (idle or absolute timeout) and their browser then posts a
form, the posted fields are stored encrypted (the vault's data key) for an hour, under the
SHA-256 of a random token in an HttpOnly cookie of that browser, and tied to the staff member
whose session it was. After they sign in again in that browser, the sign-in lands on the page
the form was on, and the page's script fills the form in from ``GET /auth/kept-form``, which
hands the fields over once and deletes them. The form is never submitted again by itself: the
person checks it and presses the button.

Kept only: the page the form is on (sent by the page's script as ``_kept_page``; without
script nothing is kept), text fields (no uploaded files), and never the CSRF token.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response
from litestar._parsers import parse_url_encoded_form_data
from litestar.datastructures import Cookie
from litestar.utils.scope.state import ScopeState
from sqlalchemy import delete
from sqlalchemy.orm import Session

from portal.auth.service import token_hash
from portal.config import Settings
from portal.crypto.vault import DecryptionError, Vault
from portal.db import models as m
from portal.db.types import utcnow

KEPT_MINUTES = 60
PAGE_FIELD = "_kept_page"
NOT_KEPT = frozenset({PAGE_FIELD, "_csrf_token", "csrftoken"})
MAX_FIELDS = 300
MAX_BYTES = 64 * 1024


def cookie_name(settings: Settings) -> str:
    return "__Host-portal_kept_form" if settings.https else "portal_kept_form"


def local_path(value: str) -> str | None:
    """A path on this portal (``/x?y``), or None: never another host (no open redirect)."""
    if not value or len(value) > 500 or not value.startswith("/") or value.startswith("//") \
            or "\\" in value or not value.isprintable():
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


def posted_fields(request: Request[Any, Any, Any]) -> list[tuple[str, str]] | None:
    """The fields of the form already read for this request (by the CSRF check or the
    handler), as (name, value) pairs in order; None when there is no such form."""
    scope_state = ScopeState.from_scope(request.scope)
    form: Any = scope_state.form
    if not isinstance(form, dict):
        body = scope_state.body
        if not isinstance(body, bytes) or request.content_type[0] != \
                "application/x-www-form-urlencoded":
            return None
        form = parse_url_encoded_form_data(body)
    fields: list[tuple[str, str]] = []
    for name, value in form.items():
        for one in value if isinstance(value, list) else [value]:
            if isinstance(one, str):
                fields.append((str(name), one))
    return fields


def keep(db: Session, vault: Vault, *, staff_user_id: int, action: str,
         fields: list[tuple[str, str]]) -> str | None:
    """Keep the posted form; the token for this browser's cookie (``cookie``), or None
    (nothing kept) without a page to return to, or when the form is too big to keep."""
    pages = [value for name, value in fields if name == PAGE_FIELD]
    page = local_path(pages[0]) if pages else None
    kept = [(name, value) for name, value in fields if name not in NOT_KEPT]
    blob = json.dumps(kept)
    if page is None or local_path(action) is None or len(kept) > MAX_FIELDS \
            or len(blob.encode()) > MAX_BYTES:
        return None
    token = secrets.token_urlsafe(32)
    row_id = token_hash(token)
    now = utcnow()
    db.execute(delete(m.KeptForm).where(m.KeptForm.expires_at < now))
    # One kept form per person: an older one is replaced.
    db.execute(delete(m.KeptForm).where(m.KeptForm.staff_user_id == staff_user_id))
    db.add(m.KeptForm(id=row_id, staff_user_id=staff_user_id, action=action, page=page,
                      fields_enc=vault.encrypt(blob, table="kept_form", column="fields_enc",
                                               row_id=row_id),
                      created_at=now, expires_at=now + timedelta(minutes=KEPT_MINUTES)))
    return token


def cookie(settings: Settings, token: str) -> Cookie:
    return Cookie(key=cookie_name(settings), value=token, path="/", httponly=True,
                  secure=settings.https, samesite="lax", max_age=KEPT_MINUTES * 60)


def _row(db: Session, request: Request[Any, Any, Any], staff_user_id: int) -> m.KeptForm | None:
    """This browser's kept form, if it is this person's and still fresh. A kept form found in
    this browser for somebody else is deleted: it is never shown to another person."""
    settings: Settings = request.app.state.settings
    token = request.cookies.get(cookie_name(settings))
    if not token or len(token) > 100:
        return None
    row = db.get(m.KeptForm, token_hash(token))
    if row is None:
        return None
    if row.staff_user_id != staff_user_id or row.expires_at < utcnow():
        db.delete(row)
        return None
    return row


def resume_target(db: Session, request: Request[Any, Any, Any],
                  staff_user_id: int) -> str | None:
    """Where a sign-in lands when this browser kept a form for this person: its page."""
    row = _row(db, request, staff_user_id)
    if row is None:
        return None
    separator = "&" if "?" in row.page else "?"
    return f"{row.page}{separator}kept=1"


def take(db: Session, vault: Vault, request: Request[Any, Any, Any],
         staff_user_id: int) -> dict[str, Any] | None:
    """The kept form (action and fields), handed over once: the row is deleted."""
    row = _row(db, request, staff_user_id)
    if row is None:
        return None
    db.delete(row)
    try:
        fields = json.loads(vault.decrypt_text(row.fields_enc, table="kept_form",
                                               column="fields_enc", row_id=row.id))
    except (DecryptionError, ValueError):
        return None
    return {"action": row.action, "page": row.page, "fields": fields}


def clear_cookie(response: Response[Any], settings: Settings) -> None:
    response.delete_cookie(cookie_name(settings), path="/")
