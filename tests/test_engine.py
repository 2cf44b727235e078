"""ferfast.Engine end to end: classify numerics, predict, bad inputs, threads, no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from tiny_model import reference_probs

import ferfast
from ferfast import EMOTIONS, Engine, FaceResult
from ferfast.detect import HaarDetector, YuNetDetector
from ferfast.faces import Face
from ferfast.framing import FRAMING, FRAMING_HAAR, FRAMING_YUNET
from ferfast.models import BUNDLED, MODELS_DIR

TOL = {"rtol": 1e-5, "atol": 1e-6}


def faces(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48), dtype=np.uint8)


def test_public_api() -> None:
    assert ferfast.EMOTIONS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert isinstance(ferfast.__version__, str)
    for name in ("Engine", "FaceResult", "preprocess", "model_path"):
        assert callable(getattr(ferfast, name))


def test_classify_matches_numpy_reference(tiny_model: Path) -> None:
    engine = Engine(tiny_model, detector=None)
    assert engine.emotions == EMOTIONS
    for n in (1, 5, 64, 3):  # grows, then re-uses the per-thread buffer
        x = faces(n, seed=n)
        probs = engine.classify(x)
        assert probs.shape == (n, 7) and probs.dtype == np.float32
        ref_input = x[:, None].astype(np.float32) * np.float32(1 / 255)
        np.testing.assert_array_equal(engine._input(n), ref_input)  # exact normalisation
        np.testing.assert_allclose(probs, reference_probs(ref_input), **TOL)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    single = faces(1, seed=7)
    np.testing.assert_allclose(engine.classify(single[0]), engine.classify(single), **TOL)
    strided = faces(4, seed=8)[:, ::-1, ::-1]  # a non-contiguous view
    np.testing.assert_allclose(
        engine.classify(strided), engine.classify(np.ascontiguousarray(strided)), **TOL
    )
    assert engine.classify(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)


def test_classify_uses_model_metadata(make_model) -> None:
    names = ("neg", "neu", "pos", "x", "y", "z")
    path = make_model(
        k=6,
        metadata={
            "ferfast.emotions": ",".join(names),
            "ferfast.input_scale": str(1 / 127.5),
            "ferfast.input_bias": "-1.0",
        },
    )
    engine = Engine(path, detector=None)
    assert engine.emotions == names
    x = faces(6, seed=3)
    ref_input = x[:, None].astype(np.float32) * np.float32(1 / 127.5) + np.float32(-1.0)
    np.testing.assert_allclose(engine.classify(x), reference_probs(ref_input, k=6), **TOL)
    assert engine.framing.input_scale == pytest.approx(1 / 127.5)
    assert engine.framing.input_bias == -1.0


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ([[0] * 48] * 48, TypeError),
        (np.zeros((48, 48), np.float32), TypeError),
        (np.zeros((48, 48), np.int64), TypeError),
        (np.zeros((47, 48), np.uint8), ValueError),
        (np.zeros((2, 1, 48, 48), np.uint8), ValueError),
        (np.zeros((2, 48, 48, 3), np.uint8), ValueError),
        (np.zeros(48, np.uint8), ValueError),
    ],
)
def test_classify_rejects_bad_input(tiny_model: Path, value, error) -> None:
    engine = Engine(tiny_model, detector=None)
    with pytest.raises(error):
        engine.classify(value)


def test_engine_model_errors(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="absent.onnx"):
        Engine(tmp_path / "absent.onnx", detector=None)
    corrupt = tmp_path / "broken.onnx"
    corrupt.write_bytes(tiny_model.read_bytes()[:500])
    with pytest.raises(ValueError, match="broken.onnx"):
        Engine(corrupt, detector=None)
    with pytest.raises(ValueError, match="backend"):
        Engine(tiny_model, backend="gpu", detector=None)
    with pytest.raises(ValueError, match=r"\.onnx or \.engine"):
        Engine(tmp_path / "model.pth", detector=None)
    with pytest.raises(TypeError, match="detector"):
        Engine(tiny_model, detector=42)
    with pytest.raises(ValueError, match="detector must be"):
        Engine(tiny_model, detector="dlib")


def test_predict_with_boxes_matches_preprocess_reference(tiny_model: Path) -> None:
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 40, 50], [60, 20, 80, 80], [-10, 90, 30, 40]], np.float32)
    engine = Engine(tiny_model, detector=None)
    assert engine.framing == FRAMING
    results = engine.predict(frame, boxes=boxes)
    ref = reference_probs(ferfast.preprocess(frame, boxes, framing=FRAMING))
    assert len(results) == 3
    for res, box, p in zip(results, boxes, ref, strict=True):
        assert isinstance(res, FaceResult)
        assert res.box == tuple(float(v) for v in box)
        assert res.score == 1.0 and res.landmarks is None
        np.testing.assert_allclose(res.probs, p, **TOL)
        assert res.emotion == EMOTIONS[int(np.argmax(p))]
        assert res.confidence == pytest.approx(float(p.max()), abs=1e-6)
    as_list = engine.predict(frame, boxes=boxes.tolist())
    np.testing.assert_allclose([r.probs for r in as_list], ref, **TOL)
    haar_framed = engine.predict(frame, boxes=boxes, framing=FRAMING_HAAR)
    ref_haar = reference_probs(ferfast.preprocess(frame, boxes, framing=FRAMING_HAAR))
    np.testing.assert_allclose([r.probs for r in haar_framed], ref_haar, **TOL)
    assert len(engine.predict(frame, boxes=np.zeros((0, 4)))) == 0
    assert len(engine.predict(frame, boxes=[])) == 0


def test_predict_with_landmarks_uses_alignment(tiny_model: Path) -> None:
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (100, 100), dtype=np.uint8)
    boxes = np.array([[20, 20, 50, 60]], np.float32)
    marks = np.array([[[35, 40], [55, 42], [45, 52], [37, 65], [53, 66]]], np.float32)
    engine = Engine(tiny_model, detector=None)
    res = engine.predict(frame, boxes=boxes, landmarks=marks)[0]
    ref = reference_probs(ferfast.preprocess(frame, boxes, landmarks=marks, framing=FRAMING))
    np.testing.assert_allclose(res.probs, ref[0], **TOL)
    np.testing.assert_array_equal(res.landmarks, marks[0])
    marks[:] = 0  # results own their landmarks: the caller's array may be reused
    assert res.landmarks.any()
    exact = engine.predict(frame, boxes=[[20.1, 20.3, 50.7, 60.9]])[0]
    assert exact.box == (20.1, 20.3, 50.7, 60.9)  # caller's boxes come back as given


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"frame": None}, TypeError),
        ({"frame": np.zeros((50, 50), np.float32)}, TypeError),
        ({"frame": np.zeros((50, 50, 2), np.uint8)}, ValueError),
        ({"frame": np.zeros((0, 50, 3), np.uint8)}, ValueError),
        ({"boxes": [[1, 2, 3]]}, ValueError),
        ({"boxes": [[1, 2, 3, 4, 5]]}, ValueError),
        ({"boxes": [[np.nan, 2, 3, 4]]}, ValueError),
        ({"boxes": [[0, 0, np.inf, 4]]}, ValueError),
        ({"boxes": [[0, 0, 0, 4]]}, ValueError),
        ({"boxes": [[0, 0, 5, -4]]}, ValueError),
        ({"boxes": [[5000, 5000, 50, 50]]}, ValueError),  # no overlap with the frame
        ({"boxes": [[-50, 0, 50, 50]]}, ValueError),
        ({"boxes": [["a", 0, 5, 4]]}, TypeError),
        ({"boxes": [[0, 0, 5, 4]], "landmarks": np.zeros((1, 4, 2))}, ValueError),
        ({"boxes": [[0, 0, 5, 4]], "landmarks": np.full((1, 5, 2), np.nan)}, ValueError),
        ({"boxes": [[0, 0, 5, 4]], "framing": "yunet"}, TypeError),
        ({}, ValueError),  # no detector and no boxes
        ({"landmarks": np.zeros((1, 5, 2))}, ValueError),
    ],
)
def test_predict_rejects_bad_input(tiny_model: Path, kwargs: dict, error) -> None:
    engine = Engine(tiny_model, detector=None)
    args = {"frame": np.zeros((50, 50, 3), np.uint8), **kwargs}
    with pytest.raises(error):
        engine.predict(**args)


def test_predict_names_a_box_outside_the_frame(tiny_model: Path) -> None:
    engine = Engine(tiny_model, detector=None)
    frame = np.zeros((50, 60, 3), np.uint8)
    named = r"boxes\[1\] \(x=5000, y=5000, w=50, h=50\) lies entirely"
    with pytest.raises(ValueError, match=named):
        engine.predict(frame, boxes=[(5, 5, 20, 20), (5000, 5000, 50, 50)])
    # a box that only partly overlaps still gets a result (edge replication)
    assert len(engine.predict(frame, boxes=[(-45, 40, 50, 50)])) == 1


def test_custom_detector_object(tiny_model: Path) -> None:
    class Fixed:
        framing = FRAMING_HAAR

        def detect(self, frame: np.ndarray) -> list[Face]:
            return [Face((5.0, 6.0, 30.0, 30.0), 0.9)]

    frame = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    engine = Engine(tiny_model, detector=Fixed())
    (res,) = engine.predict(frame)
    assert res.box == (5.0, 6.0, 30.0, 30.0) and res.score == pytest.approx(0.9)
    ref = reference_probs(ferfast.preprocess(frame, [[5, 6, 30, 30]], framing=FRAMING_HAAR))
    np.testing.assert_allclose(res.probs, ref[0], **TOL)
    assert engine.detect(frame)[0].score == pytest.approx(0.9)


@pytest.mark.parametrize("name", ["images_1.jpg", "demo_1.png"])
def test_predict_end_to_end_on_photos(
    tiny_model: Path, yunet_path: Path, photos: dict, name: str, no_yunet_env
) -> None:
    frame = photos[name]
    yunet = Engine(tiny_model, detector_model=yunet_path)
    assert isinstance(yunet.detector, YuNetDetector) and yunet.framing == FRAMING_YUNET
    (res,) = yunet.predict(frame)
    assert res.landmarks is not None and res.landmarks.shape == (5, 2)
    assert 0.6 <= res.score <= 1.0
    np.testing.assert_allclose(res.probs.sum(), 1.0, atol=1e-5)
    again = yunet.predict(frame, boxes=[res.box], landmarks=res.landmarks[None])
    np.testing.assert_allclose(again[0].probs, res.probs, **TOL)

    haar = Engine(tiny_model, detector="haar")
    assert isinstance(haar.detector, HaarDetector) and haar.framing == FRAMING_HAAR
    (hres,) = haar.predict(frame)
    assert hres.landmarks is None and hres.score == 1.0

    data = json.loads(json.dumps(res.as_dict()))
    assert set(data) == {"box", "score", "emotion", "confidence", "probs"}
    assert list(data["probs"]) == list(EMOTIONS)
    assert data["emotion"] == res.emotion == max(data["probs"], key=data["probs"].get)
    assert data["box"] == pytest.approx(list(res.box), abs=0.005)  # rounded to 0.01 px
    assert sum(data["probs"].values()) == pytest.approx(1.0, abs=1e-5)


def test_engine_env_var_selects_yunet(tiny_model: Path, yunet_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FERFAST_YUNET", str(yunet_path))
    engine = Engine(tiny_model, detector_size=256, score_threshold=0.7)
    assert isinstance(engine.detector, YuNetDetector)
    assert engine.detector.input_size == 256 and engine.detector.score_threshold == 0.7
    monkeypatch.setenv("FERFAST_YUNET", str(yunet_path.parent / "missing.onnx"))
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        Engine(tiny_model)


def run_threads(worker, jobs: list, n_threads: int = 4) -> list:
    """Run worker(job) for every job from n_threads threads at once; results in job order."""
    out: list = [None] * len(jobs)
    errors: list = []
    start = threading.Barrier(n_threads)

    def loop(tid: int) -> None:
        try:
            start.wait()
            for i in range(tid, len(jobs), n_threads):
                out[i] = worker(jobs[i])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return out


def test_shared_engine_classify_between_threads(tiny_model: Path) -> None:
    engine = Engine(tiny_model, detector=None)
    jobs = [faces(n, seed=i) for i, n in enumerate([1, 7, 64, 2, 33, 1, 5, 16] * 3)]
    expected = [engine.classify(x) for x in jobs]
    got = run_threads(engine.classify, jobs)
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_allclose(g, e, **TOL)


def test_shared_engine_predict_between_threads(
    tiny_model: Path, yunet_path: Path, photos: dict
) -> None:
    engine = Engine(tiny_model, detector_model=yunet_path)
    rng = np.random.default_rng(4)
    frames = list(photos.values())
    jobs = []
    for i in range(24):
        frame = frames[i % len(frames)]
        if i % 3 == 2:  # caller-given boxes of varying count
            k = 1 + i % 4
            xy = rng.uniform(0, 200, (k, 2))
            jobs.append((frame, np.hstack([xy, rng.uniform(20, 150, (k, 2))])))
        else:
            jobs.append((frame, None))

    def work(job):
        return [(r.box, r.probs) for r in engine.predict(job[0], boxes=job[1])]

    expected = [work(j) for j in jobs]
    got = run_threads(work, jobs)
    for e, g in zip(expected, got, strict=True):
        assert len(e) == len(g) > 0
        for (ebox, eprobs), (gbox, gprobs) in zip(e, g, strict=True):
            assert ebox == gbox
            np.testing.assert_allclose(gprobs, eprobs, **TOL)


def test_no_torch_import(tiny_model: Path) -> None:
    code = (
        "import sys, numpy as np, ferfast\n"
        f"e = ferfast.Engine({str(tiny_model)!r}, detector='haar')\n"
        "e.classify(np.zeros((2, 48, 48), np.uint8))\n"
        "e.predict(np.zeros((120, 160, 3), np.uint8))\n"
        "e.predict(np.zeros((120, 160, 3), np.uint8), boxes=[[10, 10, 50, 50]])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "FERFAST_YUNET"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_model(name: str, photos_or_none) -> None:
    path = MODELS_DIR / BUNDLED[name]
    if not path.is_file():
        pytest.skip(f"bundled model {path.name} not shipped yet")
    engine = Engine(detector="haar") if name == "fast" else Engine(name, detector="haar")
    assert engine.emotions == EMOTIONS
    probs = engine.classify(faces(4))
    assert probs.shape == (4, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    if photos_or_none is not None:
        results = engine.predict(photos_or_none["images_1.jpg"])
        assert len(results) == 1 and results[0].emotion in EMOTIONS


@pytest.fixture()
def photos_or_none(request) -> dict | None:
    try:
        return request.getfixturevalue("photos")
    except pytest.skip.Exception:
        return None


def test_predict_keeps_caller_scores_and_takes_detections(
    yunet_path, photos: dict[str, np.ndarray]
) -> None:
    engine = ferfast.Engine(detector_model=yunet_path)
    frame = photos["images_1.jpg"]
    dets = engine.detect(frame)
    assert dets and dets[0].landmarks is not None
    detected = engine.predict(frame)
    # Detections from detect(): same boxes, scores, landmarks and probabilities as predict(frame).
    given = engine.predict(frame, boxes=dets)
    assert [r.score for r in given] == [d.score for d in dets] == [r.score for r in detected]
    np.testing.assert_allclose(given[0].probs, detected[0].probs, atol=1e-6)
    np.testing.assert_array_equal(given[0].landmarks, dets[0].landmarks)
    # Plain boxes: score 1.0 unless scores are given.
    boxes = [d.box for d in dets]
    assert [r.score for r in engine.predict(frame, boxes=boxes)] == [1.0] * len(dets)
    scored = engine.predict(frame, boxes=boxes, scores=[0.25] * len(dets))
    assert [r.score for r in scored] == [0.25] * len(dets)
    with pytest.raises(ValueError, match="one value per box"):
        engine.predict(frame, boxes=boxes, scores=[0.5] * (len(dets) + 1))
    with pytest.raises(ValueError, match="finite"):
        engine.predict(frame, boxes=boxes, scores=[float("nan")] * len(dets))
    with pytest.raises(ValueError, match="only accepted together with boxes"):
        engine.predict(frame, scores=[1.0])
    with pytest.raises(ValueError, match="pass neither"):
        engine.predict(frame, boxes=dets, scores=[1.0] * len(dets))


def test_faces_columns_are_checked_when_made_and_replaced() -> None:
    from ferfast.faces import Faces

    faces = Faces(np.array([[1.0, 2.0, 3.0, 4.0]]), np.array([0.5]))
    assert len(faces) == 1 and faces.probs is None and faces[0].emotion == ""
    with pytest.raises(ValueError, match="boxes"):
        Faces(np.zeros((1, 3)), np.array([0.5]))
    with pytest.raises(ValueError, match="scores"):
        Faces(np.zeros((1, 4)), np.zeros(2))
    with pytest.raises(ValueError, match="probs"):
        faces.replace(probs=np.zeros((1, 6)))
    with pytest.raises(ValueError, match="track_ids"):
        faces.replace(track_ids=np.arange(2))
    probs = np.eye(7, dtype=np.float32)[[3]]
    done = faces.replace(probs=probs, track_ids=[9])
    assert faces.probs is None  # the original is unchanged
    assert done[0].emotion == "happy" and done[0].track_id == 9 and done.emotion_ids.tolist() == [3]
    both = Faces(np.zeros((2, 4)) + [[0, 0, 5, 5]], np.array([0.9, 0.8]), probs=np.eye(7)[[1, 3]])
    assert [f.emotion for f in both[both.scores > 0.85]] == ["disgust"]
    assert len(both[1:]) == 1 and both[-1].score == 0.8
