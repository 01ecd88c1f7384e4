"""The two-sided alpha of a trial's report-metric CIs: the analysis plan's, which lives in the
``analysis`` app above this one. ``analysis`` registers its ``plan_alpha`` here when it is
ready (``AnalysisConfig.ready``); until then (or without it) the default is 0.05."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DEFAULT_ALPHA = 0.05
_provider: Callable[[Any], float] | None = None


def register(provider: Callable[[Any], float]) -> None:
    global _provider
    _provider = provider


def trial_alpha(trial: Any) -> float:
    """The alpha of ``trial``'s analysis (its signed plan's), else 0.05."""
    return _provider(trial) if _provider is not None else DEFAULT_ALPHA
