"""Who asked, from where: what every use case is given about the request it serves."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestMeta:
    """Who asked, from where: copied into every audit event."""

    actor: str
    session_id: str | None = None
    client_address: str | None = None
    request_id: str | None = None
