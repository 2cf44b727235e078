"""Shared fixtures: a tiny contract-honouring ONNX model and paths into ../shared (read-only)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from tiny_model import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
YUNET = SHARED / "models" / "face_detection_yunet_2026may.onnx"
PHOTOS = SHARED / "data" / "photos"


@pytest.fixture(scope="session", autouse=True)
def hermetic_assets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty session cache ($FERFAST_HOME) and no downloads ($FERFAST_OFFLINE=1).

    No test reaches the internet or depends on the user's cache: detector "auto" falls back to
    Haar with a warning unless a test gives YuNet (``yunet_path``) or serves it (test_assets).
    Set in os.environ, so CLI subprocesses inherit it.
    """
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("ferfast_home")
        mp.setenv("FERFAST_HOME", str(home))
        mp.setenv("FERFAST_OFFLINE", "1")
        mp.delenv("FERFAST_MODEL_URL", raising=False)
        yield home


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny 7-class model, no metadata (contract defaults: EMOTIONS, scale 1/255, bias 0)."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny.onnx")


@pytest.fixture()
def make_model(tmp_path: Path) -> Callable[..., Path]:
    """Factory for tiny-model variants: make_model(name, **build_tiny_model kwargs) -> path."""

    def make(name: str = "variant.onnx", **kwargs) -> Path:
        return build_tiny_model(tmp_path / name, **kwargs)

    return make


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data not available at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def yunet_path() -> Path:
    if not YUNET.is_file():
        pytest.skip(f"YuNet model not available at {YUNET}")
    return YUNET


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """Real photos with one face each: images_1 and the left (face) panel of demo_1/demo_2.

    demo_3/demo_4 (drawn faces) are left out: the detectors are not expected to find them.
    """
    if not PHOTOS.is_dir():
        pytest.skip(f"shared photos not available at {PHOTOS}")
    out = {}
    for name in ("images_1.jpg", "demo_1.png", "demo_2.png"):
        img = cv2.imread(str(PHOTOS / name), cv2.IMREAD_COLOR)
        if img is None:
            pytest.skip(f"cannot read {PHOTOS / name}")
        out[name] = img[:, :420] if name.startswith("demo") else img  # demo: left panel view
    return out


@pytest.fixture()
def no_yunet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sure FERFAST_YUNET from the environment does not leak into a test."""
    monkeypatch.delenv("FERFAST_YUNET", raising=False)
