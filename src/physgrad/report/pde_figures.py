"""Example reconstructions of trained networks (paper Fig. 11 / 12) and test-batch metrics.

After ``physgrad compare poisson --out runs/poisson`` (or ``heat``), each method folder holds a
``checkpoint.pt``; :func:`reconstruction_figure` loads every method's final network, predicts a
fixed test batch (seed 999999 by default, the authors' Poisson plot seed) and draws, per
example, ``y*``, each method's simulated observation ``P(x)``, each method's prediction ``x``
and the ground truth ``x*``. :func:`evaluate_checkpoints` evaluates the same networks on a
larger test batch. Command line::

    python -m physgrad.report.pde_figures poisson runs/poisson   # writes reconstructions.png,
                                                                 # test_metrics.md there
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from physgrad.core import run_physics
from physgrad.experiments.base import Experiment
from physgrad.experiments.runner import trained_network
from physgrad.io import atomic_write, write_text
from physgrad.problems.base import Batch, Problem
from physgrad.table import Table

TEST_SEED = 999_999
"""Test-batch seed of the authors' Poisson reconstruction plot."""


def trained_methods(experiment: Experiment, comparison_dir: Path | str) -> list[str]:
    """Methods of ``experiment`` with a ``checkpoint.pt`` in ``comparison_dir``, in the
    experiment's method order."""
    root = Path(comparison_dir)
    return [m for m in experiment.methods if (root / m / "checkpoint.pt").exists()]


def predict(
    problem: Problem,
    network: torch.nn.Module,
    batch: Batch,
    chunk: int = 32,
) -> torch.Tensor:
    """Network prediction ``x`` ``(B, *x_shape)`` for a batch, without gradients, in chunks
    of ``chunk`` samples (batch norm in eval mode, so chunking does not change the result)."""
    outs = []
    with torch.no_grad():
        for start in range(0, len(batch), chunk):
            sub = _slice(batch, slice(start, start + chunk))
            outs.append(network(sub))
    return torch.cat(outs)


def evaluate_checkpoints(
    experiment: Experiment,
    comparison_dir: Path | str,
    *,
    seed: int = TEST_SEED,
    batch_size: int = 128,
    clamp_min: float | None = None,
) -> dict[str, dict[str, float]]:
    """Mean per-sample metrics of each trained method on one test batch.

    Args:
        experiment: a training experiment (``poisson``, ``heat``).
        comparison_dir: folder written by :func:`~physgrad.experiments.runner.compare`.
        seed: test-batch seed (data generator).
        batch_size: test samples.
        clamp_min: if given, predictions are clamped to ``>= clamp_min`` before evaluation
            (the authors' heat evaluation clamps to 0: heat sources are non-negative).

    Returns:
        ``{method: {"x_l1": ..., "y_l1": ..., "y_l2": ..., "objective": ...}}`` (sums over
        cells, means over the test batch).
    """
    problem = experiment.problem()
    batch = problem.sample(batch_size, torch.Generator().manual_seed(seed))
    out: dict[str, dict[str, float]] = {}
    for method in trained_methods(experiment, comparison_dir):
        net = trained_network(experiment, Path(comparison_dir) / method / "checkpoint.pt")
        x = predict(problem, net, batch)
        if clamp_min is not None:
            x = x.clamp_min(clamp_min)
        out[method] = {k: float(v.mean()) for k, v in problem.metrics(x, batch).items()}
    return out


