"""The demo's commands make accounts with a known password (``cxr-demo``), a coordinator among
them, or write simulated data: never on a trial's site. They run with ``DEMO_MODE=1``, or on a
throw-away stack (the deployment test, a benchmark) when told so with ``--throwaway``."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import CommandError, CommandParser


def add_throwaway(parser: CommandParser) -> None:
    parser.add_argument(
        "--throwaway", action="store_true",
        help="Run without DEMO_MODE: only on a throw-away stack (a test or a benchmark), never "
             "on a trial's site.")


def refuse_outside_demo(command: str, options: dict, *, what: str) -> None:
    """CommandError unless ``DEMO_MODE`` is on or ``--throwaway`` was given."""
    if settings.DEMO_MODE or options.get("throwaway"):
        return
    raise CommandError(
        f"{command} {what}: never on a trial's site. It runs with DEMO_MODE=1 (the demo), or "
        "with --throwaway on a stack that is thrown away afterwards (a test, a benchmark).")
