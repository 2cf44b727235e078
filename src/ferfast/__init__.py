"""ferfast: fast facial-emotion recognition for the edge."""

from __future__ import annotations

__version__ = "0.1.0"
