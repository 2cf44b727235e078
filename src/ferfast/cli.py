"""The ``ferfast`` command line: one argparse subcommand per job, each in ``ferfast.commands``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .argtypes import plain_warnings
from .commands.common import EXIT_ERROR, EXIT_INTERRUPTED
from .commands.download import add_download
from .commands.engines import add_bench_engine, add_build_engine, add_wrap_engine
from .commands.info import add_info
from .commands.predict import add_predict

_DESCRIPTION = "Facial-emotion recognition: photos and videos, models, TensorRT engines."
_EPILOG = """examples:
  ferfast predict photo.jpg
  ferfast predict photos/ -o faces.csv
  ferfast build-engine fast -o ferfast.engine    (on the GPU that will run it)
  ferfast bench-engine ferfast.engine

'ferfast COMMAND --help' shows a command's options; cameras, video files and
network streams: 'ferfast-stream --help'."""


def make_parser() -> argparse.ArgumentParser:
    """The argument parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="ferfast",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"ferfast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in (
        add_build_engine,
        add_wrap_engine,
        add_bench_engine,
        add_download,
        add_predict,
        add_info,
    ):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ferfast`` console script; returns the exit code."""
    parser = make_parser()
    args = parser.parse_args(argv)

    def warn(message: str) -> None:
        print(f"ferfast {args.command}: warning: {message}", file=sys.stderr)

    try:
        with plain_warnings(warn):
            code: int = args.func(args)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"ferfast {args.command}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"ferfast {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
