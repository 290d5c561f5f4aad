"""The checks every model config's ``validate()`` runs on its fields, with the error message they share:
a choice among named values, an integer with a minimum, a number in a range."""
from __future__ import annotations

import math


def check_choice(name: str, value, valid) -> None:
    """Raise a ValueError naming the valid values when ``value`` is not one of them."""
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid values: {', '.join(map(str, valid))}")


def check_int(name: str, value, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")


def check_number(name: str, value, low: float, high: float = math.inf, low_open: bool = False) -> None:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) \
        and (value > low if low_open else value >= low) and value <= high
    if not ok:
        raise ValueError(f"{name} must be a number in {'(' if low_open else '['}{low:g}, {high:g}]; got {value!r}")
