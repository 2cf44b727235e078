"""Engine.classify latency at batch 1 and 64 (pytest-benchmark): ``pytest benchmarks/``.

Runs the tiny in-test ONNX model (graph overhead: normalisation, IO binding, session.run) and
the bundled models ("fast" INT8, "fast-fp32") when they are present.
"""

from __future__ import annotations

import numpy as np
import pytest
from tiny_model import build_tiny_model

from ferfast import Engine
from ferfast.contract import SIDE
from ferfast.models import BUNDLED, MODELS_DIR

MODELS = ["tiny", *sorted(BUNDLED)]


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Engine]:
    tiny = build_tiny_model(tmp_path_factory.mktemp("bench") / "tiny.onnx")
    out = {"tiny": Engine(tiny, detector=None)}
    for name, filename in BUNDLED.items():
        if (MODELS_DIR / filename).is_file():
            out[name] = Engine(name, detector=None)
    return out


@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("model", MODELS)
def test_classify(benchmark, engines: dict[str, Engine], model: str, batch: int) -> None:
    if model not in engines:
        pytest.skip(f"bundled model {BUNDLED[model]} not present")
    engine = engines[model]
    faces = np.random.default_rng(0).integers(0, 256, (batch, SIDE, SIDE), dtype=np.uint8)
    benchmark.group = f"Engine.classify batch {batch}"
    benchmark.extra_info.update(model=model, threads=engine.runner.threads)
    probs = benchmark(engine.classify, faces)
    assert probs.shape == (batch, len(engine.emotions))


@pytest.mark.parametrize("n_faces", [1, 8])
def test_predict_given_boxes(benchmark, engines: dict[str, Engine], n_faces: int) -> None:
    """Engine.predict on a 640x480 frame with caller boxes + landmarks (a tracker's call).

    Tiny model, so the time is mostly the Engine's own per-call work: argument handling,
    preprocess, IO-bound run, results.
    """
    engine = engines["tiny"]
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    xy = rng.uniform(0, 500, (n_faces, 2))
    boxes = np.hstack([xy, np.full((n_faces, 2), 100.0)])
    eyes = np.array([[30.0, 40.0], [70.0, 40.0], [50.0, 60.0], [35.0, 80.0], [65.0, 80.0]])
    landmarks = xy[:, None, :] + eyes
    benchmark.group = f"Engine.predict given boxes, {n_faces} faces"
    results = benchmark(engine.predict, frame, boxes, landmarks)
    assert len(results) == n_faces
