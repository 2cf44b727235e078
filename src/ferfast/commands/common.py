"""What the ``ferfast`` subcommands share: exit statuses and the output-path check."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_OK, EXIT_ERROR, EXIT_UNAVAILABLE, EXIT_USAGE = 0, 1, 2, 2
EXIT_INTERRUPTED = 130  # as a shell reports a command stopped by Ctrl-C


def check_paths(
    command: str,
    outputs: Sequence[tuple[str, Path | None, bool]],
    inputs: Sequence[Path],
    force: bool,
) -> int:
    """Check (option, path, updated in place) output paths before any work; EXIT_USAGE after
    printing the problem, else 0. A file updated in place (a cache) may exist already."""
    from ferfast.outpaths import OutputPathError, check_file

    try:
        for option, path, in_place in outputs:
            if path is not None:
                check_file(path, option, inputs=inputs, force=force or in_place)
    except OutputPathError as exc:
        print(f"ferfast {command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0
