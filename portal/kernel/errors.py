"""The four ways a use case says no, one home each. Every area raises these; the web layer
maps them to answers once (`portal.web.deps.found_or`, the area's routes).

- `NotFound`: nothing this requester may know of. Absent and not permitted look the same
  (404); when the participant exists, the refused attempt has been audited in the caller's
  transaction, which must therefore commit.
- `Refused`: the requester may know of it but may not do this; the message is the reason,
  safe to show (403).
- `InvalidInput`: what to fix, item by item; nothing was changed (400).
- `Conflict`: the request contradicts the current state, such as a grant already reviewed
  (409).
"""

from __future__ import annotations


class NotFound(LookupError):
    """Nothing this requester may know of (answered "not found")."""


class Refused(Exception):
    """Known to the requester, but not theirs to do; the message is safe to show."""


class InvalidInput(ValueError):
    """Bad input: each problem says what to fix; nothing was changed."""

    def __init__(self, *problems: str) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


class Conflict(Exception):
    """The request contradicts the current state; the message is safe to show."""
