"""preprocess splits large calls across helper threads: same bytes as one thread, any caller.

The helper count is read once per process (``FERFAST_PREPROCESS_THREADS``; default one per further
CPU, at most 3), so the single- and multi-threaded runs are separate processes that write their
outputs for the parent to compare bit for bit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from cxx import include_flags

import ferfast

REPO = Path(__file__).resolve().parents[1]

# Builds the cases from a seed, runs them, saves every output (run in a child process).
CASES_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import ferfast

    rng = np.random.default_rng(7)
    bgr = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    frames = {
        "bgr": bgr,
        "gray": np.ascontiguousarray(bgr[..., 1]),
        "bgra": np.dstack([bgr, bgr[..., :1]]),
        "flipped": bgr[::-1, ::-1],
        "channels_reversed": bgr[..., ::-1],
    }
    n = 40
    xy = rng.uniform(-150, 1250, (n, 2))
    wh = rng.uniform(20, 400, (n, 2))
    boxes = np.hstack([xy, wh]).astype(np.float32)
    boxes[:, 0] = np.clip(boxes[:, 0], -boxes[:, 2] + 1, 1279)
    boxes[:, 1] = np.clip(boxes[:, 1], -boxes[:, 3] + 1, 719)
    eyes = boxes[:, :2] + boxes[:, 2:] * np.array([[0.3, 0.4]])
    landmarks = np.zeros((n, 5, 2), np.float32)
    landmarks[:, 0] = eyes
    landmarks[:, 1] = eyes + boxes[:, 2:3] * np.array([[0.4, 0.05]])
    out = {}
    for name, frame in frames.items():
        out[name] = ferfast.preprocess(frame, boxes)
        out[name + "_one"] = ferfast.preprocess(frame, boxes[:1])
    out["landmarks"] = ferfast.preprocess(bgr, boxes, landmarks=landmarks)
    out["many"] = ferfast.preprocess(bgr, np.tile(boxes, (30, 1)))
    tasks = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else -1
    np.savez(sys.argv[1], tasks=tasks, **out)
    """
)


def run_cases(tmp_path: Path, threads: int) -> dict[str, np.ndarray]:
    path = tmp_path / f"threads{threads}.npz"
    env = {**os.environ, "FERFAST_PREPROCESS_THREADS": str(threads)}
    subprocess.run(
        [sys.executable, "-c", CASES_SCRIPT, str(path)], env=env, check=True, timeout=120
    )
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def test_threaded_results_equal_one_thread_bit_for_bit(tmp_path: Path) -> None:
    one = run_cases(tmp_path, 1)
    four = run_cases(tmp_path, 4)
    assert one.keys() == four.keys()
    for key in one:
        if key != "tasks":
            assert one[key].dtype == np.float32, key
            np.testing.assert_array_equal(four[key], one[key], err_msg=key)
    if int(one["tasks"]) > 0:  # Linux: /proc/self/task counts the process's threads
        assert int(four["tasks"]) == int(one["tasks"]) + 3  # the three helpers started


def frame_and_boxes() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    boxes = np.array(
        [[300, 200, 150, 190], [820, 340, 180, 230], [1250, 150, 200, 250], [1600, 600, 160, 200]],
        np.float32,
    )
    return frame, boxes


def test_concurrent_callers_get_their_own_results() -> None:
    frame, boxes = frame_and_boxes()
    # Each caller gets different boxes, so a mix-up between calls would show.
    calls = [boxes + np.float32([dx, dy, 0, 0]) for dx in (0, 7, 13) for dy in (0, 5, 11)]
    expected = [ferfast.preprocess(frame, b) for b in calls]

    def call(i: int) -> np.ndarray:
        return ferfast.preprocess(frame, calls[i % len(calls)])

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(call, range(200)))
    for i, got in enumerate(results):
        np.testing.assert_array_equal(got, expected[i % len(calls)])


# The parent makes its helpers, forks, and the child preprocesses without them (run in a child
# process with threading forced on, so the check does not depend on this machine's CPU count).
FORK_SCRIPT = textwrap.dedent(
    """
    import multiprocessing, sys
    import numpy as np
    import ferfast

    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    boxes = np.array([[300, 200, 150, 190], [820, 340, 180, 230], [1250, 150, 200, 250]], "f4")

    def child(queue):
        queue.put(ferfast.preprocess(frame, boxes))

    expected = ferfast.preprocess(frame, boxes)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=child, args=(queue,))
    proc.start()
    got = queue.get(timeout=60)
    proc.join(timeout=60)
    assert proc.exitcode == 0, proc.exitcode
    assert np.array_equal(got, expected)
    print("ok")
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_a_forked_child_preprocesses_without_the_parents_threads() -> None:
    env = {**os.environ, "FERFAST_PREPROCESS_THREADS": "2"}
    run = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["ok"]


# Scratch memory that cannot be allocated (address-space limit) fails the call with MemoryError,
# whichever thread hits it, and the process goes on.
OOM_SCRIPT = textwrap.dedent(
    """
    import resource
    import numpy as np
    import ferfast

    frame = np.zeros((1080, 1920, 3), np.uint8)
    ferfast.preprocess(frame, np.array([[100, 100, 200, 200]] * 4, np.float32))  # helpers up
    huge = np.array([[-14000, -14000, 30000, 30000]] * 4, np.float32)  # MBs of scratch each
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + (1 << 20), hard))
    try:
        ferfast.preprocess(frame, huge)
        print("no-error")
    except MemoryError:
        print("MemoryError")
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    print(ferfast.preprocess(frame, huge).shape)
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /proc")
@pytest.mark.skipif(
    "asan" in os.environ.get("LD_PRELOAD", ""), reason="ASan reserves more address space"
)
@pytest.mark.parametrize("threads", [1, 4])
def test_allocation_failure_raises_memory_error_not_abort(threads: int) -> None:
    env = {**os.environ, "FERFAST_PREPROCESS_THREADS": str(threads)}
    run = subprocess.run(
        [sys.executable, "-c", OOM_SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["MemoryError", "(4,", "1,", "48,", "48)"]


def test_helper_pool_is_free_of_data_races(tmp_path: Path) -> None:
    """The kernel built with ThreadSanitizer: three callers at once, three helpers, same bytes."""
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("no g++")
    exe = tmp_path / "threads"
    # -U__linux__ leaves out the target_clones resolvers, which run before TSan is initialised.
    cmd = [cxx, "-std=c++17", "-O1", "-g", "-fsanitize=thread", "-pthread", "-U__linux__"]
    cmd += [*include_flags(), str(REPO / "tests" / "preprocess_threads.cpp")]
    cmd += [str(REPO / "cpp" / "preprocess.cpp"), "-o", str(exe)]
    built = subprocess.run(cmd, capture_output=True, text=True)
    if built.returncode != 0 and "tsan" in built.stderr.lower():
        pytest.skip(f"ThreadSanitizer unavailable: {built.stderr.strip()[-200:]}")
    assert built.returncode == 0, built.stderr
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # no ASan (sanitize.sh)
    env |= {"FERFAST_PREPROCESS_THREADS": "4", "TSAN_OPTIONS": "halt_on_error=1"}
    run = subprocess.run([str(exe), "40"], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "ThreadSanitizer" not in run.stderr, run.stderr[-3000:]
    assert run.stdout.split() == ["120", "0"]
