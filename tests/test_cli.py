"""The ``ferfast`` console script: subcommand parsing and build-engine's clean failures."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from ferfast import EMOTIONS
from ferfast.cli import main, make_parser
from ferfast.commands.common import EXIT_UNAVAILABLE
from ferfast.commands.engines import resolve_onnx_model
from ferfast.models import model_path
from ferfast.tensorrt import tensorrt_available

HAS_TRT = tensorrt_available()


def test_subcommand_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as err:
        main([])
    assert err.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_build_engine_arguments() -> None:
    args = make_parser().parse_args(
        [
            "build-engine",
            "m.onnx",
            "-o",
            "m.engine",
            "--precision",
            "fp16",
            "--max-batch",
            "32",
            "--timing-cache",
            "t.cache",
            "--workspace-mb",
            "512",
        ]
    )
    assert (args.command, args.precision, args.max_batch, args.workspace_mb) == (
        "build-engine",
        "fp16",
        32,
        512,
    )
    assert args.model == "m.onnx" and args.timing_cache == Path("t.cache")
    assert args.opt_batch is None


def test_help_is_plain_text_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    """No reStructuredText markup in any help text; the top level shows examples."""
    from ferfast import __version__

    with pytest.raises(SystemExit) as err:
        main(["--help"])
    assert err.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "ferfast build-engine fast -o" in text
    parser = make_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = [parser.format_help()] + [p.format_help() for p in sub.choices.values()]
    assert len(helps) > 3
    for help_text in helps:
        assert "`" not in help_text, help_text
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"ferfast {__version__}"


def test_engine_commands_take_a_bundled_model_name(tiny_model: Path, tmp_path: Path) -> None:
    """build-engine MODEL and wrap-engine --model: a bundled model name or an .onnx path."""
    for name, same in (("fast", "INT8"), ("fast-fp32", "FP32")):
        assert resolve_onnx_model(name) == resolve_onnx_model(same) == model_path(name)
    assert resolve_onnx_model("accurate") == model_path("accurate")
    assert resolve_onnx_model(str(tiny_model)) == tiny_model
    with pytest.raises(ValueError, match="'foo' is neither a bundled model name"):
        resolve_onnx_model("foo")
    with pytest.raises(ValueError, match=r"path of an \.onnx file"):
        resolve_onnx_model(str(tmp_path / "m.engine"))
    with pytest.raises(FileNotFoundError, match="absent.onnx"):
        resolve_onnx_model(str(tmp_path / "absent.onnx"))


@pytest.mark.parametrize("name", ["fast-fp32", "int8"])
def test_predict_takes_a_bundled_model_name(
    name: str, photos: dict[str, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = tmp_path / "a.jpg"
    assert cv2.imwrite(str(photo), photos["images_1.jpg"])
    argv = ["predict", str(photo), "--model", name, "--detector", "haar", "--format", "jsonl"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 1 and rows[0]["faces"][0]["emotion"] in EMOTIONS
    assert make_parser().parse_args(["predict", str(photo)]).model == "fast"


def test_engine_commands_report_a_bad_model_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad model is reported (exit 1) before the TensorRT check, with or without TensorRT."""
    assert main(["build-engine", "foo", "-o", str(tmp_path / "m.engine")]) == 1
    assert "ferfast build-engine: model 'foo' is neither" in capsys.readouterr().err
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"plan")
    argv = ["wrap-engine", str(plan), "--model", "fp16", "-o", str(tmp_path / "m.engine")]
    assert main([*argv, "--precision", "fp16", "--max-batch", "8"]) == 1
    assert "ferfast wrap-engine: model 'fp16' is neither" in capsys.readouterr().err
    assert not (tmp_path / "m.engine").exists()


def test_build_engine_rejects_unknown_precision(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as err:
        main(["build-engine", "m.onnx", "-o", "m.engine", "--precision", "int4"])
    assert err.value.code == 2
    assert "int4" in capsys.readouterr().err


@pytest.mark.skipif(HAS_TRT, reason="tensorrt is installed here")
def test_build_engine_without_tensorrt_exits_2(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.engine"
    code = main(["build-engine", str(tiny_model), "--precision", "fp32", "-o", str(out)])
    assert code == EXIT_UNAVAILABLE == 2
    err = capsys.readouterr().err
    assert "TensorRT is not available" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.skipif(HAS_TRT, reason="tensorrt is installed here")
def test_console_entry_point_without_tensorrt(tiny_model: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ferfast.cli",
            "build-engine",
            str(tiny_model),
            "-o",
            str(tmp_path / "m.engine"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "TensorRT is not available" in proc.stderr


def test_build_engine_bad_input_is_an_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not HAS_TRT:
        pytest.skip("without TensorRT build-engine stops earlier (exit 2)")
    code = main(["build-engine", str(tmp_path / "absent.onnx"), "-o", str(tmp_path / "m.engine")])
    assert code == 1
    assert "not found" in capsys.readouterr().err


@pytest.mark.skipif(HAS_TRT, reason="tensorrt is installed here")
def test_bench_engine_without_tensorrt_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ferfast.labels import EMOTIONS
    from ferfast.tensorrt import EngineHeader, write_engine

    path = write_engine(
        tmp_path / "m.engine", EngineHeader("10.3.0", "Orin", "8.7", "int8", EMOTIONS), b"plan"
    )
    assert main(["bench-engine", str(path), "--backend", "python"]) == 2
    assert "TensorRT is not available" in capsys.readouterr().err
    assert main(["bench-engine", str(tmp_path / "absent.engine")]) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["build-engine", "m.onnx", "-o", "m.engine", "--max-batch", "0"],
        ["build-engine", "m.onnx", "-o", "m.engine", "--workspace-mb", "-1"],
        [
            "wrap-engine",
            "m.plan",
            "--model",
            "m.onnx",
            "-o",
            "m.engine",
            "--precision",
            "fp16",
            "--max-batch",
            "x",
        ],
        ["bench-engine", "m.engine", "--iters", "0"],
        ["bench-engine", "m.engine", "--warmup", "-1"],
        ["bench-engine", "m.engine", "--batch", "0"],
    ],
)
def test_bad_numbers_are_argument_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Numeric flags are checked by argparse (exit 2, usage + message) before any work."""
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2
    err_text = capsys.readouterr().err
    assert "usage:" in err_text and ("must be" in err_text or "expected an integer" in err_text)
