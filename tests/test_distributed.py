"""torchrun / DistributedDataParallel on CPU (gloo): 2 processes x B == 1 process x 2B."""

import csv
import os
import subprocess
import sys

import pytest


def _metrics(path):
    with open(path) as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _physgrad(args, nproc=1, cwd=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc == 1:
        cmd = [sys.executable, "-m", "physgrad", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "physgrad", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _assert_same_run(a, b, keys=("loss", "y_l1", "x_dist")):
    assert len(a) == len(b)
    for ra, rb in zip(a, b, strict=True):
        for k in keys:
            assert ra[k] == pytest.approx(rb[k], rel=1e-4, abs=1e-7), (ra["iteration"], k)


def test_two_processes_match_one_process_with_the_global_batch_and_resume(tmp_path):
    common = ["run", "sine", "--method", "pg-analytic", "--scale", "smoke", "--batch-size", "64",
              "--quiet"]
    _physgrad([*common, "--iters", "20", "--out", str(tmp_path / "one")])
    _physgrad([*common, "--iters", "20", "--out", str(tmp_path / "two")], nproc=2)
    one = _metrics(tmp_path / "one" / "pg-analytic" / "metrics.csv")
    two = _metrics(tmp_path / "two" / "pg-analytic" / "metrics.csv")
    _assert_same_run(one, two)

    # a 2-process checkpoint continues in 1 process (different world size)
    _physgrad([*common, "--iters", "10", "--out", str(tmp_path / "mixed")], nproc=2)
    _physgrad([*common, "--iters", "20", "--out", str(tmp_path / "mixed"), "--resume"])
    _assert_same_run(one, _metrics(tmp_path / "mixed" / "pg-analytic" / "metrics.csv"))
