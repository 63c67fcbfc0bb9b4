"""Time per training iteration against the network bound (issue 12), heat and Poisson.

For each experiment at batch ``--batch`` (default 32, one thread), interleaved in one
process (round-robin blocks, so load changes hit every variant alike), CPU time per step of:

- ``plain torch step``: the same U-Net shape written the straightforward way
  (:class:`physgrad.nets.reference.ReferenceUNet`: ``nn.Conv2d`` with torch's circular or
  zero padding, BatchNorm, bilinear upsampling, default memory format), forward + MSE +
  backward + Adam on random data: the yardstick;
- ``UNet step``: physgrad's :class:`~physgrad.nets.UNet` doing exactly the same;
- every method's full training iteration (``Trainer.step``: data, network, physics, solver,
  backward, Adam, finiteness checks, metrics) with physgrad's UNet (``after``) and with the
  plain network swapped in (``before``: what an iteration cost before issue 12).

Ratios are to the plain torch step.

    OMP_NUM_THREADS=1 python benchmarks/bench_step.py [--batch 32] [--rounds 7] [--steps 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from physgrad.experiments import get_experiment
from physgrad.nets.reference import ReferenceUNet
from physgrad.training import Trainer


def _plain_twin(net: torch.nn.Module) -> ReferenceUNet:
    twin = ReferenceUNet(
        net.in_channels, net.out_channels, net.levels, net.filters, net.padding_mode
    )
    twin.load_state_dict(net.state_dict())
    return twin


def _network_step(net: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    target = torch.randn_like(x[:, :1])

    def step() -> None:
        loss = torch.nn.functional.mse_loss(net(x), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def variants(name: str, batch: int) -> dict[str, Callable[[], None]]:
    exp = get_experiment(name)
    problem = exp.problem()
    sample = problem.sample(batch, torch.Generator().manual_seed(0))
    x = problem.network_input(sample)
    torch.manual_seed(0)
    net = exp.network()
    out = {
        "plain torch step": _network_step(_plain_twin(net), x),
        "UNet step": _network_step(net, x),
    }
    for method in exp.default_methods:
        spec = exp.methods[method]
        for label, network in (("before", _plain_twin(exp.network())), ("after", exp.network())):
            trainer = Trainer(problem, network, spec.method(), spec.optimizer,
                              batch_size=batch, progress=False)
            out[f"{method} iteration ({label})"] = trainer.step
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--experiments", default="heat,poisson")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch}, "
          f"{args.rounds} rounds x {args.steps} steps, CPU time (process_time), median block\n")
    print("| experiment | variant | ms / step | ratio to plain torch step |")
    print("|---|---|---|---|")
    for name in args.experiments.split(","):
        steps = variants(name, args.batch)
        for fn in steps.values():
            fn()  # warm-up
        blocks: dict[str, list[float]] = {k: [] for k in steps}
        for _ in range(args.rounds):
            for key, fn in steps.items():
                t0 = time.process_time()
                for _ in range(args.steps):
                    fn()
                blocks[key].append((time.process_time() - t0) / args.steps)
        ref = statistics.median(blocks["plain torch step"])
        for key, times in blocks.items():
            med = statistics.median(times)
            print(f"| {name} | {key} | {1e3 * med:.1f} | {med / ref:.2f} |", flush=True)


if __name__ == "__main__":
    main()
