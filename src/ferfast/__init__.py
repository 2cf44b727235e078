"""ferfast: fast facial-emotion recognition for the edge.

frame -> detect -> preprocess -> run -> results::

    import ferfast
    engine = ferfast.Engine()                 # "fast" INT8 model, ONNX Runtime CPU, YuNet/Haar
    for face in engine.predict(frame_bgr):    # list[FaceResult]
        print(face.box, face.emotion, face.confidence)
"""

from __future__ import annotations

__version__ = "0.1.0"

from ferfast.engine import Engine, FaceResult
from ferfast.files import FramePrediction, predict_files
from ferfast.labels import EMOTIONS
from ferfast.models import ModelInfo, list_models, model_info, model_path
from ferfast.preprocess import preprocess

__all__ = [
    "EMOTIONS",
    "Engine",
    "FaceResult",
    "FramePrediction",
    "ModelInfo",
    "__version__",
    "list_models",
    "model_info",
    "model_path",
    "predict_files",
    "preprocess",
]
