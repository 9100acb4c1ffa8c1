"""How the library tells its caller about slow work: one Reporter handed down, which the library calls and never draws.

Tasks are named ("training", "photos", "denoise"); a task is started with its total, moved on with ``update``, and
ended with ``done``. The base class does nothing, so library users see nothing unless they ask; the CLI draws its
own progress bars from these calls (cli/_common.RichReporter).
"""

from __future__ import annotations


class Reporter:
    """A sink for progress: every method may be overridden, none has to be."""

    def start(self, task: str, total: float | None, description: str = "") -> None:
        """Task ``task`` begins, with ``total`` units of work (None: unknown)."""

    def update(self, task: str, *, completed: float | None = None, advance: float = 0.0, info: str = "") -> None:
        """The task is at ``completed`` units (or ``advance`` more); ``info`` is a short status (loss, score, file)."""

    def done(self, task: str) -> None:
        """The task has ended (its bar, if any, goes away)."""


SILENT = Reporter()
