"""The wave packet over several training seeds at one noise level: networks vs L-BFGS-B.

Adam and Adam + PG (Gauss-Newton), the two main methods of the experiment, at the default noise
std 0.1 (docs/results/wavepacket-seeds) and at 1.0 (docs/results/wavepacket-noise: the paper's
noise level is illegible in our copy of the text, so BENCHMARKS.md shows how the comparison
moves with it). For each seed this runs

    physgrad --threads 1 compare wavepacket --scale cpu --methods adam,pg-gauss-newton \\
        --set problem.noise_std=SIGMA --seed S --out ROOT/seed<S> --resume --quiet

(1500 iterations at batch 100; the L-BFGS-B baseline on the held-out examples is computed once
and copied into every seed's folder, where the figure hook finds it), then scores every final
network on the same 500 held-out examples (seed 1234) as the baseline and writes
``ROOT/results.json`` (per seed and method: fraction found, objective, ξ0 and A errors, and the
training iteration at which the running mean first beats L-BFGS-B, per metric) and
``ROOT/README.md`` (medians and ranges over seeds; what BENCHMARKS.md quotes).

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/wavepacket_noise_seeds.py \\
        --noise 1.0 --seeds 0,1,2,3,4 --root docs/results/wavepacket-noise

Training folders keep only their small files in git (see the folder's .gitignore).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from physgrad.experiments import get_experiment
from physgrad.experiments.runner import trained_network
from physgrad.experiments.wavepacket import CONVERGED_TOL, diverged, lbfgs_baseline
from physgrad.experiments.wavepacket_figures import BASELINE_FILE, iterations_to_beat
from physgrad.io import write_text
from physgrad.problems.wavepacket import WavePacketProblem
from physgrad.training.trainer import History

METHODS = ("adam", "pg-gauss-newton")
METRICS = ("objective", "xi0_mae", "amp_mae")
HELD_OUT = 500, 1234  # examples, seed: the figure hook's at the cpu scale


def train(root: Path, seed: int, noise: float, scale: str) -> Path:
    folder = root / f"seed{seed}"
    cmd = [sys.executable, "-m", "physgrad", "--threads", "1", "compare", "wavepacket",
           "--scale", scale, "--methods", ",".join(METHODS),
           "--set", f"problem.noise_std={noise}", "--seed", str(seed), "--out", str(folder),
           "--quiet"]
    if (folder / "init.pt").exists():
        cmd.append("--resume")
    subprocess.run(cmd, check=True)
    return folder


def score(folder: Path, noise: float, baseline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per method: the final network's scores on the baseline's examples, and the iteration at
    which the training running mean first beats the baseline (None: never)."""
    problem = WavePacketProblem(noise_std=noise)
    batch = problem.sample(baseline["n"], torch.Generator().manual_seed(baseline["seed"]))
    experiment = get_experiment("wavepacket")
    out = {}
    for method in METHODS:
        with torch.no_grad():
            net = trained_network(experiment, folder / method / "checkpoint.pt")
            x = net(batch.y_target.float()).double()
        metrics = problem.metrics(x, batch)
        history = History.read_csv(folder / method / "metrics.csv")
        out[method] = {
            "found": float((metrics["xi0_mae"] < CONVERGED_TOL).double().mean()),
            "diverged": float(diverged(x).double().mean()),
            **{m: float(metrics[m].mean()) for m in METRICS},
            "beats_lbfgsb_at": {m: iterations_to_beat(history[m], baseline[m]) for m in METRICS},
        }
    return out


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3g} [{min(values):.3g}, {max(values):.3g}]"


def iterations(values: list[int | None]) -> str:
    return ", ".join("never" if v is None else str(v) for v in values)


def readme(results: dict[str, Any]) -> str:
    base, seeds = results["lbfgsb"], results["seeds"]
    rows = [f"| L-BFGS-B (scipy, from (128, 2)) | {100 * base['converged']:.1f}% | "
            f"{base['objective']:.3g} | {base['xi0_mae']:.3g} | {base['amp_mae']:.3g} | – | – |"]
    for method in METHODS:
        per = [results["runs"][str(s)][method] for s in seeds]
        cells = [spread([100 * p["found"] for p in per]) + "%",
                 *(spread([p[m] for p in per]) for m in METRICS),
                 iterations([p["beats_lbfgsb_at"]["objective"] for p in per]),
                 iterations([p["beats_lbfgsb_at"]["xi0_mae"] for p in per])]
        rows.append(f"| {method} | " + " | ".join(cells) + " |")
    return (
        f"# wavepacket at noise std {results['noise_std']:g}, {len(seeds)} training seeds\n\n"
        "Made by `OMP_NUM_THREADS=1 python benchmarks/wavepacket_noise_seeds.py --noise "
        f"{results['noise_std']:g} --scale {results['scale']} --seeds "
        f"{','.join(map(str, seeds))} --root <this folder>`: "
        f"`physgrad compare wavepacket --scale {results['scale']}` per seed (cpu: 1500 "
        "iterations at batch 100), every "
        f"final network scored on the baseline's {base['n']} held-out examples (seed "
        f"{base['seed']}). Networks: median [min, max] over seeds; the last two columns are per "
        "seed (training iteration at which the running mean first beats L-BFGS-B's mean "
        "objective / ξ0 error). Raw data: `results.json`.\n\n"
        f"| fit | found (\\|ξ0 − ξ0*\\| < {CONVERGED_TOL:g}) | objective | ξ0 MAE | A MAE | "
        "beats L-BFGS-B's objective at | beats its ξ0 MAE at |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(rows) + "\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", type=float, default=1.0)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--root", type=Path, default=Path("docs/results/wavepacket-noise"))
    parser.add_argument("--scale", default="cpu", help="training scale (smoke: a quick check)")
    parser.add_argument("--examples", type=int, default=HELD_OUT[0],
                        help="held-out examples of the L-BFGS-B baseline and the scores")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    args.root.mkdir(parents=True, exist_ok=True)
    cache = args.root / BASELINE_FILE
    if not cache.exists():
        write_text(cache, json.dumps(lbfgs_baseline(args.examples, HELD_OUT[1], solver="scipy",
                                                    noise_std=args.noise)))
    baseline = json.loads(cache.read_text())
    if (baseline["noise_std"], baseline["n"]) != (args.noise, args.examples):
        raise SystemExit(f"{cache} was made at noise {baseline['noise_std']} with "
                         f"{baseline['n']} examples, not {args.noise} and {args.examples}")
    runs = {}
    for seed in seeds:
        folder = args.root / f"seed{seed}"
        folder.mkdir(exist_ok=True)
        shutil.copyfile(cache, folder / BASELINE_FILE)
        train(args.root, seed, args.noise, args.scale)
        runs[str(seed)] = score(folder, args.noise, baseline)
        print(f"seed {seed}: {runs[str(seed)]}", flush=True)
    results = {"noise_std": args.noise, "scale": args.scale, "seeds": seeds, "lbfgsb": {
        k: baseline[k] for k in ("n", "seed", "converged", "diverged", *METRICS)}, "runs": runs}
    write_text(args.root / "results.json", json.dumps(results, indent=1))
    write_text(args.root / "README.md", readme(results))
    print(readme(results))


if __name__ == "__main__":
    main()
