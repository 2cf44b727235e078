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


def test_catalog_figures_match_publictest(shared_dir) -> None:
    from training.data import load
    from training.metrics import compute_metrics

    test_dir = shared_dir / "data" / "fer2013" / "test"
    if not test_dir.is_dir():
        pytest.skip(f"FER2013 PublicTest not available at {test_dir}")
    faces, labels = load(test_dir)[0].subset("PublicTest")
    for info in CATALOG:
        engine = ferfast.Engine(model=info.name, detector=None)
        probs = np.concatenate(
            [engine.classify(faces[i : i + 512]) for i in range(0, len(faces), 512)]
        )
        m = compute_metrics(labels, probs, with_auc=False)
        assert m.accuracy == pytest.approx(info.accuracy, abs=5e-4), info.name
        assert m.macro_f1 == pytest.approx(info.macro_f1, abs=5e-4), info.name
        assert m.disgust_recall == pytest.approx(info.disgust_recall, abs=5e-4), info.name


def test_accurate_model_is_the_mean_of_its_committed_members() -> None:
    """accurate-fp32 is a fused graph whose members are files of this repository: the shipped
    fast-fp32 model and a committed teacher artifact. Its probabilities equal the weighted mean
    of theirs (test_catalog_figures_match_publictest measures the INT8 file)."""
    import json
    from pathlib import Path

    import onnx

    from ferfast.assets import sha256_file
    from ferfast.runtime import OrtRunner

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
    fused = OrtRunner(info.path).run(faces)
    members = [OrtRunner(f).run(faces) for f in files]
    expected = sum(w * p for w, p in zip(doc["weights"], members, strict=True))
    np.testing.assert_allclose(fused, expected, atol=1e-5)
