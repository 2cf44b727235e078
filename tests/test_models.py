"""The bundled-model catalog: names, aliases, files, and its PublicTest figures re-measured."""

from __future__ import annotations

import re

import numpy as np
import pytest

import ferfast
from ferfast.models import (
    ALIASES,
    BUNDLED,
    CATALOG,
    DEFAULT_MODEL,
    MODELS_DIR,
    model_info,
    model_path,
)
from ferfast.runtime import resolve_model


def test_catalog_lists_every_bundled_file_and_engine_loads_it() -> None:
    names = [m.name for m in ferfast.list_models()]
    assert names[0] == DEFAULT_MODEL == "fast"  # the Engine default comes first
    assert sorted(names) == sorted(BUNDLED)
    for info in CATALOG:
        assert info.path == model_path(info.name) and info.path.is_file()
        engine = ferfast.Engine(model=info.name, detector=None)
        assert engine.classify(np.zeros((2, 48, 48), np.uint8)).shape == (2, len(ferfast.EMOTIONS))


def test_names_and_aliases_resolve_to_the_same_file() -> None:
    assert [(m.name, m.family, m.precision, m.aliases) for m in CATALOG] == [
        ("fast", "fast", "int8", ("int8",)),
        ("fast-fp32", "fast", "fp32", ("fp32",)),
        ("accurate", "accurate", "int8", ()),
        ("accurate-fp32", "accurate", "fp32", ()),
    ]
    assert ALIASES == {"int8": "fast", "fp32": "fast-fp32"}
    for alias, name in ALIASES.items():
        for spelling in (alias, alias.upper(), name, name.upper()):
            assert model_info(spelling) is model_info(name)
            assert model_path(spelling) == resolve_model(spelling) == MODELS_DIR / BUNDLED[name]
    assert ferfast.model_info is model_info and ferfast.model_path is model_path


def test_unknown_names_are_clear_errors() -> None:
    listing = "fast, fast-fp32, accurate, accurate-fp32; aliases int8 = fast, fp32 = fast-fp32"
    for name in ("int4", "accurate-int4", "fast_fp32"):
        message = re.escape(f"model {name!r} (expected one of {listing})")
        for resolve in (model_path, model_info):
            with pytest.raises(ValueError, match=message):
                resolve(name)
    with pytest.raises(
        ValueError, match=re.escape(f"'foo' is neither a bundled model name ({listing})")
    ):
        ferfast.Engine(model="foo", detector=None)
    with pytest.raises(TypeError, match="model name must be a str"):
        model_info(8)  # type: ignore[arg-type]


def test_fast_model_predicts_a_real_photo(photos: dict[str, np.ndarray]) -> None:
    """Engine(model="fast") end to end (Haar detector: no download), the same as its alias."""
    fast = ferfast.Engine(model="fast", detector="haar")
    results = fast.predict(photos["images_1.jpg"])
    assert len(results) == 1 and results[0].emotion in ferfast.EMOTIONS
    same = ferfast.Engine(model="int8", detector="haar").predict(photos["images_1.jpg"])
    np.testing.assert_array_equal(same[0].probs, results[0].probs)
    default = ferfast.Engine(detector="haar").predict(photos["images_1.jpg"])
    np.testing.assert_array_equal(default[0].probs, results[0].probs)


@pytest.fixture(scope="module")
def publictest(shared_dir) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """PublicTest labels and every bundled model's probabilities on its faces."""
    from training.data import load

    test_dir = shared_dir / "data" / "fer2013" / "test"
    if not test_dir.is_dir():
        pytest.skip(f"FER2013 PublicTest not available at {test_dir}")
    faces, labels = load(test_dir)[0].subset("PublicTest")
    probs = {}
    for info in CATALOG:
        engine = ferfast.Engine(model=info.name, detector=None)
        probs[info.name] = np.concatenate(
            [engine.classify(faces[i : i + 512]) for i in range(0, len(faces), 512)]
        )
    return labels, probs


def test_catalog_figures_match_publictest(publictest) -> None:
    from training.metrics import compute_metrics

    labels, probs = publictest
    for info in CATALOG:
        m = compute_metrics(labels, probs[info.name], with_auc=False)
        assert m.accuracy == pytest.approx(info.accuracy, abs=5e-4), info.name
        assert m.macro_f1 == pytest.approx(info.macro_f1, abs=5e-4), info.name
        assert m.disgust_recall == pytest.approx(info.disgust_recall, abs=5e-4), info.name


def test_no_model_ties_its_top_two_emotions_on_publictest(publictest) -> None:
    """An exact tie would let the first emotion in EMOTIONS order win by position alone."""
    labels, probs = publictest
    assert len(labels) == 3589
    for name, p in probs.items():
        top = np.sort(p, axis=1)[:, -2:]
        assert int(np.sum(top[:, 0] == top[:, 1])) == 0, name


def test_int8_models_compute_float_logits() -> None:
    """The classifier heads run in float on int8 features: no Softmax reads a
    DequantizeLinear, whose int8 grid would make equal probabilities common."""
    import onnx

    from training.quantize import head_nodes, inspect_qdq

    for info in CATALOG:
        if info.precision != "int8":
            continue
        model = onnx.load(str(info.path))
        report = inspect_qdq(model)
        heads = [n for n in head_nodes(model) if n.op_type == "Gemm"]
        n_softmax = sum(n.op_type == "Softmax" for n in model.graph.node)
        assert report.grid_logits == 0 and len(heads) == n_softmax >= 1, info.name
        assert report.float_ops.get("Gemm") == len(heads) and "Gemm" not in report.quantized_ops
        assert "Conv" in report.quantized_ops and "Conv" not in report.float_ops, info.name
        inits = {i.name for i in model.graph.initializer}
        assert all(h.input[1] in inits for h in heads), info.name  # float weights
        meta = {p.key: p.value for p in model.metadata_props}
        assert "head=float" in meta["ferfast.calibration"], info.name


def test_accurate_model_is_the_mean_of_its_committed_members() -> None:
    """accurate-fp32 is a fused graph whose members are files of this repository: the shipped
    fast-fp32 model and a committed teacher artifact. Its probabilities equal the weighted mean
    of theirs, each averaged over the face and its mirror image when the graph flips
    (test_catalog_figures_match_publictest measures the INT8 file)."""
    import json
    from pathlib import Path

    import onnx

    from ferfast.assets import sha256_file
    from ferfast.ort import OrtRunner

    info = model_info("accurate-fp32")
    meta = {
        p.key: p.value for p in onnx.load(str(info.path), load_external_data=False).metadata_props
    }
    doc = json.loads(meta["ferfast.ensemble"])
    root = Path(__file__).resolve().parents[1]
    files = [root / m["file"] for m in doc["members"]]
    # The installed fast-fp32 file (in the tree or in site-packages) is one of the members.
    assert sha256_file(model_path("fast-fp32")) in [m["sha256"] for m in doc["members"]]
    for m, f in zip(doc["members"], files, strict=True):
        assert sha256_file(f) == m["sha256"], f
    faces = np.random.default_rng(0).integers(0, 256, (32, 1, 48, 48)).astype(np.float32) / 255
    # With flip test-time augmentation each member also sees the mirror image of every face.
    views = [faces, faces[..., ::-1].copy()] if doc["flip"] else [faces]
    fused = OrtRunner(info.path).run(faces)
    members = [np.mean([OrtRunner(f).run(v) for v in views], axis=0) for f in files]
    expected = sum(w * p for w, p in zip(doc["weights"], members, strict=True))
    np.testing.assert_allclose(fused, expected, atol=1e-5)
