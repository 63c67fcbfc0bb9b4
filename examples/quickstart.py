"""Physical gradients for your own physics in a plain PyTorch loop.

Infer (amplitude, decay rate) of a decaying signal from 32 noisy-free samples. The decay rate
enters exponentially, so plain backprop through the physics sees badly scaled gradients;
one Gauss-Newton step per iteration gives a scale-aware update direction instead.
Run: python examples/quickstart.py [iterations | --smoke]
"""

import sys

import torch

import physgrad
from physgrad.solvers import GaussNewton

t = torch.linspace(0, 1, 32)


def physics(x):  # your simulator: batched and differentiable, x: (B, 2) -> y: (B, 32)
    return x[:, :1] * torch.exp(-x[:, 1:] * t)


def train(use_pg: bool, iterations: int, seed: int = 0) -> float:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    data = torch.Generator().manual_seed(seed + 1)
    for _ in range(iterations):
        x_true = torch.rand(128, 2, generator=data) * torch.tensor([2.0, 8.0]) + 0.2
        y_obs = physics(x_true)
        x = net(y_obs)
        if use_pg:
            loss = physgrad.physical_gradient_loss(x, y_obs, physics, GaussNewton(damping=1e-4))
        else:
            loss = physgrad.unsupervised_loss(x, y_obs, physics)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (x - x_true).abs().mean().item()  # mean |x - x*| on the last (unseen) batch


if __name__ == "__main__":
    arg = sys.argv[1] if len(sys.argv) > 1 else "1500"
    iterations = 20 if arg == "--smoke" else int(arg) if arg.isdigit() and int(arg) > 0 else 0
    if not iterations:
        print(f"quickstart.py: iterations must be a positive integer or --smoke, got {arg!r}",
              file=sys.stderr)
        sys.exit(2)
    print(f"Adam through physics: mean |x - x*| = {train(False, iterations):.4f}")
    print(f"Adam + PG (GN step):  mean |x - x*| = {train(True, iterations):.4f}")
