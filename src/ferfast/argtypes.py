"""argparse value types shared by the ``ferfast`` and ``ferfast-stream`` command lines.

Each turns the argument text into a value or raises ``argparse.ArgumentTypeError`` with a message
naming the problem (argparse then exits with status 2 and the usage line).
"""

from __future__ import annotations

import argparse
from typing import Callable, TypeVar

__all__ = ["fraction", "non_negative_int", "positive_int", "seconds", "size"]

T = TypeVar("T", int, float)


def _ranged(
    convert: Callable[[str], T], expected: str, ok: Callable[[T], bool], rule: str
) -> Callable[[str], T]:
    """A value type: ``convert(text)`` (else "expected ...") that must satisfy ``ok``."""

    def parse(text: str) -> T:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {value}")
        return value

    return parse


positive_int = _ranged(int, "an integer", lambda v: v > 0, "> 0")
non_negative_int = _ranged(int, "an integer", lambda v: v >= 0, ">= 0")
fraction = _ranged(float, "a number", lambda v: 0.0 < v <= 1.0, "in (0, 1]")
seconds = _ranged(float, "seconds", lambda v: v > 0, "> 0")


def size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` -> (width, height), both positive."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return w, h
