"""INT8 calibration: stratified sampler, recorded set, Q/DQ quantization of a tiny in-test CNN."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from calibration.dataset import CalibrationSet, stratified_sample
from calibration.evaluate import score
from calibration.pipeline import load_test, read_model_info
from ferfast.labels import EMOTIONS
from ferfast.measure import Latency, run_batches
from ferfast.ort import OrtRunner
from training.data import normalise, read_faces
from training.paths import REPO
from training.quantize import (
    QuantSettings,
    fold_bias_dequantize,
    head_nodes,
    inspect_qdq,
    name_heads,
    quantize_model,
    relu_to_leaky,
)


def _probs(model: Path, x: np.ndarray) -> np.ndarray:
    return run_batches(OrtRunner(model), x, batch=16)


COUNTS = {"angry": 5, "disgust": 2, "fear": 4, "happy": 6, "sad": 3, "surprise": 4, "neutral": 5}
META = {
    "ferfast.emotions": ",".join(EMOTIONS),
    "ferfast.input_scale": "0.00784313725490196",  # 2/255: values in [-1, 1] with bias -1
    "ferfast.input_bias": "-1.0",
    "ferfast.version": "test",
}


def _conv(name: str, cin: int, cout: int, stride: int, rng: np.random.Generator) -> list:
    w = (rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2.0 / (9 * cin))).astype(np.float32)
    w *= rng.uniform(0.2, 3.0, (cout, 1, 1, 1)).astype(np.float32)  # per-channel spread
    b = (rng.standard_normal(cout) * 0.1).astype(np.float32)
    node = helper.make_node(
        "Conv",
        [f"{name}_in", f"{name}_w", f"{name}_b"],
        [f"{name}_out"],
        name=name,
        kernel_shape=[3, 3],
        strides=[stride, stride],
        pads=[1, 1, 1, 1],
    )
    return [node, numpy_helper.from_array(w, f"{name}_w"), numpy_helper.from_array(b, f"{name}_b")]


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny Conv-Relu CNN -> GAP -> Gemm -> Softmax with ferfast metadata (random weights)."""
    rng = np.random.default_rng(7)
    nodes, inits = [], []
    chans = [(1, 8, 2), (8, 16, 2)]
    prev = "input"
    for i, (cin, cout, s) in enumerate(chans):
        node, w, b = _conv(f"conv{i}", cin, cout, s, rng)
        node.input[0] = prev
        nodes += [node, helper.make_node("Relu", [node.output[0]], [f"relu{i}"], name=f"relu{i}")]
        inits += [w, b]
        prev = f"relu{i}"
    fc_w = (rng.standard_normal((7, 16)) * 0.5).astype(np.float32)
    fc_b = (rng.standard_normal(7) * 0.1).astype(np.float32)
    inits += [numpy_helper.from_array(fc_w, "fc_w"), numpy_helper.from_array(fc_b, "fc_b")]
    nodes += [
        helper.make_node("GlobalAveragePool", [prev], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flat", axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 48, 48])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 7])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in META.items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("cnn") / "cnn_fp32.onnx"
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A miniature image-folder split: smooth random 48x48 gray faces, uneven class sizes."""
    root = tmp_path_factory.mktemp("train")
    rng = np.random.default_rng(3)
    for c, n in COUNTS.items():
        (root / c).mkdir()
        for i in range(n):
            small = rng.integers(0, 256, (6, 6)).astype(np.uint8)
            img = cv2.resize(small, (48, 48), interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(root / c / f"{c}_{i:03d}.png"), img)
    (root / "happy" / "notes.txt").write_text("not an image")
    return root


def test_sampler_honours_quotas(split: Path) -> None:
    cset = stratified_sample(split, EMOTIONS, per_class=4, seed=1)
    assert cset.counts == {c: min(4, n) for c, n in COUNTS.items()}
    assert len(cset) == sum(cset.counts.values()) == len(set(cset.files))
    assert all(f.endswith(".png") for f in cset.files)
    labels = cset.labels()
    assert np.bincount(labels, minlength=7).tolist() == [cset.counts[c] for c in EMOTIONS]
    # interleaved: the first 7 files cover every class once
    assert sorted(labels[:7].tolist()) == list(range(7))


def test_sampler_is_reproducible_from_record(split: Path, tmp_path: Path) -> None:
    a = stratified_sample(split, EMOTIONS, per_class=3, seed=11)
    assert stratified_sample(split, EMOTIONS, per_class=3, seed=11) == a
    assert stratified_sample(split, EMOTIONS, per_class=3, seed=12).files != a.files
    record = a.save(tmp_path / "set.json")
    b = CalibrationSet.load(record)
    assert b == a
    np.testing.assert_array_equal(read_faces(b.paths()), read_faces(a.paths()))


def test_sampler_and_record_reject_bad_input(split: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="per_class"):
        stratified_sample(split, EMOTIONS, per_class=0)
    with pytest.raises(TypeError, match="per_class"):
        stratified_sample(split, EMOTIONS, per_class="3")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        stratified_sample(tmp_path / "missing", EMOTIONS)
    with pytest.raises(FileNotFoundError, match="class folder"):
        stratified_sample(split, ("angry", "contempt"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 99}')
    with pytest.raises(ValueError, match="version"):
        CalibrationSet.load(bad)


def test_normalise_follows_model_metadata(cnn: Path) -> None:
    info = read_model_info(cnn)
    assert info.emotions == EMOTIONS and info.input_bias == -1.0
    faces = np.array([[0, 255], [128, 64]], np.uint8).repeat(24, 0).repeat(24, 1)
    x = normalise(faces, info.input_scale, info.input_bias)
    assert x.shape == (1, 1, 48, 48) and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_allclose(x[0, 0, 0, [0, 47]], [-1.0, 1.0], atol=1e-6)
    with pytest.raises(TypeError):
        normalise(faces.astype(np.float32), 1.0, 0.0)
    with pytest.raises(ValueError):
        normalise(np.zeros((2, 32, 32), np.uint8), 1.0, 0.0)


@pytest.fixture(scope="module")
def calib_x(split: Path, cnn: Path) -> np.ndarray:
    info = read_model_info(cnn)
    cset = stratified_sample(split, EMOTIONS, per_class=6, seed=0)
    return normalise(read_faces(cset.paths()), info.input_scale, info.input_bias)


@pytest.mark.parametrize("method", ["entropy", "minmax", "percentile"])
def test_quantized_model_is_symmetric_per_channel_qdq(
    cnn: Path, calib_x: np.ndarray, tmp_path: Path, method: str
) -> None:
    out = tmp_path / f"int8_{method}.onnx"
    report = quantize_model(
        cnn, out, calib_x, QuantSettings(method=method, chunk=16), progress=False
    )
    assert report == inspect_qdq(out)
    assert report.n_quantize > 0 and report.n_dequantize > report.n_quantize
    assert report.zero_points_all_zero and report.symmetric_int8
    assert report.zero_point_dtypes == ("int8",) and report.int32_bias_dq == 0  # float biases
    assert (report.per_channel_weights, report.per_tensor_weights) == (2, 0)  # 2 Conv
    assert report.quantized_ops["Conv"] == 2 and "Gemm" not in report.quantized_ops
    assert report.float_ops == {"Gemm": 1, "Softmax": 1} and report.grid_logits == 0
    assert "Relu" not in report.quantized_ops and report.quantized_ops["LeakyRelu"] == 2
    q = onnx.load(str(out))
    meta = {p.key: p.value for p in q.metadata_props}
    assert {k: meta[k] for k in META} == META
    assert meta["ferfast.precision"] == "int8" and f"method={method}" in meta["ferfast.calibration"]
    assert [(o.domain, o.version) for o in q.opset_import] == [("", 17)]
    # the per-channel weight scales really differ between channels
    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    dq_w = [
        n
        for n in q.graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] == "conv1_w_quantized"
    ]
    assert len(dq_w) == 1 and inits[dq_w[0].input[1]].shape == (16,)
    assert np.ptp(inits[dq_w[0].input[1]]) > 0
    # outputs stay close to fp32 on the calibration faces
    ref = _probs(cnn, calib_x)
    got = _probs(out, calib_x)
    assert got.dtype == np.float32 and got.shape == ref.shape
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)  # Softmax stays float
    assert np.max(np.abs(got - ref)) < 0.03


def test_relu_rewrite_and_bias_folding_are_exact(
    cnn: Path, calib_x: np.ndarray, tmp_path: Path
) -> None:
    m = onnx.load(str(cnn))
    assert relu_to_leaky(m) == 2
    leaky = tmp_path / "leaky.onnx"
    onnx.save(m, str(leaky))
    np.testing.assert_array_equal(_probs(leaky, calib_x), _probs(cnn, calib_x))
    out = tmp_path / "int8.onnx"
    quantize_model(
        cnn,
        out,
        calib_x,
        QuantSettings(method="minmax", relu_as_leaky=False, quantize_bias=True),
        progress=False,
    )
    rep = inspect_qdq(out)
    assert rep.int32_bias_dq == 2 and rep.quantized_ops["Relu"] == 2
    folded = fold_bias_dequantize(onnx.load(str(out)))
    assert inspect_qdq(folded).int32_bias_dq == 0
    assert inspect_qdq(folded).per_channel_weights == 2
    onnx.checker.check_model(folded)
    onnx.save(folded, str(tmp_path / "folded.onnx"))
    np.testing.assert_allclose(
        _probs(out, calib_x), _probs(tmp_path / "folded.onnx", calib_x), atol=1e-6
    )


def test_leaky_relu_form_matches_relu_form(cnn: Path, calib_x: np.ndarray, tmp_path: Path) -> None:
    """LeakyRelu(0) + shared ranges quantizes exactly like ONNX Runtime's own Relu handling."""
    outs = []
    for leaky in (True, False):
        path = tmp_path / f"int8_{leaky}.onnx"
        settings = QuantSettings(method="minmax", relu_as_leaky=leaky)
        quantize_model(cnn, path, calib_x, settings, progress=False)
        q = onnx.load(str(path))
        inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
        act = next(n for n in q.graph.node if n.op_type in ("LeakyRelu", "Relu"))
        dq_in = next(n for n in q.graph.node if n.output[0] == act.input[0])
        q_out = next(n for n in q.graph.node if n.input[0] == act.output[0])
        assert inits[dq_in.input[1]] == inits[q_out.input[1]]  # one scale around the activation
        outs.append(_probs(path, calib_x))
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-6)


def test_settings_validate() -> None:
    with pytest.raises(ValueError, match="method"):
        QuantSettings(method="kl")
    with pytest.raises(ValueError, match="percentile"):
        QuantSettings(method="percentile", percentile=0.0)
    assert "excl=first_conv+last_gemm" in QuantSettings(exclude_first_last=True).describe()
    assert "head=float" in QuantSettings().describe()
    assert "head" not in QuantSettings(float_head=False).describe()


def test_head_keeps_float_logits_unless_quantized(
    cnn: Path, calib_x: np.ndarray, tmp_path: Path
) -> None:
    """The last Gemm runs in float on int8 features, so the logits have full resolution; with
    ``float_head=False`` they come out of a DequantizeLinear, on a grid of its scale."""
    assert [n.name for n in head_nodes(onnx.load(str(cnn)))] == ["fc"]
    outs = {}
    for head in (True, False):
        out = tmp_path / f"int8_head_{head}.onnx"
        settings = QuantSettings(method="minmax", float_head=head)
        rep = quantize_model(cnn, out, calib_x, settings, progress=False)
        assert rep.grid_logits == (0 if head else 1)
        assert ("Gemm" in rep.float_ops) is head and ("Gemm" in rep.quantized_ops) is not head
        q = onnx.load(str(out))
        fc = next(n for n in q.graph.node if n.op_type == "Gemm")
        assert (fc.input[1] == "fc_w") is head  # float weight, no DequantizeLinear
        assert rep.quantized_ops["Conv"] == 2 and rep.quantized_ops["Flatten"] == 1
        softmax = next(n for n in q.graph.node if n.op_type == "Softmax")
        assert (softmax.input[0] == fc.output[0]) is head
        outs[head] = (_probs(out, calib_x), q)
    # log-probability differences are logit differences: multiples of the output scale when
    # the head is quantized, anything when it is float
    probs, q = outs[False]
    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    softmax = next(n for n in q.graph.node if n.op_type == "Softmax")
    dq = next(n for n in q.graph.node if n.output[0] == softmax.input[0])
    step = float(inits[dq.input[1]])
    grid = np.diff(np.log(probs.astype(np.float64)), axis=1) / step
    np.testing.assert_allclose(grid, np.round(grid), atol=1e-3)
    fine = np.diff(np.log(outs[True][0].astype(np.float64)), axis=1) / step
    assert np.abs(fine - np.round(fine)).max() > 0.1


def test_head_nodes_follow_the_logits_to_each_softmax(tmp_path: Path) -> None:
    """MatMul + bias Add (unnamed here: named so that they can be excluded) is one head; a graph
    whose Softmax input is not a linear layer's has none."""
    from tiny_model import build_tiny_model

    m = onnx.load(str(build_tiny_model(tmp_path / "tiny.onnx")))
    assert [n.op_type for n in head_nodes(m)] == ["MatMul", "Add"]
    assert name_heads(m) == ["head/MatMul_0", "head/Add_0"]
    assert [n.name for n in m.graph.node] == ["", "head/MatMul_0", "head/Add_0", ""]
    assert name_heads(m) == ["head/MatMul_0", "head/Add_0"]  # stable once named
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 7])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 7])
    relu = helper.make_node("Relu", ["x"], ["r"], name="relu")
    sm = helper.make_node("Softmax", ["r"], ["y"], name="sm", axis=1)
    assert head_nodes(helper.make_model(helper.make_graph([relu, sm], "g", [x], [y]))) == []


