"""Damped pendulum: infer length L [m] and damping c [1/s] from a noisy swing theta(t) [rad].

theta'' = -(g/L) sin(theta) - c theta', theta(0) = 1 rad, theta'(0) = 0, integrated by batched RK4
(float64), observed at 20 times in (0, 3] s. An MLP maps the trajectory to (L, c): Adam through
the physics vs Adam + PG (Gauss-Newton). Run: python examples/pendulum.py [--smoke]
"""

import sys

import torch

from physgrad.experiments import compare_methods
from physgrad.problems.custom import FunctionProblem
from physgrad.report.figures import render
from physgrad.solvers import GaussNewton
from physgrad.training import Physical, Unsupervised

DT, STEPS = 0.15, 20  # RK4 time step [s] and number of steps (theta is observed after each)
LO, HI = torch.tensor([0.5, 0.02], dtype=torch.float64), torch.tensor([2.0, 0.5]).double()


def physics(x: torch.Tensor) -> torch.Tensor:
    """(B, 2) of (L [m], c [1/s]) -> (B, 20) angles [rad]; batched and differentiable."""
    w2, c = 9.81 / x[:, 0].clamp_min(0.05), x[:, 1]  # clamp: a negative length has no physics
    th, om, out = torch.ones_like(c), torch.zeros_like(c), []
    def f(th, om):  # (d theta/dt, d omega/dt)
        return om, -w2 * torch.sin(th) - c * om
    for _ in range(STEPS):
        a1, b1 = f(th, om)
        a2, b2 = f(th + 0.5 * DT * a1, om + 0.5 * DT * b1)
        a3, b3 = f(th + 0.5 * DT * a2, om + 0.5 * DT * b2)
        a4, b4 = f(th + DT * a3, om + DT * b3)
        th, om = th + DT / 6 * (a1 + 2 * (a2 + a3) + a4), om + DT / 6 * (b1 + 2 * (b2 + b3) + b4)
        out.append(th)
    return torch.stack(out, dim=1)


def sampler(batch_size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """x uniform in [LO, HI]; the observed angles carry 0.02 rad of Gaussian noise."""
    x = LO + (HI - LO) * torch.rand(batch_size, 2, generator=gen, dtype=torch.float64)
    return x, physics(x) + 0.02 * torch.randn(batch_size, STEPS, generator=gen, dtype=x.dtype)


def network() -> torch.nn.Module:  # softplus: L and c come out positive (0.7 at the start)
    layers = [torch.nn.Linear(STEPS, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2)]
    return torch.nn.Sequential(*layers, torch.nn.Softplus())


def main(smoke: bool = False, out: str | None = None, iterations: int = 400, seed: int = 0):
    problem = FunctionProblem(physics, sampler, name="pendulum", dtype=torch.float64)
    methods = {"Adam": Unsupervised,  # PG is clipped: GN steps from far-off guesses can be huge
               "Adam + PG (Gauss-Newton)": lambda: Physical(GaussNewton(damping=1e-3), clip=0.1)}
    result = compare_methods(problem, network, methods, out or "runs/pendulum" + "-smoke" * smoke,
                             iterations=5 if smoke else iterations, batch_size=32, seed=seed)
    render(result)  # curves.png: the comparison carries its figures as data
    print(result.markdown_table(), f"\ncurves: {result.out / 'curves.png'}")
    return result


if __name__ == "__main__":
    main(smoke="--smoke" in sys.argv[1:])
