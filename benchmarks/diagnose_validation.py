"""``physgrad.diagnose`` on the built-in experiments, the examples and three user-style problems.

Writes ``<out>/validation.md`` (one row per problem: the measurements and the verdict) and
``<out>/validation.json`` (every field). docs/own-physics.md puts the verdicts next to the
measured comparisons (BENCHMARKS.md, docs/results).

    OMP_NUM_THREADS=1 python benchmarks/diagnose_validation.py --out docs/results/diagnose
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

import physgrad
from physgrad.experiments import get_experiment
from physgrad.problems import FunctionProblem, ObservationsProblem

ROOT = Path(__file__).resolve().parents[1]


def badly_scaled() -> FunctionProblem:
    """``(a, b) -> (10a + a³, 0.01 b³ + a)`` (benchmarks/bench_units.py)."""

    def physics(x):
        a, b = x[:, 0], x[:, 1]
        return torch.stack([10 * a + a**3, 1e-2 * b**3 + a], dim=1)

    def sampler(n, gen):
        x = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 1.5 + 0.25
        return x, physics(x)

    return FunctionProblem(physics, sampler, name="badly-scaled", dtype=torch.float64)


def robot_arm() -> FunctionProblem:
    """Planar 3-link arm (links 1, 0.8, 0.5): joint angles -> hand position and orientation.
    Bending the elbow the other way reaches the same pose: two exact solutions."""
    lengths = (1.0, 0.8, 0.5)

    def physics(q):
        ang = torch.cumsum(q, dim=1)
        px = sum(ln * torch.cos(ang[:, i]) for i, ln in enumerate(lengths))
        py = sum(ln * torch.sin(ang[:, i]) for i, ln in enumerate(lengths))
        return torch.stack([px, py, ang[:, 2]], dim=1)

    def sampler(n, gen):
        q = (torch.rand(n, 3, generator=gen, dtype=torch.float64) - 0.5) * 2.0
        return q, physics(q)

    return FunctionProblem(physics, sampler, name="robot-arm", dtype=torch.float64)


def oscillator_chain() -> FunctionProblem:
    """Three masses joined by cubic springs (k x + x³), RK2, 100 steps of 0.1: spring
    stiffnesses -> the masses' positions over time. Oscillating signals: local minima."""

    def physics(k):
        pos = torch.stack([torch.ones_like(k[:, 0]), torch.zeros_like(k[:, 0]),
                           -torch.ones_like(k[:, 0])], dim=1)
        vel = torch.zeros_like(pos)

        def acc(p):
            ext = torch.cat([p[:, :1], p[:, 1:] - p[:, :-1]], dim=1)  # wall-mass, mass-mass
            force = k * ext + ext**3
            return -force + torch.cat([force[:, 1:], torch.zeros_like(force[:, :1])], dim=1)

        out = []
        for _ in range(100):
            p_half = pos + 0.05 * vel
            v_half = vel + 0.05 * acc(pos)
            pos, vel = pos + 0.1 * v_half, vel + 0.1 * acc(p_half)
            out.append(pos)
        return torch.cat(out, dim=1)

    def sampler(n, gen):
        k = torch.rand(n, 3, generator=gen, dtype=torch.float64) * 8 + 1
        return k, physics(k)

    return FunctionProblem(physics, sampler, name="oscillator-chain", dtype=torch.float64)


def load_example(name: str):
    """The module ``examples/<name>.py`` (the examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"_ex_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def cases(tmp: Path) -> dict[str, tuple]:
    """name -> (problem, x or None, note)."""
    out = {}
    for name in ("heat", "poisson", "wavepacket", "exp"):
        out[name] = (get_experiment(name).problem(), None, "")
    sine = get_experiment("sine").problem()
    batch = sine.sample(8, torch.Generator().manual_seed(0))
    x = torch.rand(8, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.1
    out["sine"] = (sine, x, "no ground truth (many x solve sin(a/x) = -1): x ~ U[0.1, 1.1) "
                   "with targets sin(a/x)")
    del batch
    pend = load_example("pendulum")
    out["pendulum (example)"] = (
        FunctionProblem(pend.physics, pend.sampler, name="pendulum", dtype=torch.float64),
        None, "")
    burg = load_example("burgers")
    out["burgers (example)"] = (FunctionProblem(burg.physics, burg.sampler, name="burgers"),
                                None, "")
    obs = load_example("observations_on_disk")
    lo, hi = torch.tensor([0.5, -0.5, 0.05]), torch.tensor([2.0, 0.5, 0.3])
    x = (lo + (hi - lo) * torch.rand(8, 3, generator=torch.Generator().manual_seed(1))).double()
    out["observations (example)"] = (
        ObservationsProblem(obs.physics, obs.write_observations(tmp / "spectra.pt")), x,
        "no ground truth: x drawn as the example draws it, targets noise-free")
    out["badly-scaled map"] = (badly_scaled(), None, "")
    out["robot arm"] = (robot_arm(), None, "")
    out["oscillator chain"] = (oscillator_chain(), None, "")
    return out


def _f(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return f"{v:.3g}"


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.0f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/diagnose-validation"))
    parser.add_argument("--only", help="comma-separated case names")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows, full = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (problem, x, note) in cases(Path(tmp)).items():
            if args.only and name not in args.only.split(","):
                continue
            start = time.process_time()
            d = physgrad.diagnose(problem, x, samples=8)
            cpu = time.process_time() - start
            full[name] = {**d.to_dict(), "cpu_s": cpu, "note": note}
            ge = "≥" if d.condition_is_lower_bound else ""
            rows.append(
                f"| {name} | {d.x_size} | {ge}{_f(d.condition_median)} | "
                f"{_f(d.sensitivity_spread)} | {_f(d.across_samples_spread)} | "
                f"{_pct(d.found_x)} / {_pct(d.other_solution)} / {_pct(d.flat_valley)} / "
                f"{_pct(d.local_minimum)} / {_pct(d.not_converged)} | {d.verdict} | "
                f"{', '.join(d.methods)} | {cpu:.1f} |"
            )
            print(rows[-1], flush=True)
    header = (
        "| problem | unknowns | condition number (median) | sensitivity spread | across "
        "samples | starts: back to x / other minimum / flat valley / local minimum / not "
        "converged | verdict | compare first | CPU s |\n|---|---|---|---|---|---|---|---|---|"
    )
    table = header + "\n" + "\n".join(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "validation.md").write_text(
        "# physgrad.diagnose on built-in experiments, examples and user-style problems\n\n"
        "`OMP_NUM_THREADS=1 python benchmarks/diagnose_validation.py --out "
        "docs/results/diagnose` (8 samples each, 3 starts per sample, seed 0).\n\n"
        + table + "\n"
    )
    (args.out / "validation.json").write_text(json.dumps(full, indent=2, default=str))
    print(table)


if __name__ == "__main__":
    main()
