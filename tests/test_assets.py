"""ferfast.assets and detector "auto": fetch once into the cache, verify, fall back to Haar.

A loopback HTTP server (127.0.0.1, port 0) serves the shared YuNet file, intact or damaged; no
test reaches the internet. conftest.hermetic_assets makes the session cache empty and offline.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferfast import Engine, assets
from ferfast.cli import main as ferfast_main
from ferfast.detect import HaarDetector, YuNetDetector

NAME = assets.YUNET.name
MODES = ("ok", "truncated", "oversized", "corrupt", "dropped", "slow")


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``/<mode>/<file>``: ok, truncated, oversized, corrupt, dropped, slow; else 404."""

    body: bytes = b""
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.requests.append(self.path)
        mode, _, name = self.path.strip("/").partition("/")
        if name != NAME or mode not in (
            "ok",
            "truncated",
            "oversized",
            "corrupt",
            "dropped",
            "slow",
        ):
            self.send_error(404)
            return
        body = self.body
        length = len(body)
        if mode == "truncated":
            body = body[: len(body) // 2]
            length = len(body)
        elif mode == "oversized":
            body += b"\0" * 1000
            length = len(body)
        elif mode == "corrupt":
            body = body[:1000] + bytes([body[1000] ^ 0xFF]) + body[1001:]
        elif mode == "dropped":
            body = body[:5000]  # announces the full length, then closes the connection
        elif mode == "slow":
            time.sleep(1.5)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Mirror:
    """A loopback server for the shared YuNet file; ``url(mode)`` is a base URL to fetch from."""

    def __init__(self, body: bytes) -> None:
        handler = type("Handler", (_Handler,), {"body": body, "requests": []})
        self.requests: list[str] = handler.requests
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def url(self, mode: str = "ok") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{mode}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def mirror(yunet_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mirror]:
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")  # a proxy must not see loopback
    server = Mirror(yunet_path.read_bytes())
    yield server
    server.stop()


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache ($FERFAST_HOME) with downloads allowed and no YuNet override."""
    folder = tmp_path / "home"
    monkeypatch.setenv("FERFAST_HOME", str(folder))
    monkeypatch.delenv("FERFAST_OFFLINE")
    monkeypatch.delenv("FERFAST_YUNET", raising=False)
    return folder


def engine_warnings(model: Path) -> tuple[Engine, list[warnings.WarningMessage]]:
    """Engine(model) with detector "auto", and the UserWarnings its construction raised.

    Other categories are left out: a ResourceWarning from an unrelated object that the garbage
    collector happens to finalise during construction is not ferfast's warning.
    """
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", UserWarning)
        engine = Engine(model)
    return engine, record


def test_registry_pins_the_shared_release(yunet_path: Path) -> None:
    data = yunet_path.read_bytes()
    assert assets.ASSETS["yunet"] is assets.YUNET
    assert len(data) == assets.YUNET.size
    assert assets.cached(assets.YUNET, yunet_path.parent) == yunet_path.parent / NAME
    assert assets.YUNET.url.startswith("https://") and assets.YUNET.url.endswith("/" + NAME)


def test_fetch_downloads_once_then_uses_the_cache(
    mirror: Mirror, home: Path, yunet_path: Path, tiny_model: Path, monkeypatch
) -> None:
    monkeypatch.setenv("FERFAST_MODEL_URL", mirror.url())
    path = assets.fetch(assets.YUNET)
    assert path == home / NAME
    assert path.read_bytes() == yunet_path.read_bytes()
    assert sorted(p.name for p in home.iterdir()) == [NAME]  # no temporary file left
    assert mirror.requests == [f"/ok/{NAME}"]

    mirror.stop()  # from now on the network would fail: the cache must be enough
    monkeypatch.setenv("FERFAST_OFFLINE", "1")
    assert assets.fetch(assets.YUNET) == path
    engine, record = engine_warnings(tiny_model)
    assert isinstance(engine.detector, YuNetDetector) and engine.detector.model_path == path
    assert record == []
    assert len(mirror.requests) == 1


@pytest.mark.parametrize(
    ("mode", "cause"),
    [
        ("missing", r"HTTP 404"),
        ("truncated", rf"sent {assets.YUNET.size // 2} bytes, expected {assets.YUNET.size}"),
        ("oversized", rf"more than {assets.YUNET.size} bytes"),
        ("corrupt", r"SHA-256 is [0-9a-f]{64}, expected " + assets.YUNET.sha256),
        ("dropped", r"sent 5000 bytes, expected"),  # connection closed early
    ],
)
def test_failed_fetch_leaves_nothing_and_auto_falls_back_to_haar(
    mirror: Mirror, home: Path, tiny_model: Path, mode: str, cause: str, monkeypatch
) -> None:
    monkeypatch.setenv("FERFAST_MODEL_URL", mirror.url(mode))
    with pytest.raises(assets.AssetError, match=cause) as info:
        assets.fetch(assets.YUNET)
    assert "ferfast download" in str(info.value) and str(home) in str(info.value)
    assert list(home.iterdir()) == []  # neither the final name nor a temporary file

    engine, record = engine_warnings(tiny_model)
    assert isinstance(engine.detector, HaarDetector)
    assert len(record) == 1 and issubclass(record[0].category, UserWarning)
    message = str(record[0].message)
    assert "Haar cascade" in message and "ferfast download" in message
    assert "--detector-model" in message
    assert list(home.iterdir()) == []


def test_unreachable_server_and_timeout(home: Path, mirror: Mirror) -> None:
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(assets.AssetError, match="cannot reach"):
        assets.fetch(assets.YUNET, base_url=f"http://127.0.0.1:{port}/ok")
    with pytest.raises(assets.AssetError, match=r"timed out after 0\.3 s"):
        assets.fetch(assets.YUNET, base_url=mirror.url("slow"), timeout=0.3)
    assert list(home.iterdir()) == []


def test_offline_never_touches_the_network(
    mirror: Mirror, home: Path, tiny_model: Path, monkeypatch
) -> None:
    monkeypatch.setenv("FERFAST_MODEL_URL", mirror.url())
    with pytest.raises(assets.AssetError, match=r"downloads are off \(allow_download=False\)"):
        assets.fetch(assets.YUNET, allow_download=False)
    monkeypatch.setenv("FERFAST_OFFLINE", "1")
    with pytest.raises(assets.AssetError, match=r"not in .* downloads are off \(\$FERFAST_OFF"):
        assets.fetch(assets.YUNET)
    engine, record = engine_warnings(tiny_model)
    assert isinstance(engine.detector, HaarDetector) and len(record) == 1
    assert "FERFAST_OFFLINE" in str(record[0].message)
    assert mirror.requests == []
    monkeypatch.setenv("FERFAST_OFFLINE", "0")  # "0" means online
    assert assets.fetch(assets.YUNET) == home / NAME


def test_a_damaged_cached_file_is_never_used(mirror: Mirror, home: Path, monkeypatch) -> None:
    home.mkdir()
    (home / NAME).write_bytes(b"\0" * assets.YUNET.size)  # right size, wrong content
    assert assets.cached(assets.YUNET) is None
    monkeypatch.setenv("FERFAST_OFFLINE", "1")
    with pytest.raises(assets.AssetError, match="wrong size or SHA-256"):
        assets.fetch(assets.YUNET)
    monkeypatch.delenv("FERFAST_OFFLINE")
    path = assets.fetch(assets.YUNET, base_url=mirror.url())  # replaced by a verified copy
    assert assets.cached(assets.YUNET) == path == home / NAME


def test_explicit_model_and_env_win_over_the_cache(
    mirror: Mirror, home: Path, yunet_path: Path, tiny_model: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("FERFAST_MODEL_URL", mirror.url())
    monkeypatch.setenv("FERFAST_YUNET", str(yunet_path))
    engine, record = engine_warnings(tiny_model)
    assert isinstance(engine.detector, YuNetDetector)
    assert engine.detector.model_path == yunet_path and record == []
    copy = tmp_path / "my_yunet.onnx"
    copy.write_bytes(yunet_path.read_bytes())
    engine = Engine(tiny_model, detector="yunet", detector_model=copy)
    assert engine.detector.model_path == copy
    assert mirror.requests == [] and not home.exists()


def test_download_command_end_to_end(mirror: Mirror, home: Path, tmp_path: Path) -> None:
    target = tmp_path / "kiosk models"
    env = dict(os.environ, FERFAST_MODEL_URL=mirror.url())
    cmd = [sys.executable, "-m", "ferfast.cli", "download", "--dir", str(target)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"yunet: {target / NAME}" in proc.stdout and "downloaded" in proc.stdout
    assert f"FERFAST_HOME={target}" in proc.stdout
    assert assets.cached(assets.YUNET, target) == target / NAME

    mirror.stop()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "already present" in proc.stdout


def test_download_command_reports_failure(mirror: Mirror, home: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("FERFAST_MODEL_URL", mirror.url("corrupt"))
    assert ferfast_main(["download"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ferfast download: cannot fetch " + NAME) and "SHA-256" in err
    assert not (home / NAME).exists()
    monkeypatch.setenv("FERFAST_MODEL_URL", mirror.url())
    assert ferfast_main(["download", "--force"]) == 0
    assert f"yunet: {home / NAME}" in capsys.readouterr().out


def test_sha256_file_hashes_across_chunks(tmp_path: Path) -> None:
    """sha256_file reads in chunks: a file over one chunk hashes like hashlib on its bytes."""
    import hashlib

    data = bytes(range(256)) * 300  # 76,800 bytes: more than one 64 KiB chunk
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert assets.sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert assets.sha256_file(str(path)) == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert assets.sha256_file(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_download_command_hashes_a_present_file_once(
    home: Path, yunet_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A valid cached file is verified once and kept: no second hash, no network."""
    import shutil

    home.mkdir()
    shutil.copy(yunet_path, home / NAME)
    hashed: list[Path] = []
    real = assets.sha256_file
    monkeypatch.setattr(assets, "sha256_file", lambda p: hashed.append(Path(p)) or real(p))
    monkeypatch.setenv("FERFAST_MODEL_URL", "http://127.0.0.1:9/unreachable")
    assert ferfast_main(["download"]) == 0
    assert hashed == [home / NAME] and "already present" in capsys.readouterr().out


def test_download_from_a_local_file_verifies_and_caches_it(
    yunet_path: Path, home: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("FERFAST_OFFLINE", "1")  # a local copy needs no network
    assert ferfast_main(["download", "--from", str(yunet_path)]) == 0
    assert f"yunet: {home / NAME}" in capsys.readouterr().out
    assert assets.cached(assets.YUNET, home) == home / NAME
    assert assets.fetch(assets.YUNET) == home / NAME  # used offline from now on

    wrong = tmp_path / "not_yunet.onnx"
    wrong.write_bytes(yunet_path.read_bytes()[:-1] + b"\0")
    other = tmp_path / "other"
    assert ferfast_main(["download", "--from", str(wrong), "--dir", str(other)]) == 1
    err = capsys.readouterr().err
    assert f"cannot take {NAME} from {wrong}" in err and "SHA-256" in err
    assert not (other / NAME).exists()
    assert ferfast_main(["download", "--from", str(tmp_path / "absent.onnx")]) == 1
    assert "is neither a file nor a URL" in capsys.readouterr().err
