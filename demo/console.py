"""What the demo's commands print: progress bars (on stderr) and a summary, no per-task log.

When tasks run in-process (no broker: the demo's default), Celery logs a "Task ... succeeded"
line for every AI draft made while the demo is built or simulated. ``quiet_task_logs`` keeps
those to warnings and errors for the duration of a command, so a failure still shows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.core.management.base import OutputWrapper

from trial.management.progress import draw

# Per-task INFO lines (Celery's task tracer) and the in-memory broker's "no hostname" notice.
QUIET = {"celery.app.trace": logging.WARNING, "kombu.connection": logging.ERROR}


@contextmanager
def quiet_task_logs() -> Iterator[None]:
    """Raise the task loggers' levels while the block runs; restore them after."""
    loggers = {name: logging.getLogger(name) for name in QUIET}
    before = {name: logger.level for name, logger in loggers.items()}
    try:
        for name, logger in loggers.items():
            logger.setLevel(max(QUIET[name], logger.getEffectiveLevel()))
        yield
    finally:
        for name, logger in loggers.items():
            logger.setLevel(before[name])


def bars(stream: OutputWrapper) -> tuple[Callable[[str, int, int], None], Callable[[], None]]:
    """``(progress, done)``: ``progress(stage, n, total)`` redraws the stage's bar in place,
    starting a new line for a new stage; ``done()`` ends the last line."""
    seen: list[str] = []

    def progress(stage: str, n: int, total: int) -> None:
        if seen and stage != seen[-1]:
            stream.write("")
        if not seen or stage != seen[-1]:
            seen.append(stage)
        draw(stream, n, total, stage)

    def done() -> None:
        if seen:
            stream.write("")
            seen.clear()

    return progress, done
