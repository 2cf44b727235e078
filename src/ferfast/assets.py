"""Third-party model files ferfast does not train: a pinned registry, a cache, a verified fetch.

Each asset is pinned by file name, size and SHA-256. The cache is one folder (``$FERFAST_HOME``,
default ``~/.cache/ferfast``) holding each file under its upstream name. A cached file with the
right size and checksum is used without any network. A download goes to a temporary file in the
cache folder, is checked, and only then renamed to its final name (atomic), so a failed,
truncated or tampered download never appears under that name.

Environment: ``$FERFAST_HOME`` (cache folder), ``$FERFAST_MODEL_URL`` (base URL of a mirror that
serves the files under their upstream names), ``$FERFAST_OFFLINE=1`` (never download).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ferfast._types import PathLike

HOME_ENV = "FERFAST_HOME"
URL_ENV = "FERFAST_MODEL_URL"
OFFLINE_ENV = "FERFAST_OFFLINE"
DEFAULT_HOME = Path("~/.cache/ferfast")
TIMEOUT_S = 30.0
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Asset:
    """A pinned third-party file: upstream name, URL, size in bytes, SHA-256 and licence."""

    name: str
    url: str
    size: int
    sha256: str
    licence: str

    @property
    def base_url(self) -> str:
        """The upstream URL without the file name (what ``$FERFAST_MODEL_URL`` replaces)."""
        return self.url[: -len(self.name)].rstrip("/")


YUNET = Asset(
    name="face_detection_yunet_2026may.onnx",
    url=(
        "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
        "face_detection_yunet_2026may.onnx"
    ),
    size=229_738,
    sha256="ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0",
    licence="MIT (OpenCV Zoo, YuNet)",
)

ASSETS: dict[str, Asset] = {"yunet": YUNET}


class AssetError(RuntimeError):
    """An asset is not in the cache and cannot be fetched (offline, network, HTTP, bad file)."""


def cache_dir() -> Path:
    """The cache folder: ``$FERFAST_HOME``, else ``~/.cache/ferfast`` (not created here)."""
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser()


def offline() -> bool:
    """True when ``$FERFAST_OFFLINE`` forbids downloads (any value but '', 0, false, no, off)."""
    value = os.environ.get(OFFLINE_ENV, "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def sha256_file(path: PathLike) -> str:
    """Hex SHA-256 of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cached(asset: Asset, directory: PathLike | None = None) -> Path | None:
    """The asset's file in ``directory`` (default: the cache) if its size and SHA-256 match."""
    path = Path(cache_dir() if directory is None else directory).expanduser() / asset.name
    try:
        if not path.is_file() or path.stat().st_size != asset.size:
            return None
        return path if sha256_file(path) == asset.sha256 else None
    except OSError:
        return None


def how_to_fix(asset: Asset, directory: Path) -> str:
    """The ways to provide ``asset`` by hand, for error and warning messages."""
    return (
        f"run `ferfast download` where the network is reachable, `ferfast download --from "
        f"FILE` with a copy of {asset.name} (from {asset.url}), or place it in {directory}"
    )


def _download(url: str, asset: Asset, directory: Path, timeout: float) -> Path:
    """Download ``url`` into ``directory`` under a temporary name, verify, rename; return path."""
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{asset.name}.", suffix=".part", dir=directory)
    except OSError as exc:
        raise AssetError(f"cannot write to {directory}: {exc}") from exc
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        n = 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            # Reads at most one byte past the pinned size: enough to tell "too large".
            while n <= asset.size:
                chunk = resp.read(min(_CHUNK, asset.size + 1 - n))
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
                n += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if n != asset.size:
            got = f"{n} bytes" if n <= asset.size else f"more than {asset.size} bytes"
            raise AssetError(
                f"{url} sent {got}, expected {asset.size} (truncated or a different file)"
            )
        if digest.hexdigest() != asset.sha256:
            raise AssetError(
                f"{url} sent a file whose SHA-256 is {digest.hexdigest()}, expected "
                f"{asset.sha256} (a different or tampered file)"
            )
        final = directory / asset.name
        os.replace(tmp, final)
        return final
    except urllib.error.HTTPError as exc:
        raise AssetError(f"HTTP {exc.code} {exc.reason} from {url}") from exc
    except urllib.error.URLError as exc:
        raise AssetError(f"cannot reach {url}: {exc.reason}") from exc
    except TimeoutError as exc:
        raise AssetError(f"{url} timed out after {timeout:g} s") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise AssetError(f"download of {url} failed: {exc!r}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def fetch(
    asset: Asset,
    directory: PathLike | None = None,
    *,
    base_url: str | None = None,
    force: bool = False,
    allow_download: bool | None = None,
    timeout: float = TIMEOUT_S,
) -> Path:
    """The verified path of ``asset`` in ``directory`` (default: the cache), downloaded if needed.

    A cached file with the pinned size and SHA-256 is returned without any network (unless
    ``force``). ``base_url`` (default ``$FERFAST_MODEL_URL``, else upstream) is where the file
    is fetched from, under its upstream name. ``allow_download`` False (default: not
    ``$FERFAST_OFFLINE``) forbids the network. Raises AssetError naming the cause and the fix.
    """
    folder = Path(cache_dir() if directory is None else directory).expanduser()
    if not force:
        path = cached(asset, folder)
        if path is not None:
            return path
    if allow_download is None:
        allow_download = not offline()
    if not allow_download:
        where = (
            f"{folder / asset.name} has the wrong size or SHA-256"
            if (folder / asset.name).exists()
            else f"{asset.name} is not in {folder}"
        )
        why = f"${OFFLINE_ENV} is set" if offline() else "allow_download=False"
        raise AssetError(f"{where} and downloads are off ({why}); {how_to_fix(asset, folder)}")
    base = base_url or os.environ.get(URL_ENV) or asset.base_url
    url = f"{base.rstrip('/')}/{asset.name}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AssetError(f"cannot create the cache folder {folder}: {exc}") from exc
    try:
        return _download(url, asset, folder, timeout)
    except AssetError as exc:
        raise AssetError(f"cannot fetch {asset.name}: {exc}; {how_to_fix(asset, folder)}") from exc


def install_from(
    asset: Asset, source: str, directory: PathLike | None = None, timeout: float = TIMEOUT_S
) -> Path:
    """Put ``asset`` into ``directory`` (default: the cache) from a local file or a URL.

    ``source`` is a path (a copy made elsewhere, e.g. on a USB stick) or a URL (http, https,
    file). The file is verified against the pinned size and SHA-256 before it takes its place;
    AssetError names a wrong or unreadable file.
    """
    folder = Path(cache_dir() if directory is None else directory).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AssetError(f"cannot create the cache folder {folder}: {exc}") from exc
    local = Path(source).expanduser()
    url = local.resolve().as_uri() if local.is_file() else source
    if "://" not in url:
        raise AssetError(f"{source} is neither a file nor a URL")
    try:
        return _download(url, asset, folder, timeout)
    except AssetError as exc:
        raise AssetError(f"cannot take {asset.name} from {source}: {exc}") from exc
