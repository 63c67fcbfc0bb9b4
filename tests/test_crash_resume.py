"""A run killed with SIGKILL at a random moment resumes to a bit-identical result."""

import csv
import os
import random
import signal
import subprocess
import sys
import time

import torch

ITERS = 1500
ARGS = ["run", "sine", "--method", "pg-newton", "--scale", "smoke", "--iters", str(ITERS),
        "--batch-size", "32", "--checkpoint-every", "10", "--quiet"]


def _cmd(out, *extra):
    return [sys.executable, "-m", "physgrad", "--threads", "1", *ARGS, "--out", str(out), *extra]


def _rows(path):
    with open(path) as fh:  # drop the wall-clock column: everything else must match exactly
        return [
            {k: v for k, v in r.items() if k not in ("step_time", "cpu_time")}
            for r in csv.DictReader(fh)
        ]


def test_sigkill_at_a_random_iteration_then_resume_is_bit_identical(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(_cmd(tmp_path / "full"), check=True, env=env, timeout=600)

    for attempt in range(4):  # on a fast, idle machine a run may finish before the kill
        crash = tmp_path / f"crash{attempt}"
        proc = subprocess.Popen(_cmd(crash), env=env)
        checkpoint = crash / "pg-newton" / "checkpoint.pt"
        deadline = time.time() + 300
        while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        time.sleep(random.uniform(0.0, 0.5 / (attempt + 1)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at = torch.load(checkpoint, weights_only=True)["iteration"]
        if killed_at < ITERS:
            break
    assert killed_at < ITERS, "every run finished before it could be killed"

    subprocess.run(_cmd(crash, "--resume"), check=True, env=env, timeout=600)
    assert _rows(crash / "pg-newton" / "metrics.csv") == _rows(tmp_path / "full" / "pg-newton" /
                                                               "metrics.csv")
    a = torch.load(tmp_path / "full" / "pg-newton" / "checkpoint.pt", weights_only=True)
    b = torch.load(checkpoint, weights_only=True)
    assert a["iteration"] == b["iteration"] == ITERS
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key])
    for key in ("exp_avg", "exp_avg_sq"):
        for i in a["optimizer"]["state"]:
            assert torch.equal(a["optimizer"]["state"][i][key], b["optimizer"]["state"][i][key])
