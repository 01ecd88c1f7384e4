"""A text progress bar for management commands (no dependency needed)."""

from __future__ import annotations

from django.core.management.base import OutputWrapper

BAR_WIDTH = 30


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """``[#####.....] 12/40``: enough to see a long command is moving."""
    filled = round(width * done / total) if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def _plain(text: str) -> str:
    return text


def draw(stream: OutputWrapper, done: int, total: int, suffix: str = "") -> None:
    """Redraw the bar in place on ``stream`` (a command's stderr: the bar is not output).

    Written unstyled: a command's stderr styles everything as an error (red on a terminal),
    and the bar is not one. Other writes to ``stream`` keep its style.
    """
    stream.write("\r" + progress_bar(done, total) + (f" {suffix}" if suffix else ""),
                 style_func=_plain, ending="")
    stream.flush()
