"""The bundled-model catalog: names, files, and its PublicTest figures re-measured."""

from __future__ import annotations

import numpy as np
import pytest

import ferfast
from ferfast.models import BUNDLED, CATALOG, model_path


def test_catalog_lists_every_bundled_file_and_engine_loads_it() -> None:
    names = [m.name for m in ferfast.list_models()]
    assert names[0] == "int8"  # the Engine default comes first
    assert sorted(names) == sorted(BUNDLED)
    for info in CATALOG:
        assert info.path == model_path(info.name) and info.path.is_file()
        engine = ferfast.Engine(model=info.name, detector=None)
        assert engine.classify(np.zeros((2, 48, 48), np.uint8)).shape == (2, len(ferfast.EMOTIONS))


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
