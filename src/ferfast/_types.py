"""Type aliases shared across ferfast modules."""

from __future__ import annotations

import os
from typing import TypeAlias

# A file system path as the public API takes it: a str or any os.PathLike (pathlib.Path).
PathLike: TypeAlias = str | os.PathLike[str]
