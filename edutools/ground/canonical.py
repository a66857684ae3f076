"""The one rounding rule for parameter values: sliders, panels, caches and grids all use it.

A value that reaches a run or a cache key from a slider, a ``linspace`` or an arithmetic
expression (``0.5 * (1 - 0.9)`` = 0.04999999999999999) should mean what its short decimal means.
Rounding to :data:`SIGNIFICANT_DIGITS` significant digits makes ``0.9000000000000001`` and ``0.9``
the same number; it leaves every value the course's sliders offer unchanged, and two numbers that
differ in their first 12 digits stay different (so a cache never mistakes one for the other).
Pure Python: no torch, no NumPy.
"""

from __future__ import annotations

from typing import Any

#: Significant decimal digits kept by :func:`canonical_float`.
SIGNIFICANT_DIGITS = 12

__all__ = ["SIGNIFICANT_DIGITS", "canonical_float", "canonical_value"]


def canonical_float(value: float) -> float:
    """``value`` rounded to :data:`SIGNIFICANT_DIGITS` significant digits (NaN and ±inf as they
    are): ``canonical_float(0.1 + 0.2) == 0.3``."""
    return float(format(float(value), f".{SIGNIFICANT_DIGITS}g"))


def canonical_value(value: Any) -> Any:
    """A parameter value as runs and caches should see it: a float through
    :func:`canonical_float`, a NumPy (or torch) scalar as the Python number it holds (then
    rounded if a float), anything else unchanged."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float):
        return canonical_float(value)
    return value
