"""Where long compliance jobs run, behind one interface: the web app runs them in a thread of
its own process (their progress is kept in that process's memory, see
`integrity.VerificationRuns`); a caller that waits for the result runs them inline."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol


class Jobs(Protocol):
    def start(self, name: str, task: Callable[[], None]) -> None:
        """Run ``task``; it records its own outcome (it never raises)."""


class ThreadJobs:
    """Each job in a daemon thread of this process."""

    def start(self, name: str, task: Callable[[], None]) -> None:
        threading.Thread(target=task, name=name, daemon=True).start()


class InlineJobs:
    """The job runs before `start` returns."""

    def start(self, name: str, task: Callable[[], None]) -> None:
        del name
        task()


THREADS = ThreadJobs()
INLINE = InlineJobs()