def test_exclude_first_last_keeps_them_float(
    cnn: Path, calib_x: np.ndarray, tmp_path: Path
) -> None:
    out = tmp_path / "int8_excl.onnx"
    rep = quantize_model(
        cnn, out, calib_x, QuantSettings(method="minmax", exclude_first_last=True), progress=False
    )
    q = onnx.load(str(out))
    conv0 = next(n for n in q.graph.node if n.name == "conv0")
    assert conv0.input[1] == "conv0_w"  # float weight, no DequantizeLinear
    assert rep.quantized_ops.get("Conv") == 1 and "Gemm" not in rep.quantized_ops


def test_scores_match_sklearn() -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 200)
    probs = rng.random((200, 7)).astype(np.float32)
    ref = probs.copy()
    ref[:20] = ref[:20, ::-1]
    s = score(probs, labels, ref)
    pred = probs.argmax(1)
    assert s.accuracy == pytest.approx(100 * np.mean(pred == labels))
    assert s.macro_f1 == pytest.approx(100 * f1_score(labels, pred, average="macro"))
    # a class neither present nor predicted counts as F1 0 (the training metrics' definition)
    few = score(np.eye(7, dtype=np.float32)[:6], np.arange(6))
    assert few.accuracy == 100.0 and few.macro_f1 == pytest.approx(100 * 6 / 7)
    assert s.agreement == pytest.approx(100 * np.mean(pred == ref.argmax(1)))
    with pytest.raises(ValueError):
        score(probs, labels[:10])


