"""ONNX export: contract I/O names, dynamic batch, metadata and PyTorch parity (<= 1e-4)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from _training_helpers import SHARED, synthetic_faces

from ferfast.labels import EMOTIONS
from ferfast.ort import OrtRunner
from training.data import normalise
from training.evaluate import onnx_probs
from training.export import export_onnx, parity
from training.model import ARCHS, FerNet, count_macs, count_params


def _trained_like(arch: str, k: int = 7) -> FerNet:
    """Random net with non-trivial BN statistics (so folding is actually exercised)."""
    torch.manual_seed(0)
    net = FerNet(arch, num_classes=k)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    return net.eval()


def _real_batch(n: int = 64) -> np.ndarray:
    import cv2

    files = sorted((SHARED / "test").glob("*/PublicTest_*.jpg"))[:: 3589 // n][:n]
    return np.stack([cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files])


@pytest.mark.parametrize("arch", ["a3", "tiny"])
def test_export_contract_and_parity(tmp_path, arch):
    net = _trained_like(arch)
    path = export_onnx(net, tmp_path / "m.onnx")
    m = onnx.load(str(path))
    assert m.opset_import[0].version >= 17
    assert [i.name for i in m.graph.input] == ["input"]
    assert [o.name for o in m.graph.output] == ["probs"]
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["ferfast.emotions"] == "angry,disgust,fear,happy,sad,surprise,neutral"
    assert float(meta["ferfast.input_scale"]) == pytest.approx(1 / 255)
    assert float(meta["ferfast.input_bias"]) == 0.0 and meta["ferfast.version"]
    assert not any(n.op_type in ("BatchNormalization", "Identity") for n in m.graph.node)
    faces = _real_batch() if SHARED.is_dir() else synthetic_faces(64)[0]
    x = (faces.astype(np.float32) / 255.0)[:, None]
    r = parity(net, path, x)
    assert r.ok and r.max_abs_diff <= 1e-4 and r.argmax_agree == 1.0
    runner = OrtRunner(path)  # the Engine's runner checks the I/O contract and the metadata
    assert runner.emotions == EMOTIONS and runner.input_scale == pytest.approx(1 / 255)
    for n in (1, 5):
        p = runner.run(np.ascontiguousarray(x[:n]))
        assert p.shape == (n, 7)
        np.testing.assert_allclose(p.sum(1), 1, atol=1e-5)


def test_export_records_the_runs_val_fraction(tmp_path):
    from training.export import KEY_VAL_FRACTION

    net = _trained_like("tiny")

    def recorded(**kw) -> str | None:
        m = onnx.load(str(export_onnx(net, tmp_path / "v.onnx", **kw)))
        return {p.key: p.value for p in m.metadata_props}.get(KEY_VAL_FRACTION)

    assert recorded(config={"arch": "tiny", "val_fraction": 0.1}) == "0.1"
    assert recorded(config={"arch": "tiny", "val_fraction": 0.0}) == "0.0"
    assert recorded(config={"arch": "tiny"}) == "0.0"  # a run from before the validation split
    assert recorded() is None  # no training config: unknown


def test_six_class_export_and_mismatch(tmp_path):
    net = _trained_like("tiny", k=6)
    emos = ("angry", "fear", "happy", "sad", "surprise", "neutral")
    m = onnx.load(str(export_onnx(net, tmp_path / "m6.onnx", emos)))
    assert {p.key: p.value for p in m.metadata_props}["ferfast.emotions"] == ",".join(emos)
    with pytest.raises(ValueError, match="class names"):
        export_onnx(net, tmp_path / "bad.onnx")
    # evaluation expands a 6-class model's probabilities to the 7 EMOTIONS columns
    faces = synthetic_faces(20)[0]
    probs = onnx_probs(str(tmp_path / "m6.onnx"), faces)
    with torch.no_grad():
        ref = torch.softmax(net(torch.from_numpy(normalise(faces))), 1).numpy()
    assert probs.shape == (20, 7) and not probs[:, EMOTIONS.index("disgust")].any()
    np.testing.assert_allclose(probs[:, [EMOTIONS.index(e) for e in emos]], ref, atol=1e-5)


def test_latency_probe_times_the_shipped_int8_recipe(tmp_path):
    from training.latency import measure
    from training.quantize import inspect_qdq

    calib = normalise(synthetic_faces(32)[0])
    r = measure("tiny", calib, _trained_like("tiny"), keep_dir=tmp_path)
    assert r.arch == "tiny" and r.params == count_params(FerNet("tiny"))
    assert min(r.int8_b1_ms, r.int8_b64_ms_per_face, r.fp32_b1_ms, r.fp32_b64_ms_per_face) > 0
    q = inspect_qdq(tmp_path / "int8.onnx")  # training.quantize's form: symmetric, per-channel
    assert q.symmetric_int8 and q.per_channel_weights > 0 and "Softmax" in q.float_ops
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "int8.onnx")).metadata_props}
    assert meta["ferfast.precision"] == "int8" and "method=minmax" in meta["ferfast.calibration"]


def test_params_and_flops_counts():
    for arch in ARCHS:
        net = FerNet(arch)
        assert count_params(net) == sum(p.numel() for p in net.parameters())
        assert count_macs(arch) > 0
    assert count_params(FerNet("a3")) < 5_000_000
    # stem 1->32 stride 2 at 24x24 = 24*24*9*32 MACs
    assert count_macs("a3") - count_macs("a") == 3 * 3 * 9 * 128 * 256 + 256 * 7 - 128 * 7


def test_onnx_round_trip_gives_a_trainable_net(tmp_path):
    """``load_onnx_net`` inverts the export: the same function in eval mode, and batch statistics
    close to the folded model's in train mode."""
    from training.export import load_onnx_net

    net = _trained_like("tiny")
    path = export_onnx(net, tmp_path / "m.onnx")
    faces = synthetic_faces(256)[0]
    back = load_onnx_net(path, faces)
    assert back.arch == "tiny" and back.num_classes == 7
    x = torch.from_numpy(faces[:64].astype(np.float32) / 255.0).unsqueeze(1)
    with torch.no_grad():
        ref = torch.softmax(net(x), 1).numpy()
        got = torch.softmax(back(x), 1).numpy()
        np.testing.assert_allclose(got, ref, atol=1e-5)
        # a training-mode forward uses the batch's statistics; they were measured on this data
        back.train()
        for bn in (m for m in back.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.momentum = 0.0  # keep the running statistics as loaded
        drift = torch.softmax(back(x), 1).numpy()
    assert np.abs(drift - ref).max() < 0.1
    # the exported file of the round-tripped net is the original's function again
    again = export_onnx(back.eval(), tmp_path / "again.onnx")
    np.testing.assert_allclose(OrtRunner(again).run(x.numpy()), ref, atol=1e-5)


def test_onnx_round_trip_refuses_other_files(tmp_path):
    from training.export import load_onnx_net

    path = export_onnx(_trained_like("tiny"), tmp_path / "m.onnx")
    m = onnx.load(str(path))
    for p in m.metadata_props:
        if p.key == "ferfast.arch":
            p.value = "resnet9000"
    onnx.save(m, str(tmp_path / "bad_arch.onnx"))
    with pytest.raises(ValueError, match="not a training arch"):
        load_onnx_net(tmp_path / "bad_arch.onnx", synthetic_faces(8)[0])
    m = onnx.load(str(path))
    m.graph.initializer[0].name = "renamed"
    onnx.save(m, str(tmp_path / "renamed.onnx"))
    with pytest.raises(ValueError, match="no initializer"):
        load_onnx_net(tmp_path / "renamed.onnx", synthetic_faces(8)[0])
