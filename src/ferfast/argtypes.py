"""argparse pieces shared by the ``ferfast`` and ``ferfast-stream`` command lines.

The value types turn the argument text into a value or raise ``argparse.ArgumentTypeError`` with a
message naming the problem (argparse then exits with status 2 and the usage line);
``add_engine_arguments`` and ``engine_from_args`` give both commands the same Engine options.
"""

from __future__ import annotations

import argparse
import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

from ferfast.detectors import DETECTOR_NAMES, DETECTORS
from ferfast.models import DEFAULT_MODEL, names_text

if TYPE_CHECKING:
    from ferfast.engine import Engine

__all__ = [
    "add_engine_arguments",
    "below_one",
    "detector_fallback_note",
    "engine_from_args",
    "fraction",
    "non_negative_int",
    "plain_warnings",
    "positive_int",
    "seconds",
    "size",
]

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
below_one = _ranged(float, "a number", lambda v: 0.0 <= v < 1.0, "in [0, 1)")
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


def add_engine_arguments(
    group: argparse._ActionsContainer, threads: int | None = None, threads_why: str = ""
) -> None:
    """The Engine options (model, backend, detector, threads) on ``group``.

    ``threads``: the default of ``--threads`` (None: ONNX Runtime's default of min(2, CPUs));
    ``threads_why``: why that default, appended to its help.
    """
    group.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"a bundled model ({names_text()}; 'ferfast info' lists them), or the path of an "
        f".onnx model or TensorRT .engine (default {DEFAULT_MODEL})",
    )
    group.add_argument(
        "--backend",
        default="auto",
        choices=("auto", "cpu", "cuda", "tensorrt", "onnxruntime"),
        help="auto: TensorRT for an .engine model; ONNX Runtime on the GPU (CUDA) when "
        "onnxruntime-gpu (pip install 'ferfast[gpu]') and an NVIDIA GPU are present, else on the "
        "CPU. cpu (alias onnxruntime), cuda: ONNX Runtime on that device; tensorrt: an .engine "
        "model, or ONNX Runtime's TensorRT provider for an .onnx model (default auto)",
    )
    kinds = "; ".join(f"{k.name}: {k.about}" for k in DETECTORS.values())
    group.add_argument(
        "--detector",
        default="auto",
        choices=DETECTOR_NAMES,
        help="auto: YuNet (--detector-model, else $FERFAST_YUNET, else the copy fetched once "
        "into the cache, see ferfast download), the Haar cascade with a warning when YuNet "
        f"cannot be had; {kinds}; yunet fails instead of falling back (default auto)",
    )
    group.add_argument("--detector-model", metavar="PATH", help="YuNet ONNX model file")
    group.add_argument(
        "--detector-size",
        type=positive_int,
        default=320,
        metavar="N",
        help="detector input size (long side, default 320; smaller is faster)",
    )
    group.add_argument(
        "--score-threshold",
        type=fraction,
        default=0.6,
        metavar="F",
        help="minimum YuNet face score (default 0.6)",
    )
    default = "min(2, CPUs)" if threads is None else str(threads)
    help_threads = f"ONNX Runtime intra-op threads (default {default}{threads_why})"
    group.add_argument(
        "--threads", type=positive_int, default=threads, metavar="N", help=help_threads
    )


def engine_from_args(args: argparse.Namespace) -> Engine:
    """An Engine made from the options of ``add_engine_arguments``."""
    from ferfast.engine import Engine  # deferred: --help and argument errors stay fast

    return Engine(
        model=args.model,
        backend=args.backend,
        detector=args.detector,
        detector_model=args.detector_model,
        detector_size=args.detector_size,
        score_threshold=args.score_threshold,
        threads=args.threads,
    )


def detector_fallback_note(engine: Engine, requested: str) -> str | None:
    """A line for the run summary when ``requested`` "auto" fell back to the Haar cascade.

    The fallback's warning is printed when the engine loads; repeated in the summary, it is
    not lost above a long table.
    """
    from ferfast.detect import HaarDetector

    if requested != "auto" or not isinstance(engine.detector, HaarDetector):
        return None
    return (
        "detector: the Haar fallback, YuNet could not be had (finds fewer faces; give a local "
        "YuNet file with --detector-model, FERFAST_YUNET or 'ferfast download --from FILE')"
    )


@contextlib.contextmanager
def plain_warnings(emit: Callable[[str], object]) -> Iterator[None]:
    """Within the block, Python warnings go to ``emit(message)`` as one plain line.

    A command-line user gets the message (e.g. the detector falling back to Haar) without the
    source file and line of Python's default warning format.
    """
    with warnings.catch_warnings():

        def show(message: Warning | str, *_args: object, **_kwargs: object) -> None:
            emit(str(message))

        warnings.showwarning = show
        yield
