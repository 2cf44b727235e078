"""Both command lines write the same frame record (docs/record.schema.json)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from stream_support import YUNET, check_record

from ferfast.cli import main as predict_main
from ferfast.stream.cli import main as stream_main


def test_predict_and_stream_write_the_same_record_for_one_photo(
    photos: dict[str, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = tmp_path / "a.png"  # lossless: both readers decode the same pixels
    cv2.imwrite(str(photo), photos["images_1.jpg"])
    engine = ["--detector", "yunet", "--detector-model", str(YUNET)]
    assert predict_main(["predict", str(photo), "--format", "jsonl", *engine]) == 0
    (from_predict,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert stream_main(["--source", str(photo), "-q", "--detect-every", "1", *engine]) == 0
    (from_stream,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    for record in (from_predict, from_stream):
        check_record(record)
        assert record["source"] == str(photo) and record["frame"] == 0
    (a,), (b,) = from_predict["faces"], from_stream["faces"]
    assert b.pop("id") == 1 and "id" not in a  # only the stream tracks faces
    assert a == b  # same keys, same numbers, same rounding
