"""JSON-safe values for the analysis' outputs (summary.json, the page, the API): one place, so
the summary and the blinding assessment write NaN, NumPy scalars and tuples the same way."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become None, tuples lists, NumPy scalars Python numbers."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value
