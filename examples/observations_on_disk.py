"""Train from observations stored on disk, without ground truth: fitting spectral lines.

Each observation is a noisy spectrum y* (64 frequencies f in [-1, 1]) of one Lorentzian line
y(f) = A / (1 + ((f - f0) / w)^2) with unknown x = (A, f0, w) (arbitrary units). We write 2048
such spectra to a .pt file in float64 (so the physics and solvers run in float64), then train
an MLP from that file alone: Adam through the physics vs Adam + PG (Gauss-Newton). Only y-space
metrics exist: the file holds no ground truth.
Run: python examples/observations_on_disk.py [--smoke]
"""

import sys
from pathlib import Path

import torch

from physgrad.experiments import compare_methods
from physgrad.problems.custom import ObservationsProblem
from physgrad.report.figures import render
from physgrad.solvers import GaussNewton
from physgrad.training import Physical, Unsupervised

F = torch.linspace(-1, 1, 64, dtype=torch.float64)  # frequencies of the spectrometer


def physics(x: torch.Tensor) -> torch.Tensor:
    """(B, 3) of (A, f0, w) -> (B, 64) spectrum; w enters as |w| + 0.01 (no zero width)."""
    a, f0, w = x[:, :1], x[:, 1:2], x[:, 2:].abs() + 0.01
    return a / (1 + ((F.to(x.dtype) - f0) / w) ** 2)


def write_observations(path: Path, n: int = 2048, seed: int = 0) -> Path:
    """Simulate ``n`` noisy spectra (A in [0.5, 2], f0 in [-0.5, 0.5], w in [0.05, 0.3])."""
    gen = torch.Generator().manual_seed(seed)
    lo, hi = torch.tensor([0.5, -0.5, 0.05]), torch.tensor([2.0, 0.5, 0.3])
    x = (lo + (hi - lo) * torch.rand(n, 3, generator=gen)).double()
    y = physics(x) + 0.01 * torch.randn(n, len(F), generator=gen, dtype=torch.float64)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(y, path)  # only y*: a tensor (N, 64)
    return path


def main(smoke: bool = False, out: str | None = None, iterations: int = 600, seed: int = 0):
    out = Path(out or "runs/observations" + "-smoke" * smoke)
    problem = ObservationsProblem(physics, write_observations(out / "spectra.pt"), name="lines")
    def network():
        layers = [torch.nn.Linear(len(F), 64), torch.nn.ReLU(), torch.nn.Linear(64, 3)]
        return torch.nn.Sequential(*layers)
    methods = {"Adam": Unsupervised,  # PG is clipped: GN steps from far-off guesses can be huge
               "Adam + PG (Gauss-Newton)": lambda: Physical(GaussNewton(damping=1e-3), clip=0.1)}
    result = compare_methods(problem, network, methods, out, iterations=5 if smoke else iterations,
                             batch_size=64, seed=seed)  # no ground truth: y-space metrics only
    print(result.markdown_table(), f"\ncurves: {result.out / 'curves.png'}")
    render(result)  # curves.png: the comparison carries its figures as data
    return result


if __name__ == "__main__":
    main(smoke="--smoke" in sys.argv[1:])
