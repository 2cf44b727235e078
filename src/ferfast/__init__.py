"""ferfast: fast facial-emotion recognition for the edge.

frame -> detect -> preprocess -> run -> results::

    import ferfast
    engine = ferfast.Engine()                 # "fast" INT8 model, ONNX Runtime CPU, YuNet/Haar
    for face in engine.predict(frame_bgr):    # Faces: one Face view per face
        print(face.box, face.emotion, face.confidence)
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    __version__: str
    from ferfast.engine import Engine
    from ferfast.faces import Face, FaceResult, Faces
    from ferfast.files import FramePrediction, predict_files
    from ferfast.labels import EMOTIONS
    from ferfast.models import ModelInfo, list_models, model_info, model_path
    from ferfast.preprocess import preprocess

# Names load on first use (PEP 562): ``import ferfast`` and the command lines start without
# importing NumPy, OpenCV and ONNX Runtime, so an early Ctrl-C meets the CLI's own handler.
_LAZY = {
    "EMOTIONS": "ferfast.labels",
    "Engine": "ferfast.engine",
    "Face": "ferfast.faces",
    "FaceResult": "ferfast.faces",
    "Faces": "ferfast.faces",
    "FramePrediction": "ferfast.files",
    "ModelInfo": "ferfast.models",
    "list_models": "ferfast.models",
    "model_info": "ferfast.models",
    "model_path": "ferfast.models",
    "predict_files": "ferfast.files",
    "preprocess": "ferfast.preprocess",
}


class _Package(types.ModuleType):
    """Keeps ``ferfast.preprocess`` the function: importing the submodule of the same name would
    otherwise set the package attribute to the module."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return  # the name stays lazy: __getattr__ gives the function
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def _version() -> str:
    """The distribution's version, written once, in pyproject.toml. The wheel build copies it
    into ``ferfast/_version.py`` (pyproject ``[[tool.scikit-build.generate]]``); a source tree
    on sys.path has no such file and reads the installed package's metadata instead."""
    try:
        return str(importlib.import_module("ferfast._version").version)
    except ImportError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ferfast")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    else:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'ferfast' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | {"__version__"})


__all__ = [
    "EMOTIONS",
    "Engine",
    "Face",
    "FaceResult",
    "Faces",
    "FramePrediction",
    "ModelInfo",
    "__version__",
    "list_models",
    "model_info",
    "model_path",
    "predict_files",
    "preprocess",
]
