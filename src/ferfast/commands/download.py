"""``ferfast download``: the third-party model files (YuNet) into the cache ahead of time."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ferfast.commands.common import EXIT_OK, EXIT_USAGE


def add_download(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "download",
        help="fetch the third-party model files (YuNet) into the cache ahead of time",
        description=(
            "Download and verify (size, SHA-256) every pinned third-party model file, so that "
            "later runs need no network (kiosks, containers). Files already present and valid "
            "are kept. $FERFAST_MODEL_URL names a mirror serving the files under their names."
        ),
    )
    p.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="folder to download into (default: $FERFAST_HOME, else ~/.cache/ferfast)",
    )
    p.add_argument("--force", action="store_true", help="download again even if already valid")
    p.add_argument(
        "--from",
        dest="source",
        metavar="FILE_OR_URL",
        help="take YuNet from a local file or a URL (http, https, file) instead of upstream; it "
        "is verified (size, SHA-256) before it is cached",
    )
    p.set_defaults(func=_cmd_download)


def _cmd_download(args: argparse.Namespace) -> int:
    from ferfast import assets
    from ferfast.outpaths import OutputPathError, check_dir

    folder = (args.dir or assets.cache_dir()).expanduser()
    try:
        check_dir(folder, "--dir")
    except OutputPathError as exc:
        print(f"ferfast download: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.source is not None:
        path = assets.install_from(assets.YUNET, args.source, folder)
        print(f"yunet: {path} ({assets.YUNET.size} bytes, SHA-256 verified, from {args.source})")
    for key, asset in assets.ASSETS.items():
        if args.source is not None and asset is assets.YUNET:
            continue
        present = None if args.force else assets.cached(asset, folder)
        # Not present (or --force): download without checking the cache again. AssetError (a
        # RuntimeError) names the cause and the fix; main() prints it, exit 1.
        path = present or assets.fetch(asset, folder, force=True)
        state = "already present" if present else "downloaded"
        print(f"{key}: {path} ({asset.size} bytes, SHA-256 verified, {state}; {asset.licence})")
    if args.dir is not None and folder.resolve() != assets.cache_dir().resolve():
        print(f"set {assets.HOME_ENV}={folder} so that ferfast uses these files")
    return EXIT_OK
