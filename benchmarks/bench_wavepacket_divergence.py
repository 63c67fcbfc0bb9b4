"""wavepacket: how often L-BFGS-B from (128, 2) diverges (paper B.1: "0.12% of our cases").

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_wavepacket_divergence.py \\
        --n 10000 --noise 0.1 1.0 --out docs/results/wavepacket-divergence/divergence.json

One :func:`divergence_rate` per noise level (fresh examples, seed 4321, exact 95% binomial
intervals); the JSON holds every count. The closed-form fit and the rate live here because only
this study (and its test, tests/test_paper_figures.py) uses them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from physgrad._validation import check_positive_int, check_tensor
from physgrad.experiments.wavepacket import CONVERGED_TOL, diverged
from physgrad.problems.wavepacket import NOISE_STD, WavePacketProblem
from physgrad.solvers import ScipyLBFGSB


def fit_lbfgsb_closed_form(
    y_target: torch.Tensor, *, steps: int = 1000, problem: WavePacketProblem | None = None
) -> torch.Tensor:
    """:func:`physgrad.experiments.wavepacket.fit_lbfgs` with ``solver="scipy"``, but the
    objective and its gradient in closed form (numpy) instead of torch autograd: the same scipy
    L-BFGS-B with the same options (:class:`~physgrad.solvers.ScipyLBFGSB` defaults), about 10x
    cheaper per example, so that rates of rare events (divergence) can be measured on 10⁴
    examples.

    ``L = ½ Σ r²`` with ``r = A sin(fξ) e(ξ) − y*``, ``e = exp(−½ (ξ − ξ0)² / σ²)``;
    ``∂L/∂A = Σ r sin(fξ) e``, ``∂L/∂ξ0 = Σ r A sin(fξ) e (ξ − ξ0) / σ²``.

    Args:
        y_target: noisy series ``(B, length)``.
        steps: maximum L-BFGS-B iterations per example.
        problem: the physics (default :class:`WavePacketProblem`).

    Returns:
        ``(B, 2)`` float64 fits ``(ξ0, A)``.
    """
    import scipy.optimize

    check_tensor("y_target", y_target, min_dim=2)
    check_positive_int("steps", steps)
    problem = problem or WavePacketProblem()
    y_all = y_target.detach().to("cpu", torch.float64).numpy()
    if y_all.ndim != 2 or y_all.shape[1] != problem.length:
        raise ValueError(
            f"y_target must have shape (B, {problem.length}), got {tuple(y_target.shape)}"
        )
    reference = ScipyLBFGSB(steps=steps)
    options = {"maxiter": steps, "maxcor": reference.history, "ftol": reference.ftol,
               "gtol": reference.gtol}
    xi = np.arange(problem.length, dtype=np.float64)
    carrier = np.sin(problem.frequency * xi)
    inv_var = 1.0 / problem.sigma**2
    x0 = problem.initial_guess(1)[0].numpy()
    out = np.empty((len(y_all), 2))
    for b, y in enumerate(y_all):  # scipy is serial: one example at a time

        def fun(x: np.ndarray, y: np.ndarray = y) -> tuple[float, np.ndarray]:
            d = xi - x[0]
            shape = carrier * np.exp(-0.5 * inv_var * d * d)
            r = x[1] * shape - y
            grad = np.array([x[1] * inv_var * np.dot(r, shape * d), np.dot(r, shape)])
            return 0.5 * float(np.dot(r, r)), grad

        result = scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B", options=options)
        out[b] = result.x
    return torch.from_numpy(out)


def divergence_rate(
    n: int = 10_000,
    seed: int = 4321,
    *,
    noise_std: float = NOISE_STD,
    steps: int = 1000,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """How often L-BFGS-B from the paper's guess ``(128, 2)`` diverges (paper: "0.12% of our
    cases"), on ``n`` fresh examples, with an exact (Clopper-Pearson) binomial interval.

    Fits with :func:`fit_lbfgsb_closed_form`. Counted under three definitions, since the paper
    does not define divergence: ``diverged``
    (:func:`~physgrad.experiments.wavepacket.diverged`: non-finite, ``ξ0`` more than one series
    length outside the grid or ``|A| > 100``), ``left_grid`` (``ξ0`` outside
    ``[0, length)``, the packet's centre not on the data) and ``nonfinite``.

    Args:
        n: examples (>= 1); about 10 ms each on one core.
        seed: data seed (``WavePacketProblem(noise_std).sample(n, Generator(seed))``).
        noise_std: noise standard deviation of the data.
        steps: maximum L-BFGS-B iterations per example.
        confidence: two-sided level of the intervals, in (0, 1).

    Returns:
        JSON-serialisable: the settings, ``seconds``, ``found`` (fraction with
        ``|ξ0 − ξ0*| <`` :data:`CONVERGED_TOL`) and, per definition, ``{"count", "rate", "low",
        "high"}`` (rates as fractions).
    """
    from scipy.stats import beta

    check_positive_int("n", n)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    problem = WavePacketProblem(noise_std=noise_std)
    batch = problem.sample(n, torch.Generator().manual_seed(int(seed)))
    start = time.perf_counter()
    x = fit_lbfgsb_closed_form(batch.y_target, steps=steps, problem=problem)
    seconds = time.perf_counter() - start
    xi0 = x[:, 0]
    masks = {
        "diverged": diverged(x),
        "left_grid": ~torch.isfinite(xi0) | (xi0 < 0) | (xi0 >= problem.length),
        "nonfinite": ~torch.isfinite(x).all(dim=1),
    }
    alpha = 1.0 - confidence

    def interval(k: int) -> dict[str, float]:
        low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
        high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
        return {"count": k, "rate": k / n, "low": low, "high": high}

    found = (xi0 - batch.x_true[:, 0]).abs() < CONVERGED_TOL
    return {
        "n": n,
        "seed": int(seed),
        "noise_std": problem.noise_std,
        "steps": steps,
        "confidence": confidence,
        "seconds": seconds,
        "found": float(found.double().mean()),
        **{name: interval(int(mask.sum())) for name, mask in masks.items()},
    }


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
