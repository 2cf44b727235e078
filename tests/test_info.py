"""``ferfast info``: versions, providers, CPU features, the detector cache and the model catalog."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import onnxruntime
import pytest

import ferfast
from ferfast import assets
from ferfast.cli import main as cli_main
from ferfast.stream.kiosk import gui_backend


def _info(capsys: pytest.CaptureFixture[str]) -> str:
    assert cli_main(["info"]) == 0
    return capsys.readouterr().out


def test_info_reports_versions_providers_and_models(capsys: pytest.CaptureFixture[str]) -> None:
    out = _info(capsys)
    assert f"ferfast {ferfast.__version__}" in out
    assert f"onnxruntime {onnxruntime.__version__}" in out
    assert "CPUExecutionProvider" in out
    assert f"opencv {cv2.__version__}" in out
    assert "cpu: " in out and "features:" in out
    for m in ferfast.list_models():
        line = next(x for x in out.splitlines() if x.strip().startswith(m.name + " "))
        assert m.file in line and f"accuracy {m.accuracy:.4f}" in line
        assert all(f" {a} " in line for a in m.aliases)
        assert "[file missing]" not in line


def test_info_shows_the_detector_cache_state(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    yunet_path: Path,
) -> None:
    monkeypatch.setenv(assets.HOME_ENV, str(tmp_path))
    monkeypatch.delenv("FERFAST_YUNET", raising=False)
    line = next(x for x in _info(capsys).splitlines() if x.startswith("yunet:"))
    assert "not cached" in line and str(tmp_path) in line
    shutil.copy(yunet_path, tmp_path / assets.YUNET.name)
    line = next(x for x in _info(capsys).splitlines() if x.startswith("yunet:"))
    assert f"cached at {tmp_path / assets.YUNET.name}" in line
    # $FERFAST_YUNET wins over the cache (detect.make_detector), and info says so.
    monkeypatch.setenv("FERFAST_YUNET", str(yunet_path))
    line = next(x for x in _info(capsys).splitlines() if x.startswith("yunet:"))
    assert f"FERFAST_YUNET={yunet_path} (used instead of the cache)" in line


def test_opencv_gui_line_parsing() -> None:
    assert gui_backend("  GUI:                           QT5\n    QT:  YES (ver 5.15)\n") == "QT5"
    headless = "  GUI:                           NONE\n    GTK+:                        NO\n"
    assert gui_backend(headless) == "NONE"
    assert (
        gui_backend("  GUI:\n    GTK+:                        YES (ver 3.24)\n")
        == "GTK+ YES (ver 3.24)"
    )
    assert gui_backend("no such section") == "unknown"
