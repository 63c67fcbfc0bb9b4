"""wavepacket: how often L-BFGS-B from (128, 2) diverges (paper B.1: "0.12% of our cases").

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_wavepacket_divergence.py \\
        --n 10000 --noise 0.1 1.0 --out docs/results/wavepacket-divergence/divergence.json

One :func:`physgrad.experiments.wavepacket.divergence_rate` per noise level (fresh examples,
seed 4321, exact 95% binomial intervals); the JSON holds every count.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from physgrad.experiments.wavepacket import divergence_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=4321)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.1])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    results = []
    for noise in args.noise:
        r = divergence_rate(args.n, args.seed, noise_std=noise)
        results.append(r)
        d = r["diverged"]
        print(f"noise {noise}: diverged {d['count']}/{r['n']} = {100 * d['rate']:.3f}% "
              f"(95% CI {100 * d['low']:.3f}-{100 * d['high']:.3f}%), left grid "
              f"{r['left_grid']['count']}, non-finite {r['nonfinite']['count']}, found "
              f"{100 * r['found']:.1f}%, {r['seconds']:.0f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