def reconstruction_figure(
    experiment: Experiment,
    comparison_dir: Path | str,
    out_path: Path | str | None = None,
    *,
    seed: int = TEST_SEED,
    examples: Sequence[int] = (0, 1, 2),
    methods: Sequence[str] | None = None,
) -> Path:
    """Fig. 11 / 12 style grid: one row per example, columns ``y*``, ``P(x)`` per method,
    ``x`` per method, ``x*``.

    All ``y`` panels of a row share the colour scale of ``y*`` and all ``x`` panels that of
    ``x*`` (values outside saturate), each with a colour bar; every prediction panel is titled
    with its ``‖x − x*‖₁`` or ``‖P(x) − y*‖₁`` (sums over cells).

    Args:
        experiment: a training experiment whose ``problem`` produces 2-D fields.
        comparison_dir: folder with ``<method>/checkpoint.pt`` (from ``compare``).
        out_path: PNG path (default ``comparison_dir/reconstructions.png``).
        seed: test-batch seed.
        examples: which samples of the test batch to show (rows).
        methods: methods to show (default: every method with a checkpoint).

    Returns:
        The PNG path.
    """
    root = Path(comparison_dir)
    methods = list(methods) if methods is not None else trained_methods(experiment, root)
    if not methods:
        raise ValueError(f"no trained methods (checkpoint.pt) found in {str(root)!r}")
    examples = list(examples)
    problem = experiment.problem()
    batch = problem.sample(max(examples) + 1, torch.Generator().manual_seed(seed))
    physics = problem.physics(batch)
    preds: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for method in methods:
        net = trained_network(experiment, root / method / "checkpoint.pt")
        x = predict(problem, net, batch)
        with torch.no_grad():
            y = run_physics(x, batch.y_target, physics)
        preds[method] = (_np(x), _np(y))
    y_true, x_true = _np(batch.y_target), _np(batch.x_true)  # type: ignore[arg-type]
    labels = {m: experiment.methods[m].label for m in methods}

    ncols = 2 + 2 * len(methods)
    fig = Figure(figsize=(2.35 * ncols, 2.35 * len(examples) + 0.6), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(examples), ncols, squeeze=False)
    for row, b in enumerate(examples):
        y_panels = [("$y^*$", y_true[b], None)] + [
            (f"{labels[m]}\n$P(x)$", preds[m][1][b], np.abs(preds[m][1][b] - y_true[b]).sum())
            for m in methods
        ]
        x_panels = [
            (f"{labels[m]}\n$x$", preds[m][0][b], np.abs(preds[m][0][b] - x_true[b]).sum())
            for m in methods
        ] + [("$x^*$ (ground truth)", x_true[b], None)]
        for group, err_name, offset in ((y_panels, "y", 0), (x_panels, "x", 1 + len(methods))):
            truth = group[0][1] if err_name == "y" else group[-1][1]
            lo, hi = float(truth.min()), float(truth.max())  # the truth's range; errors clip
            image = None
            for j, (title, field, err) in enumerate(group):
                ax = axes[row, offset + j]
                image = ax.imshow(field.T, origin="lower", cmap="viridis", vmin=lo, vmax=hi)
                full = title if err is None else f"{title}\n$L_1$ err {err:.3g}"
                ax.set_title(full if row == 0 else full.split("\n", 1)[-1], fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
                if j == 0:
                    ax.set_ylabel(f"test sample {b}", fontsize=8)
            fig.colorbar(image, ax=axes[row, offset : offset + len(group)].tolist(),
                         shrink=0.8, pad=0.01, label=err_name)
    iters = _iterations(root, methods)
    fig.suptitle(
        f"{experiment.name}: test batch seed {seed}; networks after {iters} training "
        f"iterations ({root.name})",
        fontsize=10,
    )
    path = Path(out_path) if out_path is not None else root / "reconstructions.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    return path


SOLVERS = ("GD", "L-BFGS-B", "Inverse")
"""Single-problem solvers shown next to the networks in :func:`solver_comparison_figure`."""


def single_problem_solutions(
    experiment: Experiment, batch: Batch, n_iter: int = 100
) -> dict[str, torch.Tensor]:
    """``x`` reached by each of :data:`SOLVERS` after ``n_iter`` iterations from ``x0 = 0``
    on ``batch``, with the settings of the experiment's single-problem figure (Fig. 4b / 5b)
    and the (configured) experiment's physics.

    Returns:
        ``{solver: x}``, each ``(B, *x_shape)`` float64.
    """
    from physgrad.experiments.heat import heat_single_problem
    from physgrad.experiments.poisson import poisson_single_problem

    single = {"heat": heat_single_problem, "poisson": poisson_single_problem}
    if experiment.name not in single:
        raise ValueError(f"no single-problem solvers for experiment {experiment.name!r}; "
                         f"known: {sorted(single)}")
    curves = single[experiment.name](n_iter, batch=batch, problem=experiment.problem())
    return {name: curves.final[name] for name in SOLVERS}


def solver_comparison_figure(
    experiment: Experiment,
    comparison_dir: Path | str,
    out_path: Path | str | None = None,
    *,
    seed: int = TEST_SEED,
    examples: Sequence[int] = (0, 1),
    n_iter: int = 100,
    methods: Sequence[str] | None = None,
) -> Path:
    """Paper Fig. 12 (top) / Fig. 11 layout: per test example a row of observations ``y`` and
    a row of solutions ``x``; columns: ground truth, the single-problem solvers GD, L-BFGS-B
    and the inverse solver (``n_iter`` iterations each from ``x0 = 0``), then every trained
    network in ``comparison_dir``.

    The ``y`` row shares the colour scale of ``y*``, the ``x`` row that of ``x*``; each panel
    is titled with its ``L1`` error (sum over cells); the errors are also written next to the
    PNG as ``<stem>.md``.

    Args:
        experiment: ``heat`` or ``poisson`` (the configured one).
        comparison_dir: folder with ``<method>/checkpoint.pt`` (from ``compare``).
        out_path: PNG path (default ``comparison_dir/solvers_vs_networks.png``).
        seed: test-batch seed.
        examples: which samples of the test batch to show.
        n_iter: iterations of each single-problem solver (paper: 100).
        methods: networks to show (default: every method with a checkpoint).

    Returns:
        The PNG path.
    """
    root = Path(comparison_dir)
    methods = list(methods) if methods is not None else trained_methods(experiment, root)
    if not methods:
        raise ValueError(f"no trained methods (checkpoint.pt) found in {str(root)!r}")
    examples = list(examples)
    problem = experiment.problem()
    full = problem.sample(max(examples) + 1, torch.Generator().manual_seed(seed))
    batch = _pick(full, examples)
    physics = problem.physics(batch)
    xs: dict[str, torch.Tensor] = {}
    for name, x in single_problem_solutions(experiment, batch, n_iter).items():
        xs[f"{name}\n({n_iter} it., $x_0 = 0$)"] = x
    for method in methods:
        net = trained_network(experiment, root / method / "checkpoint.pt")
        xs[f"network:\n{experiment.methods[method].label}"] = predict(problem, net, batch)
    columns = {}
    with torch.no_grad():
        for label, x in xs.items():
            x = x.to(batch.y_target.dtype)
            columns[label] = (_np(x), _np(run_physics(x, batch.y_target, physics)))
    y_true, x_true = _np(batch.y_target), _np(batch.x_true)  # type: ignore[arg-type]

    ncols = 1 + len(columns)
    fig = Figure(figsize=(2.2 * ncols + 0.8, 2.35 * 2 * len(examples) + 0.6),
                 constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2 * len(examples), ncols, squeeze=False)
    for i, b in enumerate(examples):
        for r, (kind, truth, index) in enumerate((("y", y_true[i], 1), ("x", x_true[i], 0))):
            row = axes[2 * i + r]
            lo, hi = float(truth.min()), float(truth.max())
            panels = [(f"${kind}^*$ (ground truth)", truth, None)] + [
                (label, col[index][i], np.abs(col[index][i] - truth).sum())
                for label, col in columns.items()
            ]
            image = None
            for ax, (title, field, err) in zip(row, panels, strict=True):
                image = ax.imshow(field.T, origin="lower", cmap="viridis", vmin=lo, vmax=hi)
                if err is None:
                    text = title
                elif 2 * i + r == 0:  # method names once, on the first row
                    text = f"{title}\n$L_1$ err {err:.3g}"
                else:
                    text = f"$L_1$ err {err:.3g}"
                ax.set_title(text, fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
            row[0].set_ylabel(f"test sample {b}: {kind}", fontsize=8)
            fig.colorbar(image, ax=row.tolist(), shrink=0.8, pad=0.01, label=kind)
    fig.suptitle(
        f"{experiment.name}: single-problem solvers vs networks (as paper Fig. 12); test "
        f"batch seed {seed}; networks after "
        f"{_iterations(root, methods)} training iterations ({root.name})",
        fontsize=10,
    )
    path = Path(out_path) if out_path is not None else root / "solvers_vs_networks.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_palette_png(fig, path, dpi=68)
    lines = [f"# {experiment.name}: L1 errors of {path.name} (test batch seed {seed})", "",
             "| column | " + " | ".join(f"x_l1 #{b} | y_l1 #{b}" for b in examples) + " |",
             "|---|" + "---|---|" * len(examples)]
    for label, (x, y) in columns.items():
        cells = [f"{np.abs(x[i] - x_true[i]).sum():.4g} | {np.abs(y[i] - y_true[i]).sum():.4g}"
                 for i in range(len(examples))]
        plain = label.replace("\n", " ").replace("$x_0 = 0$", "x0 = 0")
        lines.append(f"| {plain} | " + " | ".join(cells) + " |")
    write_text(path.with_suffix(".md"), "\n".join(lines) + "\n")
    return path


def _save_palette_png(fig: Figure, path: Path, dpi: int) -> None:
    """Save as a 128-colour PNG: noisy fields compress badly in RGB (3x larger files), and
    viridis panels plus text need no more colours."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    buffer.seek(0)
    image = Image.open(buffer).convert("RGB").quantize(colors=128)
    atomic_write(path, lambda tmp: image.save(tmp, format="png", optimize=True))


def metrics_table(metrics: dict[str, dict[str, float]], names: Sequence[str]) -> str:
    """Markdown table of :func:`evaluate_checkpoints` output (one row per method)."""
    rows = [[method, *(f"{values[n]:.4g}" for n in names)] for method, values in metrics.items()]
    return Table(["method", *names], rows).markdown()


def main(argv: list[str] | None = None) -> int:
    """``python -m physgrad.report.pde_figures EXPERIMENT COMPARISON_DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", choices=("poisson", "heat"))
    parser.add_argument("comparison_dir", type=Path)
    parser.add_argument("--seed", type=int, default=TEST_SEED, help="test-batch seed")
    parser.add_argument("--test-batch", type=int, default=128, help="test samples")
    args = parser.parse_args(argv)
    from physgrad.experiments.heat import HEAT
    from physgrad.experiments.poisson import POISSON

    exp = {"heat": HEAT, "poisson": POISSON}[args.experiment]
    fig = reconstruction_figure(exp, args.comparison_dir, seed=args.seed)
    names = ["x_l1", "y_l1", "y_l2"]
    sections = [f"# {exp.name}: test batch (seed {args.seed}, {args.test_batch} samples)\n"]
    metrics = evaluate_checkpoints(
        exp, args.comparison_dir, seed=args.seed, batch_size=args.test_batch
    )
    sections.append(metrics_table(metrics, names))
    if exp.name == "heat":  # the authors' heat evaluation: seed 0, predictions clamped >= 0
        clamped = evaluate_checkpoints(
            exp, args.comparison_dir, seed=0, batch_size=args.test_batch, clamp_min=0.0
        )
        sections.append(f"\nAuthors' heat protocol (seed 0, prediction clamped >= 0):\n\n"
                        f"{metrics_table(clamped, names)}")
    text = "\n".join(sections) + f"\n\n![reconstructions]({fig.name})\n"
    md = write_text(Path(args.comparison_dir) / "test_metrics.md", text)
    print(text)
    print(f"wrote {fig} and {md}")
    return 0


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _slice(batch: Batch, index: slice) -> Batch:
    def cut(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t[index]

    return Batch(batch.y_target[index], cut(batch.x_true), cut(batch.condition))


def _pick(batch: Batch, index: Sequence[int]) -> Batch:
    def cut(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t[list(index)]

    return Batch(batch.y_target[list(index)], cut(batch.x_true), cut(batch.condition))


def _iterations(root: Path, methods: Sequence[str]) -> str:
    counts = set()
    for m in methods:
        summary = root / m / "summary.json"
        if summary.exists():
            counts.add(json.loads(summary.read_text()).get("iterations"))
    return "/".join(str(c) for c in sorted(counts, key=str)) or "?"


if __name__ == "__main__":
    raise SystemExit(main())
