"""scripts/reproduce.sh says which of its stages it is in and about how long each takes."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STAGE = re.compile(r"^reproduce: stage (\d+)/(\d+): (.+), about (.+)$")


@pytest.mark.parametrize("full", ["0", "1"])
def test_dry_run_numbers_every_stage_with_an_estimate(full: str) -> None:
    env = dict(os.environ, FERFAST_DRY_RUN="1", FERFAST_FULL=full)
    res = subprocess.run(
        ["bash", "scripts/reproduce.sh"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert re.match(r"reproduce: \d+ stages, about \d+ h on a 2-core CPU", lines[0])
    stages = [m.groups() for m in map(STAGE.match, lines) if m]
    total = int(stages[0][1])
    assert [int(k) for k, *_ in stages] == list(range(1, total + 1))
    assert {int(n) for _, n, *_ in stages} == {total}
    assert lines[0].startswith(f"reproduce: {total} stages")
    # Every stage announces at least one command, and nothing ran (a dry run only prints).
    commands = [line for line in res.stdout.splitlines() if line.startswith("  + ")]
    assert any("training.train" in c for c in commands)
    assert any("calibration" in c for c in commands)
    assert ("runs/t1_90" in res.stdout) == (full == "1")