def test_pick_and_report_sections(tmp_path: Path) -> None:
    from calibration.compare import _pick
    from calibration.pipeline import ModelEval
    from calibration.report import Row, method_table, replace_section

    def row(name: str, acc: float, agree: float | None, loss: float | None) -> Row:
        lat = {1: Latency(1, (0.0002, 0.0001, 0.0003))}
        ev = ModelEval(name, score_stub(acc, agree), np.zeros((1, 7), np.float32), lat)
        return Row(name, "recipe", ev, loss)

    def score_stub(acc: float, agree: float | None):  # noqa: ANN202
        from calibration.evaluate import Scores

        return Scores(n=10, accuracy=acc, macro_f1=acc - 5, agreement=agree)

    rows = [
        row("fp32", 60.0, None, None),
        row("entropy", 59.8, 97.0, 0.2),
        row("minmax", 59.9, 96.0, 0.1),
        row("percentile", 58.0, 99.0, 2.0),  # over budget despite the best agreement
        row("entropy excl first+last", 59.95, 99.5, 0.05),
    ]
    assert _pick(rows, 0.5).variant == "entropy"  # plain recipe, highest agreement in budget
    assert _pick(rows[:1] + rows[3:], 0.5).variant == "entropy excl first+last"
    assert _pick(rows[:1] + rows[3:4], 0.5) is None
    table = method_table(rows)
    assert (
        table.count("\n") == len(rows) + 1 and "| entropy | 59.80 | 54.80 | 97.00 | 0.20 |" in table
    )
    doc = tmp_path / "doc.md"
    doc.write_text("# Title\n\nhand-written\n")
    replace_section(doc, "t", "first", heading="## Gen")
    replace_section(doc, "t", "second", heading="## Gen")
    text = doc.read_text()
    assert text.startswith("# Title\n\nhand-written\n") and text.count("## Gen") == 1
    assert "second" in text and "first" not in text
    card = tmp_path / "card.md"
    card.write_text("# Card\n\n## fp32\n\nfp32 text\n\n## int8\n\n(placeholder)\n\n## Other\n\nx\n")
    replace_section(card, "int8", "int8 text", heading="## int8")
    text = card.read_text()
    assert "(placeholder)" not in text and text.count("## int8") == 1
    assert text.index("fp32 text") < text.index("int8 text") < text.index("## Other")
    assert text.endswith("## Other\n\nx\n")


