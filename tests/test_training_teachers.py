"""Teacher artifacts: export of a (tiny) teacher run, manifest, verification, distillation from
the committed form, and the manifest's resume command continuing the run exactly."""

from __future__ import annotations

import json
import shlex
from dataclasses import fields, replace

import numpy as np
import onnx
import pytest
import torch
from _training_helpers import tiny_train_config, write_folder

from ferfast.ort import OrtRunner
from training.data import load, normalise
from training.distill import Teacher
from training.export import export_onnx, load_checkpoint_net
from training.model import FerNet, count_params
from training.paths import from_repo
from training.predict import predict_probs
from training.teacher import (
    MANIFEST_FILE,
    MODEL_FILE,
    TEACHERS,
    TeacherManifest,
    export_teacher,
    list_teachers,
    main,
    resolve_teachers,
    sha256,
    verify,
)
from training.train import parse_args, train


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    """One epoch of a 2-epoch tiny teacher run (unfinished), exported as an artifact."""
    tmp = tmp_path_factory.mktemp("teacher")
    write_folder(tmp / "fer", n_train=96, n_test=32, corrupt=False)
    cfg = tiny_train_config(tmp, "runs/tt", stop_after=1)
    r = train(cfg)
    assert r.epochs_run == 1
    dest = tmp / "teachers" / "tt"
    m = export_teacher(tmp / "runs/tt/best.pt", dest, cfg.data, cfg.cache)
    return tmp, cfg, dest, m


def test_artifact_manifest_describes_the_file(teacher_run):
    tmp, cfg, dest, m = teacher_run
    assert sorted(p.name for p in dest.iterdir()) == [MANIFEST_FILE, MODEL_FILE]
    assert TeacherManifest.read(dest) == m == verify(dest)
    assert m.sha256 == sha256(dest / MODEL_FILE) and m.bytes == (dest / MODEL_FILE).stat().st_size
    assert (m.arch, m.strategy, m.format) == ("tiny", "weights", "fp16-weights")
    assert (m.epochs_trained, m.epochs_planned, m.best_epoch, m.finished) == (1, 2, 1, False)
    assert m.status.startswith("epochs 1 of 2, run unfinished: resume with python -m training")
    assert m.publictest["n"] == 32 and 0.0 <= m.publictest["accuracy"] <= 1.0
    assert m.params == count_params(FerNet("tiny")) and m.mflops == pytest.approx(0.7, abs=0.05)
    doc = json.loads((dest / MANIFEST_FILE).read_text())
    assert doc["command"].endswith("--resume") and "--stop-after" not in doc["command"]
    runner = OrtRunner(dest / MODEL_FILE)  # the engine's contract checks pass
    assert runner.num_classes == 7 and runner.input_scale == pytest.approx(1 / 255)


def test_fp16_artifact_matches_the_checkpoint(teacher_run, tmp_path):
    tmp, cfg, dest, m = teacher_run
    model = onnx.load(str(dest / MODEL_FILE))
    kinds = {t.data_type for t in model.graph.initializer}
    assert kinds == {onnx.TensorProto.FLOAT16}
    net, ck = load_checkpoint_net(tmp / "runs/tt/best.pt")
    fp32 = export_onnx(net, tmp_path / "fp32.onnx")
    assert m.bytes < 0.6 * fp32.stat().st_size
    data, _ = load(cfg.data, cfg.cache)
    x, y = data.subset("PublicTest")
    ref = predict_probs(net, x, "weights")
    got = OrtRunner(dest / MODEL_FILE).run(normalise(x))
    diff = float(np.abs(got - ref).max())
    assert diff < 2e-3 and diff == pytest.approx(m.max_abs_prob_diff, abs=1e-6)
    assert m.checkpoint_publictest["accuracy"] == pytest.approx(float((ref.argmax(1) == y).mean()))


def test_oversized_fp16_falls_back_to_int8_then_refuses(teacher_run, tmp_path):
    tmp, cfg, _, m = teacher_run
    # The tiny net's INT8 Q/DQ file is larger than its fp16 one (Q/DQ overhead): both too big.
    with pytest.raises(ValueError, match=r"int8-qdq teacher file is [\d,]+ bytes > "):
        export_teacher(
            tmp / "runs/tt/best.pt", tmp_path / "big", cfg.data, cfg.cache, 0.9 * m.bytes / 1e6
        )
    assert not (tmp_path / "big" / MANIFEST_FILE).exists()


