"""Loaders (image folder + CSV), corrupt-input reporting and the array cache."""

from __future__ import annotations

import numpy as np
import pytest
from _training_helpers import SHARED, synthetic_faces, write_folder

from training.data import EMOTIONS, FerData, load, load_csv, load_image_folder


def test_folder_loader_splits_labels_and_skips_corrupt(tmp_path):
    root = write_folder(tmp_path / "fer", n_train=40, n_test=20)
    data, rep = load_image_folder(root)
    assert len(data) == 60 and rep.n_loaded == 60
    assert rep.n_skipped == 4
    reasons = " ".join(r for _, r in rep.skipped)
    assert "empty file" in reasons and "undecodable" in reasons
    assert "64x64" in reasons and "unknown emotion folder" in reasons
    assert "skipped 4" in rep.summary()
    xtr, ytr = data.subset("Training")
    xte, yte = data.subset("PublicTest")
    assert len(xtr) == 40 and len(xte) == 20
    assert xtr.dtype == np.uint8 and xtr.shape[1:] == (48, 48)
    # labels follow the folder names in EMOTIONS order and pixels survive the PNG round trip
    x_ref, y_ref = synthetic_faces(40, 0)
    names = data.names[data.splits == "Training"]
    idx = np.array([int(n.rsplit("_", 1)[1].split(".")[0]) for n in names])
    np.testing.assert_array_equal(ytr, y_ref[idx])
    np.testing.assert_array_equal(xtr, x_ref[idx])


def test_prefix_overrides_folder(tmp_path):
    import cv2

    d = tmp_path / "fer" / "test" / "happy"
    d.mkdir(parents=True)
    cv2.imwrite(str(d / "PrivateTest_1.png"), np.zeros((48, 48), np.uint8))
    cv2.imwrite(str(d / "noprefix.png"), np.zeros((48, 48), np.uint8))
    data, rep = load_image_folder(tmp_path / "fer")
    assert sorted(data.splits.tolist()) == ["PrivateTest", "PublicTest"]
    assert (data.labels == EMOTIONS.index("happy")).all()
    assert rep.n_skipped == 0


def test_one_split_folder_loads_like_its_part_of_the_set(tmp_path):
    root = write_folder(tmp_path / "fer", n_train=30, n_test=20)
    whole, _ = load_image_folder(root)
    test, rep = load(root / "test")  # <emotion>/*.png directly: one split
    assert rep.n_skipped == 0 and len(test) == 20 and set(test.splits) == {"PublicTest"}
    assert all(n.split("/")[0] in EMOTIONS for n in test.names)
    x, y = whole.subset("PublicTest")
    np.testing.assert_array_equal(test.images, x)
    np.testing.assert_array_equal(test.labels, y)
    train, rep = load(root / "train")
    assert len(train) == 30 and set(train.splits) == {"Training"} and rep.n_skipped == 4


def _csv(path, rows):
    path.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    return path


def test_csv_loader_good_and_bad_rows(tmp_path):
    x, y = synthetic_faces(10, 3)
    good = [
        f"{c},{' '.join(map(str, im.ravel()))},{u}"
        for im, c, u in zip(
            x, y, ["Training"] * 6 + ["PublicTest"] * 3 + ["PrivateTest"], strict=True
        )
    ]
    bad = [
        "9," + " ".join(["0"] * 2304) + ",Training",  # label out of range
        "x," + " ".join(["0"] * 2304) + ",Training",  # non-integer label
        "1," + " ".join(["0"] * 100) + ",Training",  # too few pixels
        "1," + " ".join(["0"] * 2303 + ["300"]) + ",Training",  # value > 255
        "1," + " ".join(["0"] * 2303 + ["a"]) + ",Training",  # non-integer pixel
        "1," + " ".join(["0"] * 2304) + ",Validation",  # unknown usage
    ]
    data, rep = load_csv(_csv(tmp_path / "f.csv", good[:5] + bad + good[5:]))
    assert len(data) == 10 and rep.n_skipped == 6
    np.testing.assert_array_equal(data.images, x)
    np.testing.assert_array_equal(data.labels, y)
    assert data.counts()["Training"] == np.bincount(y[:6], minlength=7).tolist()
    assert [item for item, _ in rep.skipped] == [f"row {i}" for i in range(7, 13)]


def test_csv_missing_columns(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("label,pixels\n1,0 0\n")
    with pytest.raises(ValueError, match="missing CSV columns"):
        load_csv(p)


def test_cache_roundtrip_keeps_report(tmp_path):
    root = write_folder(tmp_path / "fer", n_train=30, n_test=10)
    d1, r1 = load(root, tmp_path / "cache")
    d2, r2 = load(root, tmp_path / "cache")
    assert not r1.from_cache and r2.from_cache
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    np.testing.assert_array_equal(d1.images, d2.images)
    np.testing.assert_array_equal(d1.labels, d2.labels)
    assert d1.splits.tolist() == d2.splits.tolist()
    assert r2.n_skipped == r1.n_skipped == 4


def test_bad_inputs():
    with pytest.raises(FileNotFoundError):
        load("/nonexistent/fer")
    with pytest.raises(ValueError):
        FerData(
            np.zeros((2, 32, 32), np.uint8),
            np.zeros(2),
            np.array(["Training"] * 2),
            np.array(["a", "b"]),
        )
    d = FerData(
        np.zeros((1, 48, 48), np.uint8),
        np.zeros(1, np.int64),
        np.array(["Training"]),
        np.array(["a"]),
    )
    with pytest.raises(ValueError, match="unknown split"):
        d.subset("Validation")


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared FER2013 not available")
def test_real_folder_layout_prefixes():
    import cv2

    for split, prefix in (("train", "Training_"), ("test", "PublicTest_")):
        for emo in EMOTIONS:
            files = sorted((SHARED / split / emo).iterdir())[:2]
            assert files and all(f.name.startswith(prefix) for f in files)
            assert cv2.imread(str(files[0]), cv2.IMREAD_GRAYSCALE).shape == (48, 48)