def test_load_test_reads_publictest_in_model_class_order(tmp_path: Path) -> None:
    """A test-split folder or the CSV, through training.data.load; labels index the model's
    classes (a 6-class model drops disgust)."""
    from _training_helpers import synthetic_faces, write_folder

    write_folder(tmp_path / "fer", n_train=8, n_test=40, corrupt=False)
    seven = load_test(EMOTIONS, tmp_path / "fer" / "test", cache=None)
    x, y = synthetic_faces(40, 1)  # what write_folder wrote into test/
    assert len(seven.faces) == 40 and seven.emotions == EMOTIONS
    assert sorted(seven.labels.tolist()) == sorted(y.tolist())
    six = tuple(e for e in reversed(EMOTIONS) if e != "disgust")
    sub = load_test(six, tmp_path / "fer", cache=tmp_path / "cache")  # whole set: PublicTest only
    assert len(sub.faces) == int(np.sum(y != 1)) and sub.emotions == six
    # each face keeps its class, now indexed in the model's order
    ref = {f.tobytes(): EMOTIONS[c] for f, c in zip(seven.faces, seven.labels, strict=True)}
    assert all(ref[f.tobytes()] == six[c] for f, c in zip(sub.faces, sub.labels, strict=True))
    csv = tmp_path / "fer.csv"
    rows = [f"{c},{' '.join(map(str, im.ravel()))},PublicTest" for im, c in zip(x, y, strict=True)]
    csv.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    from_csv = load_test(EMOTIONS, csv, cache=None)
    np.testing.assert_array_equal(from_csv.faces, x)
    np.testing.assert_array_equal(from_csv.labels, y)
    with pytest.raises(ValueError, match="not FER2013 classes"):
        load_test(("happy", "contempt"), csv, cache=None)
    with pytest.raises(ValueError, match="no PublicTest"):
        load_test(EMOTIONS, tmp_path / "fer" / "train", cache=None)


