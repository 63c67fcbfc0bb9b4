"""A multimodal inverse problem: the planar 3-link robot arm (two elbow solutions per pose).

Adam, Adam + PG (Gauss-Newton), Adam + PG (L-BFGS) and supervised training of an MLP (64, 64)
from the pose (x, y, orientation) to the joint angles, 1000 iterations of batch 32, seed 0
(``--seed``); x error = wrapped joint-angle error (``x_error``), scored on 256 held-out poses.

    OMP_NUM_THREADS=1 python benchmarks/multimodal_arm.py --out runs/multimodal-arm
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from diagnose_validation import robot_arm  # noqa: E402

from physgrad.experiments import compare_methods  # noqa: E402
from physgrad.nets import MLP  # noqa: E402
from physgrad.problems import FunctionProblem  # noqa: E402
from physgrad.solvers import LBFGS, GaussNewton  # noqa: E402
from physgrad.training import Physical, Supervised, Unsupervised  # noqa: E402


def wrapped(x: torch.Tensor, x_true: torch.Tensor) -> torch.Tensor:
    """Joint-angle difference in (-π, π], ``(B, 3)``."""
    return torch.remainder(x - x_true + math.pi, 2 * math.pi) - math.pi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/multimodal-arm"))
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="initial weights and data (default 0)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    arm = robot_arm()
    problem = FunctionProblem(arm._physics, arm._sampler, name="robot-arm", dtype=torch.float64,
                              x_error=wrapped)
    methods = {"Adam": Unsupervised, "Adam + PG (Gauss-Newton)": lambda: Physical(GaussNewton()),
               "Adam + PG (L-BFGS)": lambda: Physical(LBFGS()), "supervised": Supervised}
    start = time.process_time()
    result = compare_methods(problem, lambda: MLP(3, 3, hidden=(64, 64)), methods, args.out,
                             iterations=args.iterations, batch_size=32, seed=args.seed)
    print(result.markdown_table())
    print(result.legend())
    print(f"{time.process_time() - start:.0f} s CPU")


if __name__ == "__main__":
    main()
