"""training.ensemble: contract models fused into one ONNX graph (weighted mean, flip TTA),
metadata (the members' validation fractions included), refusal of mismatched members, INT8
quantization of the fused graph, evaluate/record (validation figures, held out or seen) and the
generated docs table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from tiny_model import build_tiny_model

from ferfast.contract import EMOTIONS, KEY_EMOTIONS, KEY_INPUT_SCALE, parse_metadata
from ferfast.ort import OrtRunner
from training.ensemble import (
    KEY_ARCH,
    KEY_ENSEMBLE,
    EnsembleRow,
    evaluate,
    fuse,
    held_out,
    load_members,
    main,
    rebuild_commands,
    recorded_val_fraction,
    write_fused,
)
from training.export import KEY_VAL_FRACTION
from training.paths import repo_relative
from training.quantize import QuantSettings, quantize_model
from training.teacher import fp16_weights


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> list[Path]:
    """Three tiny contract models; the third stores fp16 weights behind Casts (teacher form)."""
    tmp = tmp_path_factory.mktemp("members")
    paths = [build_tiny_model(tmp / f"tiny{i}.onnx", seed=i) for i in range(3)]
    onnx.save(fp16_weights(onnx.load(str(paths[2]))), str(paths[2]))
    return paths


def _faces(n: int = 9, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 1, 48, 48), dtype=np.float32)


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    return OrtRunner(path, threads=1).run(np.ascontiguousarray(x))


def _meta(path: Path) -> dict[str, str]:
    return {e.key: e.value for e in onnx.load(str(path)).metadata_props}


def test_fused_output_is_the_weighted_mean_of_the_members(members, tmp_path):
    x = _faces()
    out = write_fused(members, tmp_path / "ens.onnx", weights=[1.0, 2.0, 3.0])
    expected = sum(w * _run(p, x) for w, p in zip((1, 2, 3), members, strict=True)) / 6
    got = _run(out, x)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)
    equal = write_fused(members[:2], tmp_path / "eq.onnx")
    np.testing.assert_allclose(
        _run(equal, x), (_run(members[0], x) + _run(members[1], x)) / 2, atol=1e-5
    )


def test_flip_averages_the_face_and_its_mirror_image(members, tmp_path):
    x = _faces(5)
    mirror = x[..., ::-1]
    out = write_fused(members[:2], tmp_path / "flip.onnx", flip=True)
    views = [_run(p, v) for p in members[:2] for v in (x, mirror)]
    got = _run(out, x)
    np.testing.assert_allclose(got, np.mean(views, axis=0), atol=1e-5)
    assert not np.allclose(_run(members[0], x), _run(members[0], mirror), atol=1e-4)
    np.testing.assert_allclose(_run(out, x[:1]), got[:1], atol=1e-6)  # batch 1 (2 views)
    one = write_fused(members[:1], tmp_path / "one_flip.onnx", flip=True)
    ref = (_run(members[0], x) + _run(members[0], mirror)) / 2
    np.testing.assert_allclose(_run(one, x), ref, atol=1e-5)


def test_fused_graph_carries_the_contract_metadata(members, tmp_path):
    out = write_fused(members[:2], tmp_path / "ens.onnx", flip=True, command="python -m x")
    meta = _meta(out)
    assert parse_metadata(meta, 7, str(out)) == (EMOTIONS, 1.0 / 255.0, 0.0)
    assert meta[KEY_ARCH] == "ensemble(tiny0,tiny1)+flip"
    doc = json.loads(meta[KEY_ENSEMBLE])
    assert [m["name"] for m in doc["members"]] == ["tiny0", "tiny1"]
    assert doc["weights"] == [0.5, 0.5] and doc["flip"] and doc["command"] == "python -m x"
    runner = OrtRunner(out)
    assert runner.emotions == EMOTIONS and runner.num_classes == 7
    graph = onnx.load(str(out)).graph
    tensors = [o for n in graph.node for o in n.output] + [t.name for t in graph.initializer]
    assert len(tensors) == len(set(tensors))
    assert all(t.startswith(("m0/", "m1/", "ens/")) for t in tensors if t != "probs")
    weighted = fuse(load_members(members[:2]), weights=[3, 1])
    assert {e.key: e.value for e in weighted.metadata_props}[
        KEY_ARCH
    ] == "ensemble(tiny0:3,tiny1:1)"


def test_fused_graph_records_the_members_val_fractions(members, tmp_path):
    held = [
        build_tiny_model(tmp_path / f"held{i}.onnx", seed=i, metadata={KEY_VAL_FRACTION: "0.1"})
        for i in range(2)
    ]
    seen = build_tiny_model(tmp_path / "seen.onnx", seed=2, metadata={KEY_VAL_FRACTION: "0.0"})

    def fractions(model: onnx.ModelProto) -> tuple[str | None, list[float | None]]:
        meta = {e.key: e.value for e in model.metadata_props}
        doc = json.loads(meta[KEY_ENSEMBLE])
        return meta.get(KEY_VAL_FRACTION), [m["val_fraction"] for m in doc["members"]]

    assert fractions(fuse(load_members(held))) == ("0.1", [0.1, 0.1])
    # one member that trained on the split makes the ensemble one that saw it
    assert fractions(fuse(load_members([held[0], seen]))) == ("0.0", [0.1, 0.0])
    # a member that does not say (members[0]: no metadata, no manifest) leaves it unknown
    assert fractions(fuse(load_members([held[0], members[0]]))) == (None, [0.1, None])
    assert recorded_val_fraction(members[0], _meta(members[0])) is None


def test_teacher_artifacts_give_their_val_fraction_from_the_manifest(tmp_path):
    import shutil

    from training.teacher import MANIFEST_FILE, TEACHERS

    r2e, t1_90 = TEACHERS / "r2e" / "teacher.onnx", TEACHERS / "t1_90" / "teacher.onnx"
    assert _meta(r2e)[KEY_VAL_FRACTION] == "0.1"
    # the same artifact as exported before the key existed: its manifest's config says
    old = onnx.load(str(r2e))
    kept = [p for p in old.metadata_props if p.key != KEY_VAL_FRACTION]
    del old.metadata_props[:]
    old.metadata_props.extend(kept)
    onnx.save(old, str(tmp_path / "teacher.onnx"))
    shutil.copy(r2e.parent / MANIFEST_FILE, tmp_path / MANIFEST_FILE)
    legacy = tmp_path / "teacher.onnx"
    assert KEY_VAL_FRACTION not in _meta(legacy)
    assert recorded_val_fraction(legacy, _meta(legacy)) == pytest.approx(0.1)
    # a config from before the validation split: the run trained on all of Training
    assert recorded_val_fraction(t1_90, {}) == 0.0
    assert recorded_val_fraction(legacy, {KEY_VAL_FRACTION: "0.0"}) == 0.0  # the file's own word
    assert load_members(["r2e"])[0].val_fraction == pytest.approx(0.1)


def test_held_out_only_for_the_split_that_evaluate_scores():
    from training.data import VAL_FRACTION

    assert held_out(VAL_FRACTION) and held_out(0.3 / 3)  # 0.09999999999999999
    assert not held_out(0.0) and not held_out(None) and not held_out(VAL_FRACTION * 2)


def test_mismatched_members_are_refused(members, tmp_path):
    order = ",".join(reversed(EMOTIONS))
    cases = {
        "emotions": build_tiny_model(tmp_path / "order.onnx", metadata={KEY_EMOTIONS: order}),
        "input normalisation": build_tiny_model(
            tmp_path / "scale.onnx", metadata={KEY_INPUT_SCALE: "1.0"}
        ),
        "emotions ": build_tiny_model(tmp_path / "six.onnx", k=6),  # 6 classes, no disgust
    }
    for what, bad in cases.items():
        with pytest.raises(ValueError, match=what.strip()):
            load_members([members[0], bad])
    with pytest.raises(ValueError, match="expected one input named 'input'"):
        load_members([members[0], build_tiny_model(tmp_path / "x.onnx", input_name="x")])
    ok = load_members(members[:2])
    with pytest.raises(ValueError, match="3 weights for 2 members"):
        fuse(ok, weights=[1, 2, 3])
    with pytest.raises(ValueError, match="positive"):
        fuse(ok, weights=[1, 0])
    with pytest.raises(ValueError, match="at least one member"):
        fuse([])


def test_fused_graph_quantizes_to_int8_and_keeps_the_mean_in_float(members, tmp_path):
    fuse_cmd = "python -m training.ensemble fuse a b c --out ens.onnx --flip"
    fp32 = write_fused(members, tmp_path / "ens.onnx", [1, 1, 2], flip=True, command=fuse_cmd)
    x = _faces(16, seed=2)
    ref = _run(fp32, x)
    for float_head, flag in ((True, ""), (False, " --quantize-head")):
        int8 = tmp_path / f"ens_int8_{float_head}.onnx"
        settings = QuantSettings(method="minmax", float_head=float_head)
        report = quantize_model(fp32, int8, _faces(64, seed=1), settings, progress=False)
        # Each member's layer (pre-processing fuses MatMul + Add into Gemm) is its classifier
        # head: float by default, so that its logits keep full resolution; int8 if asked.
        assert report.grid_logits == (0 if float_head else 3)
        bucket = report.float_ops if float_head else report.quantized_ops
        assert bucket.get("Gemm") == 3
        for op in ("Softmax", "Div", "Sum", "Reshape", "ReduceSum"):
            assert op in report.float_ops, report
        runner = OrtRunner(int8)
        assert runner.emotions == EMOTIONS and _meta(int8)["ferfast.precision"] == "int8"
        got = runner.run(x)
        np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)
        assert np.abs(got - ref).max() < 0.05
        # The mean of float probabilities, not a multiple of an int8 step.
        assert not np.allclose(got * 127, np.round(got * 127), atol=1e-3)
        assert rebuild_commands(int8, _meta(int8)) == [
            fuse_cmd,
            f"python -m calibration --fp32 ens.onnx --out {repo_relative(int8)} "
            f"--method minmax{flag} --no-eval",
        ]
    assert rebuild_commands(members[0], _meta(members[0])) == []  # not fused here


def test_rebuild_commands_of_teachers_and_bundled_models():
    from ferfast.models import model_path
    from training.paths import REPO
    from training.teacher import TeacherManifest

    teacher = REPO / "training" / "teachers" / "t1_90"
    assert rebuild_commands(teacher / "teacher.onnx", {}) == [
        TeacherManifest.read(teacher).command,
        "python -m training.teacher export runs/t1_90/best.pt training/teachers/t1_90",
    ]
    assert rebuild_commands(model_path("fast"), {}) == [
        "bash scripts/reproduce.sh  # trains, exports and calibrates ferfast_int8.onnx"
    ]


def test_cli_fuse_evaluate_record_and_table(members, tmp_path, capsys):
    from _training_helpers import write_folder

    from training.tables import ensembles_table

    fer = write_folder(tmp_path / "fer", n_train=8, n_test=24, corrupt=False)
    out = tmp_path / "cli.onnx"
    assert main(["fuse", str(members[0]), str(members[1]), "--flip", "--out", str(out)]) == 0
    assert "ensemble(tiny0,tiny1)+flip" in capsys.readouterr().out
    record = tmp_path / "rows" / "cli.json"
    args = ["evaluate", str(out), "--record", str(record), "--data", str(fer)]
    args += ["--cache", str(tmp_path / "cache"), "--repeats", "3", "--repeats-b64", "2"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    row = EnsembleRow.read(record)
    assert row.line() in printed and row.publictest["n"] == 24
    from training.data import load

    n_val = len(load(fer, tmp_path / "cache")[0].holdout()[1][1])
    assert set(row.validation) == {"accuracy", "macro_f1", "disgust_recall", "n", "held_out"}
    # tiny0 and tiny1 do not record their split: the figures are marked as possibly seen
    assert row.validation["n"] == n_val > 0 and row.validation["held_out"] is False
    val = f"{row.validation['accuracy']:.4f} / {row.validation['macro_f1']:.4f} (seen)"
    assert f"| {val} |" in row.line()
    assert (row.arch, row.precision) == ("ensemble(tiny0,tiny1)+flip", "fp32")
    assert row.latency["b1_ms"] > 0 and row.latency["b64_ms_per_face"] > 0
    assert row.latency["load_1min"] >= 0
    assert row.commands[0].startswith("python -m training.ensemble fuse ")
    assert "--flip" in row.commands[0] and row.commands[-1].startswith(
        "python -m training.ensemble evaluate "
    )
    table = ensembles_table(record.parent)
    assert row.line() in table and row.commands[0] in table


def test_evaluate_marks_validation_figures_of_held_out_members(tmp_path):
    from _training_helpers import write_folder

    fer = write_folder(tmp_path / "fer", n_train=40, n_test=8, corrupt=False)
    held = [
        build_tiny_model(tmp_path / f"held{i}.onnx", seed=i, metadata={KEY_VAL_FRACTION: "0.1"})
        for i in range(2)
    ]
    out = write_fused(held, tmp_path / "held.onnx")
    row = evaluate(out, data=fer, cache=tmp_path / "cache", repeats=2, repeats_b64=1)
    v = row.validation
    assert v["held_out"] is True and v["n"] > 0
    assert f"| {v['accuracy']:.4f} / {v['macro_f1']:.4f} |" in row.line()
    assert "(seen)" not in row.line()


def test_a_record_without_validation_figures_loads_and_renders_a_dash(tmp_path):
    from training.ensemble import ENSEMBLES, HEADER
    from training.tables import ensembles_table

    doc = json.loads((ENSEMBLES / "accurate_fp32.json").read_text())
    doc.pop("validation", None)
    (tmp_path / "old.json").write_text(json.dumps(doc))
    row = EnsembleRow.read(tmp_path / "old.json")
    assert row.validation is None
    cells = row.line().split(" | ")
    assert cells[6] == "–" and len(cells) == HEADER.split("\n")[0].count(" | ") + 1
    assert row.line() in ensembles_table(tmp_path)


def test_comparison_doc_lists_the_recorded_ensembles():
    from training.paths import REPO
    from training.tables import ensembles_table

    doc = (REPO / "docs" / "comparison.md").read_text()
    assert ensembles_table() in doc  # docs/comparison.md was regenerated from the records
