"""PhiFlow physics: infer the wind (wx, wy) and vortex spin w that carried a smoke puff.

Needs physgrad[phiflow]. 4 PhiFlow MacCormack steps move a two-blob marker (periodic 32x32 grid,
64x64 box) through a uniform wind + Gaussian vortex; phiflow_physics makes that a torch physics
(B, 3) -> (B, 32, 32). An MLP maps smoke to parameters: Adam vs Adam + PG (L-BFGS). [--smoke]
"""

import sys

import torch

try:
    from phi.torch.flow import Box, CenteredGrid, advect, extrapolation, math
except ImportError:  # one line instead of a traceback
    print("phiflow_smoke.py needs PhiFlow: pip install 'physgrad[phiflow]'", file=sys.stderr)
    raise SystemExit(2) from None

from physgrad.experiments import compare_methods
from physgrad.interop import phiflow_physics
from physgrad.problems.custom import FunctionProblem
from physgrad.report.figures import render
from physgrad.solvers import LBFGS
from physgrad.training import Physical, Unsupervised

N, BOX, DT, STEPS = 32, Box(x=64, y=64), 1.0, 4  # cells per axis, domain, time step, steps
SCALE = (1.5, 1.5, 0.08)  # parameter x in [-1, 1] means (wx, wy) = x * 1.5, w = x * 0.08


def advect_puff(params):
    """PhiFlow: params (batch, params=(wx, wy, w)) -> CenteredGrid marker after STEPS steps."""
    wx, wy, w = (params.params[k] * s for k, s in zip(("wx", "wy", "w"), SCALE, strict=True))
    def wind(p):  # uniform wind + vortex around the centre (falloff length 12)
        spin = w * math.exp(-math.squared_norm(r := p - (32, 32)) / 288)
        return math.vec(x=wx - spin * r.vector["y"], y=wy + spin * r.vector["x"])
    def puff(p):  # two Gaussian blobs: an asymmetric shape, so that rotation shows
        return math.exp(-math.squared_norm(p - (26, 32)) / 40) + 0.6 * math.exp(
            -math.squared_norm(p - (40, 26)) / 20)
    marker = CenteredGrid(puff, extrapolation.PERIODIC, bounds=BOX, x=N, y=N)
    velocity = CenteredGrid(wind, extrapolation.PERIODIC, bounds=BOX, x=N, y=N)
    for _ in range(STEPS):
        marker = advect.mac_cormack(marker, velocity, DT)
    return marker


physics = phiflow_physics(advect_puff, "params:c=(wx,wy,w)", "y,x")  # (B, 3) -> (B, 32, 32)


def sampler(batch_size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = 2 * torch.rand(batch_size, 3, generator=gen) - 1  # uniform parameters in [-1, 1]
    return x, physics(x) + 0.01 * torch.randn(batch_size, N, N, generator=gen)


def main(smoke: bool = False, out: str | None = None, iterations: int = 150):
    def network() -> torch.nn.Module:  # MLP: (B, 32, 32) final smoke -> (B, 3) parameters
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(N * N, 64),
                                   torch.nn.ReLU(), torch.nn.Linear(64, 3), torch.nn.Tanh())
    problem = FunctionProblem(physics, sampler, name="phiflow_smoke")
    methods = {"Adam": Unsupervised, "Adam + PG (L-BFGS)": lambda: Physical(LBFGS(steps=4))}
    result = compare_methods(problem, network, methods, out or "runs/phiflow" + "-smoke" * smoke,
                             iterations=3 if smoke else iterations, batch_size=16, lr=3e-3)
    render(result)  # curves.png: the comparison carries its figures as data
    print(result.markdown_table(), f"\ncurves: {result.out / 'curves.png'}")
    return result


if __name__ == "__main__":
    main(smoke="--smoke" in sys.argv[1:])
