"""Time per training iteration against the network bound, every training experiment.

For each experiment (batch: its ``long`` scale's if it has one, else its ``cpu`` scale's; one
thread), interleaved in one process (round-robin blocks, so load changes hit every variant
alike), CPU time per step of:

- ``network step``: the experiment's network alone, forward + MSE to random data +
  backward + Adam on the network input of a real batch: the network bound;
- for U-Net experiments also ``plain torch step``: the same U-Net shape written the
  straightforward way (``ReferenceUNet`` of ``benchmarks/reference_unet.py``: ``nn.Conv2d`` with
  torch's circular or zero padding, BatchNorm, bilinear upsampling, default memory format);
- every default method's full training iteration (``Trainer.step``: data, network, physics,
  solver, backward, Adam, finiteness checks, metrics); for U-Net experiments with physgrad's
  UNet (``after``) and with the plain network swapped in (``before``: before issue 12).

Ratios are to the plain torch step where there is one, else to the network step. Fluid has
its own benchmark (benchmarks/bench_fluid_iteration.py).

    OMP_NUM_THREADS=1 python benchmarks/bench_step.py [--experiments heat,poisson] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from reference_unet import ReferenceUNet

from physgrad.experiments import get_experiment
from physgrad.nets import UNet
from physgrad.nets.adapters import network_input
from physgrad.training import Trainer


def _plain_twin(net: torch.nn.Module) -> ReferenceUNet:
    twin = ReferenceUNet(
        net.in_channels, net.out_channels, net.levels, net.filters, net.padding_mode
    )
    twin.load_state_dict(net.state_dict())
    return twin


def _network_step(net: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    with torch.no_grad():
        target = torch.randn_like(net(x))

    def step() -> None:
        loss = torch.nn.functional.mse_loss(net(x), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def variants(name: str) -> tuple[int, dict[str, Callable[[], None]]]:
    exp = get_experiment(name)
    batch = exp.scales.get("long", exp.scales["cpu"]).batch_size
    problem = exp.problem()
    sample = problem.sample(batch, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    net = exp.network()
    x = network_input(net, sample)
    unet = isinstance(net, UNet)
    out = {}
    if unet:
        out["plain torch step"] = _network_step(_plain_twin(net), x)
    out["network step"] = _network_step(net, x)
    for method in exp.default_methods:
        spec = exp.methods[method]
        if unet:
            networks = {"before": _plain_twin(exp.network()), "after": exp.network()}
        else:
            networks = {"": exp.network()}
        for label, network in networks.items():
            trainer = Trainer(problem, network, spec.method(), spec.optimizer,
                              batch_size=batch, progress=False)
            out[f"{method} iteration" + (f" ({label})" if label else "")] = trainer.step
    return batch, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--experiments", default="heat,poisson,sine,wavepacket,exp")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{args.rounds} rounds x {args.steps} steps, CPU time (process_time), median block\n")
    print("| experiment | batch | variant | ms / step | ratio |")
    print("|---|---|---|---|---|")
    for name in args.experiments.split(","):
        batch, steps = variants(name)
        for fn in steps.values():
            fn()  # warm-up
        blocks: dict[str, list[float]] = {k: [] for k in steps}
        for _ in range(args.rounds):
            for key, fn in steps.items():
                t0 = time.process_time()
                for _ in range(args.steps):
                    fn()
                blocks[key].append((time.process_time() - t0) / args.steps)
        ref = statistics.median(blocks[next(iter(blocks))])
        for key, times in blocks.items():
            med = statistics.median(times)
            print(f"| {name} | {batch} | {key} | {1e3 * med:.2f} | {med / ref:.2f} |", flush=True)


if __name__ == "__main__":
    main()
