"""Engine.predict_batch, ferfast.predict_files and the ``ferfast predict`` command, real photos."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from stream_support import check_record

import ferfast
from ferfast.cli import main as cli_main
from ferfast.files import collect_inputs, predict_files


@pytest.fixture(scope="module")
def engine(yunet_path: Path) -> ferfast.Engine:
    return ferfast.Engine(detector_model=yunet_path)


@pytest.fixture()
def photo_dir(tmp_path: Path, photos: dict[str, np.ndarray]) -> Path:
    """A folder: two photos at the top, one in a subfolder, a text file posing as a JPEG,
    a hidden file and a non-image file (both ignored), and a 5-frame video of one photo."""
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    cv2.imwrite(str(root / "a.jpg"), photos["images_1.jpg"])
    cv2.imwrite(str(root / "b.png"), photos["demo_1.png"])
    cv2.imwrite(str(root / "sub" / "c.jpg"), photos["demo_2.png"])
    (root / "notes.jpg").write_text("not an image\n")
    (root / ".hidden.jpg").write_text("hidden\n")
    (root / "readme.txt").write_text("ignored\n")
    frame = cv2.resize(photos["images_1.jpg"], (320, 240))
    writer = cv2.VideoWriter(
        str(root / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240)
    )
    for _ in range(5):
        writer.write(frame)
    writer.release()
    return root


def test_predict_batch_equals_predict_per_frame(
    engine: ferfast.Engine, photos: dict[str, np.ndarray]
) -> None:
    frames = [photos["images_1.jpg"], np.zeros((120, 160, 3), np.uint8), photos["demo_1.png"]]
    batched = engine.predict_batch(frames)
    assert [len(r) for r in batched] == [len(engine.predict(f)) for f in frames]
    assert len(batched[0]) >= 1 and len(batched[1]) == 0 and len(batched[2]) >= 1
    for frame, results in zip(frames, batched, strict=True):
        for one, many in zip(engine.predict(frame), results, strict=True):
            assert one.box == many.box and one.emotion == many.emotion
            np.testing.assert_allclose(one.probs, many.probs, atol=1e-5)
    assert engine.predict_batch([]) == []
    with pytest.raises(TypeError, match="sequence of frames"):
        engine.predict_batch(frames[0])
    with pytest.raises(TypeError, match="uint8"):
        engine.predict_batch([frames[0], frames[0].astype(np.float32)])


def test_collect_inputs_walks_folders_sorted_and_reports_missing(
    photo_dir: Path, tmp_path: Path
) -> None:
    inputs, errors = collect_inputs([photo_dir, tmp_path / "missing.jpg"])
    names = [str(i.relative) for i in inputs]
    assert names == ["a.jpg", "b.png", "clip.avi", "notes.jpg", "sub/c.jpg"]
    assert [i.kind for i in inputs] == ["image", "image", "video", "image", "image"]
    assert len(errors) == 1 and "no such file" in errors[0].error
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no image or video" in collect_inputs([empty])[1][0].error


def test_predict_files_images_videos_and_unreadable(
    engine: ferfast.Engine, photo_dir: Path
) -> None:
    preds = list(predict_files(photo_dir, engine, every=2))
    by_source = {}
    for p in preds:
        by_source.setdefault(Path(p.source).name, []).append(p)
    assert sorted(by_source) == ["a.jpg", "b.png", "c.jpg", "clip.avi", "notes.jpg"]
    assert [p.frame for p in by_source["clip.avi"]] == [0, 2, 4]
    (bad,) = by_source["notes.jpg"]
    assert bad.error and len(bad.faces) == 0
    for name in ("a.jpg", "b.png", "c.jpg"):
        (p,) = by_source[name]
        assert p.error is None and len(p.faces) >= 1
        assert p.faces[0].emotion in ferfast.EMOTIONS
    # The same photo alone gives the same result as inside the batch.
    alone = engine.predict(cv2.imread(str(photo_dir / "a.jpg")))
    np.testing.assert_allclose(by_source["a.jpg"][0].faces[0].probs, alone[0].probs, atol=1e-5)
    with pytest.raises(ValueError, match="every"):
        next(predict_files(photo_dir, engine, every=0))
    with pytest.raises(TypeError, match="every"):
        next(predict_files(photo_dir, engine, every=1.5))  # type: ignore[arg-type]
    # collect_inputs' list is taken as it is, and each prediction names its decoded input.
    inputs, _ = collect_inputs([photo_dir])
    again = [p for p in predict_files(inputs, engine, every=2) if p.error is None]
    assert [p.source for p in again] == [p.source for p in preds if p.error is None]
    assert {p.input.kind for p in again if p.source.endswith("clip.avi")} == {"video"}


def _predict(
    args: list[str], yunet: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    code = cli_main(["predict", "--detector-model", str(yunet), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_predict_csv_to_file(
    photo_dir: Path, tmp_path: Path, yunet_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_csv = tmp_path / "faces.csv"
    code, _, err = _predict(
        [str(photo_dir), "--every", "5", "-o", str(out_csv)], yunet_path, capsys
    )
    assert code == 0
    assert "notes.jpg" in err and "1 unreadable" in err
    rows = list(csv.DictReader(out_csv.open()))
    assert {Path(r["source"]).name for r in rows} == {"a.jpg", "b.png", "c.jpg", "clip.avi"}
    assert [r["frame"] for r in rows if r["source"].endswith("clip.avi")] == ["0"]
    for r in rows:
        assert r["emotion"] in ferfast.EMOTIONS
        probs = {e: float(r[e]) for e in ferfast.EMOTIONS}
        assert max(probs, key=probs.get) == r["emotion"]
        assert float(r["w"]) > 0 and float(r["h"]) > 0


def test_cli_predict_table_jsonl_and_annotate(
    photo_dir: Path, tmp_path: Path, yunet_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _predict([str(photo_dir / "a.jpg")], yunet_path, capsys)
    assert code == 0
    header, first = out.splitlines()[:2]
    assert "emotion" in header and "a.jpg" in first
    assert any(e in first for e in ferfast.EMOTIONS)

    ann = tmp_path / "ann"
    code, out, _ = _predict(
        [str(photo_dir / "a.jpg"), "--format", "jsonl", "--annotate", str(ann)], yunet_path, capsys
    )
    assert code == 0
    (record,) = [json.loads(line) for line in out.splitlines()]  # one line per image
    check_record(record)
    assert record["source"].endswith("a.jpg") and record["frame"] == 0
    (face,) = record["faces"]
    assert set(face["probs"]) == set(ferfast.EMOTIONS) and "id" not in face
    drawn = cv2.imread(str(ann / "a.ferfast.jpg"))
    original = cv2.imread(str(photo_dir / "a.jpg"))
    assert drawn is not None and drawn.shape == original.shape
    assert np.abs(drawn.astype(int) - original.astype(int)).sum() > 0  # boxes were drawn


def test_cli_predict_fails_only_when_nothing_was_processed(
    tmp_path: Path, yunet_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG garbage")
    code, out, err = _predict([str(bad), str(tmp_path / "nope")], yunet_path, capsys)
    assert code == 1
    assert "bad.png" in err and "nope" in err and "nothing could be processed" in err
    assert out == ""


def test_cli_predict_warns_in_one_plain_line_when_yunet_cannot_be_had(
    tmp_path: Path, photos: dict[str, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    # The test session runs offline with an empty cache (conftest): YuNet cannot be fetched.
    photo = tmp_path / "a.jpg"
    cv2.imwrite(str(photo), photos["images_1.jpg"])
    assert cli_main(["predict", str(photo), "--format", "csv"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "warning:" in line]
    assert len(lines) == 1 and lines[0].startswith("ferfast predict: warning: using the Haar")
    assert "UserWarning" not in err and ".py:" not in err


def test_cli_annotates_every_frame_of_a_video_with_an_unknown_suffix(
    photo_dir: Path, tmp_path: Path, yunet_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = tmp_path / "clip.bin"  # a video under a suffix that is not a known video extension
    clip.write_bytes((photo_dir / "clip.avi").read_bytes())
    ann = tmp_path / "ann"
    code, _, _ = _predict(
        [str(clip), "--every", "2", "--format", "csv", "--annotate", str(ann)], yunet_path, capsys
    )
    assert code == 0
    assert sorted(p.name for p in ann.iterdir()) == [
        "clip_000000.ferfast.jpg",
        "clip_000002.ferfast.jpg",
        "clip_000004.ferfast.jpg",
    ]
