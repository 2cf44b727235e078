"""``ferfast info``: versions, providers, CPU features, the detector cache and the model catalog."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import onnxruntime
import pytest

import ferfast
from ferfast import assets
from ferfast.cli import _opencv_gui
from ferfast.cli import main as cli_main


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
        assert "[file missing]" not in line


def test_info_shows_the_detector_cache_state(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    yunet_path: Path,
) -> None:
    monkeypatch.setenv(assets.HOME_ENV, str(tmp_path))
    line = next(x for x in _info(capsys).splitlines() if x.startswith("yunet:"))
    assert "not cached" in line and str(tmp_path) in line
    shutil.copy(yunet_path, tmp_path / assets.YUNET.name)
    line = next(x for x in _info(capsys).splitlines() if x.startswith("yunet:"))
    assert f"cached at {tmp_path / assets.YUNET.name}" in line


def test_opencv_gui_line_parsing() -> None:
    assert _opencv_gui("  GUI:                           QT5\n    QT:  YES (ver 5.15)\n") == "QT5"
    headless = "  GUI:                           NONE\n    GTK+:                        NO\n"
    assert _opencv_gui(headless) == "NONE"
    assert (
        _opencv_gui("  GUI:\n    GTK+:                        YES (ver 3.24)\n")
        == "GTK+ YES (ver 3.24)"
    )
    assert _opencv_gui("no such section") == "unknown"
