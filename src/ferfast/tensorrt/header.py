"""ferfast engine file format: a small text header in front of the serialized TensorRT engine.

Layout (little endian)::

    b"FERFTRT1" | uint32 header_len | header (UTF-8 ``key=value`` lines) | TensorRT plan bytes

A TensorRT plan only runs with the TensorRT version that built it and on the GPU model it was
built for, so the header records both and :func:`check_compatible` refuses a mismatch with a
message that names both sides. The C++ runtime (``cpp/trt/engine_file.hpp``) reads the same format.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .._types import PathLike
from ..contract import DEFAULT_BIAS, DEFAULT_SCALE

MAGIC = b"FERFTRT1"
_LEN = struct.Struct("<I")
_MAX_HEADER = 1 << 16
PRECISIONS = ("int8", "fp16", "fp32")


class EngineMismatchError(RuntimeError):
    """The engine was built with another TensorRT version or for another GPU."""


@dataclass(frozen=True)
class EngineHeader:
    """Metadata stored in front of a serialized TensorRT engine."""

    trt_version: str  # e.g. "10.13.0.35"
    gpu_name: str  # e.g. "NVIDIA H100 80GB HBM3" or "Orin"
    compute_capability: str  # e.g. "9.0"
    precision: str  # "int8" | "fp16" | "fp32"
    emotions: tuple[str, ...]
    input_scale: float = DEFAULT_SCALE
    input_bias: float = DEFAULT_BIAS
    max_batch: int = 64
    opt_batch: int = 8
    extra: Mapping[str, str] = field(default_factory=dict)  # e.g. ferfast.version, source model

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not self.emotions or any(not e or "," in e for e in self.emotions):
            raise ValueError(f"emotions must be non-empty names without commas: {self.emotions!r}")
        if not 1 <= self.opt_batch <= self.max_batch:
            raise ValueError(
                f"need 1 <= opt_batch <= max_batch, got {self.opt_batch}, {self.max_batch}"
            )
        for key, text in self._fields().items():
            if "\n" in text or "\r" in text:
                raise ValueError(f"header field {key!r} must be one line: {text!r}")

    def _fields(self) -> dict[str, str]:
        fields = {
            "trt_version": self.trt_version,
            "gpu_name": self.gpu_name,
            "compute_capability": self.compute_capability,
            "precision": self.precision,
            "emotions": ",".join(self.emotions),
            "input_scale": repr(float(self.input_scale)),
            "input_bias": repr(float(self.input_bias)),
            "max_batch": str(int(self.max_batch)),
            "opt_batch": str(int(self.opt_batch)),
        }
        for key, value in self.extra.items():
            if key in fields or "=" in key or not key:
                raise ValueError(f"bad extra header key {key!r}")
            fields[key] = value
        return fields

    def to_bytes(self) -> bytes:
        """Serialize as ``key=value`` lines (UTF-8)."""
        return "".join(f"{k}={v}\n" for k, v in self._fields().items()).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> EngineHeader:
        """Parse the ``key=value`` lines written by :meth:`to_bytes`."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError("engine header is not UTF-8") from exc
        fields: dict[str, str] = {}
        for line in text.splitlines():
            if not line:
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise ValueError(f"malformed engine header line {line!r}")
            fields[key] = value
        required = ("trt_version", "gpu_name", "compute_capability", "precision", "emotions")
        missing = [k for k in required if k not in fields]
        if missing:
            raise ValueError(f"engine header lacks {', '.join(missing)}")
        try:
            return cls(
                trt_version=fields.pop("trt_version"),
                gpu_name=fields.pop("gpu_name"),
                compute_capability=fields.pop("compute_capability"),
                precision=fields.pop("precision"),
                emotions=tuple(fields.pop("emotions").split(",")),
                input_scale=float(fields.pop("input_scale", repr(DEFAULT_SCALE))),
                input_bias=float(fields.pop("input_bias", repr(DEFAULT_BIAS))),
                max_batch=int(fields.pop("max_batch", "64")),
                opt_batch=int(fields.pop("opt_batch", "1")),
                extra=fields,
            )
        except ValueError as exc:
            raise ValueError(f"invalid engine header: {exc}") from exc


def pack_engine(header: EngineHeader, plan: bytes | bytearray | memoryview) -> bytes:
    """Return the engine file bytes: magic, header length, header, TensorRT plan."""
    head = header.to_bytes()
    if len(head) > _MAX_HEADER:
        raise ValueError("engine header too large")
    if len(plan) == 0:
        raise ValueError("empty TensorRT plan")
    return MAGIC + _LEN.pack(len(head)) + head + bytes(plan)


def unpack_engine(data: bytes | bytearray | memoryview) -> tuple[EngineHeader, memoryview]:
    """Split engine file bytes into (header, plan); ValueError when it is not a ferfast engine."""
    view = memoryview(data)
    if len(view) < len(MAGIC) + _LEN.size or bytes(view[: len(MAGIC)]) != MAGIC:
        raise ValueError(
            "not a ferfast engine file (missing FERFTRT1 header); build it with "
            "`ferfast build-engine MODEL.onnx -o OUT.engine`"
        )
    (n,) = _LEN.unpack_from(view, len(MAGIC))
    start = len(MAGIC) + _LEN.size
    if n > _MAX_HEADER or start + n >= len(view):
        raise ValueError("truncated or corrupt ferfast engine file")
    header = EngineHeader.from_bytes(bytes(view[start : start + n]))
    return header, view[start + n :]


def write_engine(
    path: PathLike, header: EngineHeader, plan: bytes | bytearray | memoryview
) -> Path:
    """Write an engine file atomically (temp file + rename)."""
    out = Path(path)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(pack_engine(header, plan))
    tmp.replace(out)
    return out


def read_engine(path: PathLike) -> tuple[EngineHeader, bytes]:
    """Read an engine file; returns (header, plan bytes)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"engine file not found: {p}")
    try:
        header, plan = unpack_engine(p.read_bytes())
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from exc
    return header, bytes(plan)


def _version_key(version: str) -> tuple[str, ...]:
    """major.minor.patch: TensorRT plans are tied to these (the build number does not matter)."""
    return tuple(version.strip().split(".")[:3])


def check_compatible(
    header: EngineHeader,
    trt_version: str,
    gpu_name: str,
    compute_capability: str,
    path: PathLike | None = None,
) -> None:
    """Raise EngineMismatchError unless the engine fits this TensorRT version and GPU."""
    where = f" {path}" if path is not None else ""
    problems: list[str] = []
    if _version_key(header.trt_version) != _version_key(trt_version):
        problems.append(
            f"built with TensorRT {header.trt_version}, this runtime is TensorRT {trt_version}"
        )
    if header.compute_capability != compute_capability or header.gpu_name != gpu_name:
        problems.append(
            f"built for GPU '{header.gpu_name}' (sm {header.compute_capability}), "
            f"this GPU is '{gpu_name}' (sm {compute_capability})"
        )
    if problems:
        raise EngineMismatchError(
            f"engine{where} does not match this machine: {'; '.join(problems)}. "
            "TensorRT engines are specific to the TensorRT version and GPU: rebuild it here with "
            "`ferfast build-engine MODEL.onnx -o OUT.engine`."
        )


def check_io(emotions: Sequence[str], num_outputs: int) -> None:
    """Check that the engine's output width matches the header's emotion list."""
    if len(emotions) != num_outputs:
        raise ValueError(
            f"engine output has {num_outputs} classes but its header lists {len(emotions)} "
            f"emotions ({','.join(emotions)})"
        )
