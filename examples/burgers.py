"""1D viscous Burgers: infer the initial state u(t=0) from u(t=0.48) on 64 periodic cells.

16 explicit Euler steps of u_t + (u^2/2)_x = nu u_xx on [0, 2 pi) (central differences, nu = 0.1,
dt = 0.03 < dx^2 / (2 nu) = 0.048). Viscosity damps mode k by ~exp(-nu k^2 t), so plain backprop
sees badly scaled gradients. A residual MLP maps y to x: Adam vs Adam + PG (L-BFGS).
Run: python examples/burgers.py [--smoke]
"""

import math
import sys

import torch

from physgrad.experiments import compare_methods
from physgrad.problems.custom import FunctionProblem
from physgrad.report.figures import render
from physgrad.solvers import LBFGS
from physgrad.training import Physical, Unsupervised

N, NU, DT, STEPS = 64, 0.1, 0.03, 16  # cells, viscosity, time step, steps (t = 0.48)
DX, K = 2 * math.pi / N, torch.arange(1.0, 7.0)  # cell width, wave numbers of the data


def physics(u: torch.Tensor) -> torch.Tensor:
    """(B, 64) initial state -> (B, 64) state at t = STEPS * DT; batched, differentiable."""
    for _ in range(STEPS):
        up, um = u.roll(-1, dims=1), u.roll(1, dims=1)  # periodic neighbours
        u = u + DT * (-(up**2 - um**2) / (4 * DX) + NU * (up - 2 * u + um) / DX**2)
    return u


def sampler(batch_size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random smooth initial states: Fourier modes 1..6 with amplitudes ~ N(0, (0.4 / k)^2)."""
    a = torch.randn(batch_size, 2, len(K), generator=gen) * 0.4 / K
    phase = K[:, None] * torch.arange(N) * DX  # (6, 64): k * cell position
    u0 = a[:, 0] @ torch.sin(phase) + a[:, 1] @ torch.cos(phase)
    return u0, physics(u0)


class Residual(torch.nn.Sequential):
    """x = y + MLP(y), starting at x = y: diffusion only damps, so y is a fair guess of u0."""
    def __init__(self):
        super().__init__(torch.nn.Linear(N, 256), torch.nn.ReLU(), torch.nn.Linear(256, N))
        torch.nn.init.zeros_(self[-1].weight)
        torch.nn.init.zeros_(self[-1].bias)

    def forward(self, y: torch.Tensor) -> torch.Tensor:  # (B, 64) -> (B, 64)
        return y + super().forward(y)


def main(smoke: bool = False, out: str | None = None, iterations: int = 300, seed: int = 0):
    problem = FunctionProblem(physics, sampler, name="burgers")
    methods = {"Adam": Unsupervised, "Adam + PG (L-BFGS)": lambda: Physical(LBFGS(steps=8))}
    result = compare_methods(problem, Residual, methods, out or "runs/burgers" + "-smoke" * smoke,
                             iterations=5 if smoke else iterations, batch_size=32, seed=seed)
    render(result)  # curves.png: the comparison carries its figures as data
    print(result.markdown_table(), f"\ncurves: {result.out / 'curves.png'}")
    return result


if __name__ == "__main__":
    main(smoke="--smoke" in sys.argv[1:])