def test_verify_refuses_a_tampered_file(teacher_run, tmp_path, capsys):
    _, _, dest, _ = teacher_run
    bad = tmp_path / "teachers" / "bad"
    bad.mkdir(parents=True)
    for f in (MODEL_FILE, MANIFEST_FILE):
        (bad / f).write_bytes((dest / f).read_bytes())
    assert main(["verify", str(bad)]) == 0
    raw = bytearray((bad / MODEL_FILE).read_bytes())
    raw[-100] ^= 0x01  # one bit: same size, another sha256
    (bad / MODEL_FILE).write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="does not match its manifest"):
        verify(bad)
    with pytest.raises(ValueError, match="does not match its manifest"):
        Teacher(bad)
    assert main(["list", str(tmp_path / "teachers")]) == 1
    assert "INVALID" in capsys.readouterr().out
    (bad / MODEL_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="teacher.onnx"):
        verify(bad)


def test_teacher_spec_resolves_folders_and_listings(teacher_run, tmp_path):
    tmp, _, dest, _ = teacher_run
    root = tmp / "teachers"
    assert list_teachers(root) == [dest]
    assert resolve_teachers(str(dest)) == [dest / MODEL_FILE]
    assert resolve_teachers(f"{dest}, {root}") == [dest / MODEL_FILE] * 2
    plain = tmp_path / "x.onnx"
    assert resolve_teachers([plain]) == [plain]  # a file passes through to the runner
    with pytest.raises(ValueError, match="no teacher artifacts"):
        resolve_teachers(str(tmp_path))


def test_student_distils_from_the_artifact(teacher_run):
    tmp, _, dest, _ = teacher_run
    cfg = tiny_train_config(
        tmp, "runs/student", teacher=str(dest.parent), epochs=1, steps_per_epoch=2, ema=0.9
    )
    r = train(cfg)
    assert r.steps == 2 and np.isfinite(r.history[0]["train_loss"])
    assert (tmp / "runs/student/best.pt").is_file()


def test_manifest_command_resumes_the_run_exactly(teacher_run):
    tmp, cfg, _, m = teacher_run
    full = train(replace(cfg, out=str(tmp / "runs/full"), stop_after=0))
    args = shlex.split(m.command)
    assert args[:3] == ["python", "-m", "training.train"]
    cfg2, resume = parse_args(args[3:])
    # Paths are recorded relative to the repository when they lie beside it: the same places.
    same = {
        f.name: getattr(cfg, f.name)
        for f in fields(cfg)
        if isinstance(getattr(cfg, f.name), str)
        and getattr(cfg, f.name)
        and from_repo(getattr(cfg2, f.name)).resolve() == from_repo(getattr(cfg, f.name)).resolve()
    }
    assert resume and "out" in same
    assert replace(cfg2, progress=False, threads=cfg.threads, **same) == replace(cfg, stop_after=0)
    resumed = train(replace(cfg2, progress=False), resume=True)
    assert resumed.epochs_run == 2 == full.epochs_run
    a = torch.load(tmp / "runs/full/last.pt", weights_only=False)["model"]
    b = torch.load(tmp / "runs/tt/last.pt", weights_only=False)["model"]
    for k, v in a.items():
        assert torch.equal(v, b[k]), k
    finished = export_teacher(tmp / "runs/tt/best.pt", tmp / "done", cfg.data, cfg.cache)
    assert finished.finished and finished.status == "finished: 2 of 2 epochs"


def test_committed_artifacts_match_their_manifests():
    found = list_teachers(TEACHERS)
    assert found, "training/teachers holds no artifact"
    for folder in found:
        m = verify(folder)
        assert m.bytes <= 10e6 and m.publictest["n"] > 0
        assert resolve_teachers(folder.name) == [folder / m.file]  # a bare name resolves


def test_comparison_doc_lists_the_committed_teachers() -> None:
    from training.paths import REPO
    from training.tables import teachers_table

    doc = (REPO / "docs" / "comparison.md").read_text()
    assert teachers_table() in doc  # docs/comparison.md was regenerated from the manifests