def test_read_faces_names_a_bad_file(split: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    good = sorted((split / "angry").iterdir())[0]
    assert read_faces([good]).shape == (1, 48, 48)
    with pytest.raises(ValueError, match="bad.png"):
        read_faces([good, bad])


def test_recorded_root_is_relative_to_the_repo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from training.paths import FER2013, from_repo, repo_relative

    assert repo_relative(REPO.parent / "shared" / "x") == "../shared/x"
    assert repo_relative(REPO / "calibration") == "calibration"
    if not tmp_path.resolve().is_relative_to(REPO.parent):
        assert repo_relative(tmp_path) == str(tmp_path.resolve())
    assert from_repo(repo_relative(tmp_path)).resolve() == tmp_path.resolve()
    assert from_repo("../shared/x") == REPO / "../shared/x" and from_repo(tmp_path) == tmp_path
    cset = CalibrationSet.load()  # the recorded set of the shipped model
    assert cset.root == "../shared/data/fer2013/train" and len(cset) == 1001
    monkeypatch.chdir(tmp_path)  # the record resolves the same from any directory
    assert cset.paths()[0] == REPO / cset.root / cset.files[0]
    if not (FER2013 / "train").is_dir():
        pytest.skip(f"FER2013 not available at {FER2013}")
    assert read_faces(cset.paths()[:3]).shape == (3, 48, 48)


@pytest.mark.parametrize("module", ["calibration", "calibration.compare", "training.train"])
def test_commands_run_from_any_directory(module: str, tmp_path: Path) -> None:
    """Not installed: with the repo root on PYTHONPATH they run from any working directory."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage:")


def test_default_paths_are_in_the_repo() -> None:
    from calibration.__main__ import build_parser
    from calibration.compare import build_parser as compare_parser
    from training.paths import FER2013

    a = build_parser().parse_args([])
    assert a.fp32 == REPO / "src" / "ferfast" / "models" / "ferfast_fp32.onnx"
    assert a.record == REPO / "calibration" / "calibration_set.json"
    assert Path(a.test_data) == FER2013 / "test" and Path(a.cache) == REPO / "cache"
    c = compare_parser().parse_args([])
    assert (c.doc, c.workdir) == (REPO / "docs" / "int8.md", REPO / "build" / "int8")
    assert FER2013 == REPO.parent / "shared" / "data" / "fer2013"
