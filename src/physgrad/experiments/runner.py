"""Run an experiment's methods from one saved initialisation and summarise the comparison."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from physgrad._validation import check_device, check_nonnegative_float, check_positive_int
from physgrad.experiments.base import Experiment, configured
from physgrad.stats import interval
from physgrad.training.checkpoint import atomic_write, load_checkpoint, save_checkpoint
from physgrad.training.distributed import rank_and_world
from physgrad.training.evaluation import heldout_batch
from physgrad.training.smoothing import running_mean as smoothed
from physgrad.training.smoothing import smoothing_window
from physgrad.training.trainer import History, Trainer


@dataclass
class Comparison:
    """Histories of several methods trained from the same initial weights on the same data."""

    experiment: Experiment
    histories: dict[str, History]
    out: Path
    iterations: int
    seed: int
    heldout: dict[str, History] = field(default_factory=dict)
    """Per method, the held-out scores during training (``heldout.csv``), when recorded."""

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per method: final headline metric (training batches, smoothed, and on the
        held-out problems), ratios to the baseline, iterations to reach the baseline's final
        value (against the baseline trained for the same number of iterations), time per
        iteration."""
        exp = self.experiment
        metric, window = exp.metrics[0], exp.smoothing
        finals = {m: final_value(h[metric], window) for m, h in self.histories.items()}
        times = {m: statistics.median(h["step_time"]) for m, h in self.histories.items()}
        cpu = {
            m: statistics.median(h["cpu_time"])
            for m, h in self.histories.items()
            if "cpu_time" in h.columns
        }
        base = exp.baseline if exp.baseline in self.histories else next(iter(self.histories))
        scored = all(metric in self.heldout.get(m, History()).columns for m in self.histories)
        rows = []
        checkpoints = [n for n in exp.ratio_at if n < min(len(h) for h in self.histories.values())]
        for name, history in self.histories.items():
            reach = iterations_to_reach(history[metric], finals[base], window)
            at = {
                f"{base} / method @{n}": _ratio(
                    value_at(self.histories[base][metric], n, window),
                    value_at(history[metric], n, window),
                )
                for n in checkpoints
            }
            held: dict[str, Any] = {}
            if scored:
                h_base, h = self.heldout[base], self.heldout[name]
                held = {
                    f"held-out {metric}": h[metric][-1],
                    f"held-out {base} / method": _ratio(h_base[metric][-1], h[metric][-1]),
                    f"held-out iters to {base}'s final": first_at_or_below(
                        h, metric, h_base[metric][-1]
                    ) if name != base else "—",
                }
            rows.append(
                {
                    "method": name,
                    "label": exp.methods[name].label,
                    f"final {metric}": finals[name],
                    **held,
                    **at,
                    f"{base} / method": _ratio(finals[base], finals[name]),
                    f"iters to {base}'s final": reach if name != base else "—",
                    "step time / " + base: times[name] / times[base],
                    "step ms": 1e3 * times[name],
                    **({"cpu ms": 1e3 * cpu[name]} if len(cpu) == len(times) else {}),
                }
            )
        return rows

    def legend(self) -> str:
        """One line per column of :meth:`markdown_table`: what it measures."""
        exp = self.experiment
        metric, base = exp.metrics[0], exp.baseline or next(iter(self.histories))
        n = min(len(h) for h in self.histories.values())
        window = smoothing_window(n, exp.smoothing)
        notes = {
            f"final {metric}": f"running mean of {metric} over the last {window} of {n} "
            "training batches (each batch is new data, scored before the update)",
            f"held-out {metric}": f"mean {metric} of the final network on fixed held-out "
            "problems it never trained on (the same for every method; batch-norm statistics "
            "re-estimated for the final weights, see docs/evaluation.md)",
            f"held-out {base} / method": f"held-out {metric} of {base} divided by the "
            "method's: > 1 means the method is more accurate",
            f"held-out iters to {base}'s final": "first held-out evaluation at which the "
            f"method is at or below {base}'s final held-out {metric}",
            f"{base} / method": f"the same ratio on the training batches' final {metric}; "
            "@n: at iteration n",
            f"iters to {base}'s final": "first iteration at which the method's running mean "
            f"reaches {base}'s final value (never: not within the run; — for {base} itself)",
            f"step time / {base}": f"wall-clock time per iteration relative to {base}'s",
            "step ms": "median wall-clock milliseconds per iteration (data, network, physics, "
            "solver, update)",
            "cpu ms": "median CPU seconds of this process per iteration, in ms (fairer than "
            "wall-clock on a busy machine, which adds waiting; with several threads it adds "
            "their times)",
        }
        columns = list(self.summary_rows()[0])
        return "\n".join(
            f"- `{c}`: {notes[c]}" for c in columns if c in notes
        )

    def markdown_table(self) -> str:
        """The :meth:`summary_rows` as a markdown table (one row per method)."""
        rows = self.summary_rows()
        header = list(rows[0])
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in rows:
            lines.append("| " + " | ".join(_fmt(row[k]) for k in header) + " |")
        return "\n".join(lines)


def value_at(values: list[float], iteration: int, window: int) -> float:
    """The smoothed value at ``iteration`` (see :func:`running_mean`)."""
    return final_value(values[: iteration + 1], window)


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.inf


def final_value(values: list[float], window: int) -> float:
    """Mean of the last :func:`~physgrad.training.smoothing.smoothing_window` values."""
    tail = values[-smoothing_window(len(values), window) :]
    return float(sum(tail) / len(tail))


def running_mean(values: list[float], window: int) -> list[float]:
    """:func:`physgrad.training.smoothing.running_mean` as a list."""
    return smoothed(values, window).tolist()


def iterations_to_reach(values: list[float], level: float, window: int) -> int | None:
    """First iteration where the running average is <= ``level`` (None if never)."""
    tolerance = 1e-9 * abs(level)  # the incremental running sum carries round-off
    for i, v in enumerate(running_mean(values, window)):
        if v <= level + tolerance:
            return i
    return None


def first_at_or_below(scores: History, metric: str, level: float) -> int | None:
    """First evaluated iteration whose held-out ``metric`` is <= ``level`` (None if never)."""
    for it, value in zip(scores["iteration"], scores[metric], strict=True):
        if value <= level * (1 + 1e-12):
            return int(it)
    return None


def initial_weights(experiment: Experiment, seed: int, path: Path) -> dict[str, torch.Tensor]:
    """The network initialisation for ``seed``, saved once in ``path`` and reused after.

    Args:
        experiment: supplies the network factory.
        seed: ``torch.manual_seed`` before building the network.
        path: checkpoint file holding the weights (read if present, else written by rank 0).

    Returns:
        The network's ``state_dict``: parameter/buffer name -> tensor of that entry's shape.
    """
    meta = init_meta(experiment, seed)
    if path.exists():
        return load_checkpoint(path, expect=meta)["model"]
    torch.manual_seed(seed)
    state = experiment.network().state_dict()
    if rank_and_world()[0] == 0:  # every rank computes the same weights; one writes them
        save_checkpoint(path, {**meta, "model": state})
    return state


def init_meta(experiment: Experiment, seed: int) -> dict[str, Any]:
    """What ``init.pt`` records and :func:`initial_weights` checks when it reuses one."""
    return {"experiment": experiment.name, "seed": seed, "overrides": experiment.overrides or None}


def run_meta(
    experiment: Experiment, method: str, batch_size: int, lr: float | None = None
) -> dict[str, Any]:
    """The identity of one method's run, stored in its checkpoint and ``summary.json`` and
    checked on resume (the Trainer adds the seed)."""
    meta = {
        "experiment": experiment.name,
        "method": method,
        "batch_size": batch_size,
        "overrides": experiment.overrides or None,
    }
    if lr is not None:
        meta["lr"] = check_nonnegative_float("lr", lr, positive=True)
    return meta


def default_lr(experiment: Experiment, method: str) -> float:
    """The learning rate ``method``'s optimizer uses unless overridden."""
    probe = torch.nn.Parameter(torch.zeros(1))
    return float(experiment.check_method(method).optimizer([probe]).param_groups[0]["lr"])


def check_lr(experiment: Experiment, lr: float) -> float:
    """``lr`` if it is a finite positive number the network's parameter dtype can hold (an
    ``lr`` of 1e300 overflows float32 inside the optimizer step); else ``ValueError``."""
    lr = check_nonnegative_float("lr", lr, positive=True)
    dtype = next(iter(experiment.network().parameters()), torch.zeros(())).dtype
    if dtype.is_floating_point and lr > torch.finfo(dtype).max:
        raise ValueError(
            f"lr {lr:g} does not fit the network's {dtype} (at most "
            f"{torch.finfo(dtype).max:.3g}): the optimizer could not apply it"
        )
    return lr


def trained_network(experiment: Experiment, checkpoint: Path | str) -> torch.nn.Module:
    """``experiment.network()`` with the weights of one of its trainer checkpoints, in eval
    mode (the checkpoint must belong to ``experiment``)."""
    data = load_checkpoint(Path(checkpoint), expect={"experiment": experiment.name})
    network = experiment.network()  # type: ignore[misc]
    network.load_state_dict(data["model"])
    return network.eval()


def run_method(
    experiment: Experiment,
    method: str,
    out: Path,
    *,
    iterations: int,
    batch_size: int,
    seed: int = 0,
    init: dict[str, torch.Tensor] | None = None,
    resume: bool = False,
    progress: bool = True,
    checkpoint_every: int = 500,
    device: str | None = None,
    trackers: tuple[str, ...] = (),
    lr: float | None = None,
    heldout: int | None = None,
    eval_every: int | None = None,
    compile: bool = False,
) -> History:
    """Train one method of ``experiment`` into ``out/<method>`` and return its history.

    A finished run (``summary.json`` present with the requested iterations) is not redone
    when ``resume`` is set; an interrupted one continues from its checkpoint. ``lr``
    overrides the learning rate of the method's optimizer (all parameter groups).

    Args:
        experiment: the registered experiment (problem, network, methods).
        method: one of ``experiment.method_names()``.
        out: output folder; the run goes to ``out/<method>``.
        iterations: total training iterations.
        batch_size: problems per iteration.
        seed: data seed.
        init: initial network weights, a ``state_dict`` (name -> tensor of that parameter's
            shape), e.g. from :func:`initial_weights`; ``None`` keeps the fresh network's.
        resume: continue an interrupted run, skip a finished one.
        progress: show a progress bar.
        checkpoint_every: iterations between checkpoints.
        device: where to train (default: the network's device).
        trackers: extra loggers (``"tensorboard"``, ``"mlflow"``).
        lr: learning-rate override, or ``None``.
        heldout: held-out problems to score during training (default
            ``experiment.heldout``; 0: none); scores go to ``out/<method>/heldout.csv``.
        eval_every: iterations between held-out scores (default ``max(1, iterations // 50)``).
        compile: ``torch.compile`` the network (see :class:`~physgrad.training.Trainer`).

    Returns:
        The run's :class:`~physgrad.training.History`.
    """
    spec = experiment.check_method(method)
    check_positive_int("iterations", iterations)
    check_positive_int("batch_size", batch_size)
    run_dir = Path(out) / method
    if device is not None:
        check_device(device)
    if lr is not None:
        check_lr(experiment, lr)
    meta = run_meta(experiment, method, batch_size, lr)
    if resume and _finished(run_dir, iterations, meta):
        return History.read_csv(run_dir / "metrics.csv")
    network = experiment.network()
    if init is not None:
        network.load_state_dict(init)
    problem = experiment.problem()
    heldout = experiment.heldout if heldout is None else heldout
    trainer = Trainer(
        problem,
        network,
        spec.method(),
        spec.optimizer,
        batch_size=batch_size,
        seed=seed,
        run_dir=run_dir,
        checkpoint_every=checkpoint_every,
        progress=progress,
        device=device,
        trackers=trackers,
        meta=meta,
        heldout=heldout_batch(problem, heldout) if heldout else None,
        eval_every=max(1, iterations // 50) if eval_every is None else eval_every,
        compile=compile,
    )
    if lr is not None:
        for group in trainer.optimizer.param_groups:
            group["lr"] = lr
    return trainer.train(iterations, resume=resume)


def compare(
    experiment: Experiment,
    methods: list[str] | None = None,
    out: Path | str = "runs",
    *,
    scale: str = "cpu",
    iterations: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    resume: bool = False,
    progress: bool = True,
    device: str | None = None,
    trackers: tuple[str, ...] = (),
    lr: float | None = None,
    checkpoint_every: int = 500,
    compile: bool = False,
) -> Comparison:
    """Train ``methods`` from the same initial weights and data stream; write the report.

    Writes ``out/init.pt``, ``out/<method>/{metrics.csv,checkpoint.pt,summary.json}``,
    ``out/curves.png``, ``out/results.md`` and ``out/results.json``.
    """
    if not experiment.trains:
        raise ValueError(f"experiment {experiment.name!r} has no training methods to compare")
    methods = list(methods or experiment.default_methods)
    if not methods:
        raise ValueError("no methods given")
    for name in methods:
        experiment.check_method(name)
    sc = experiment.scale(scale)
    iterations = iterations or sc.iterations
    batch_size = batch_size or sc.batch_size
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    init = initial_weights(experiment, seed, out / "init.pt")
    histories, heldout = {}, {}
    for name in methods:
        histories[name] = run_method(
            experiment,
            name,
            out,
            iterations=iterations,
            batch_size=batch_size,
            seed=seed,
            init=init,
            resume=resume,
            progress=progress,
            device=device,
            trackers=trackers,
            lr=lr,
            checkpoint_every=checkpoint_every,
            compile=compile,
            # smoke checks the plumbing: a held-out set the size of a batch is enough
            heldout=min(experiment.heldout, batch_size) if scale == "smoke" else None,
        )
        scores = out / name / "heldout.csv"
        heldout[name] = History.read_csv(scores) if scores.exists() else History()
    comparison = Comparison(experiment, histories, out, iterations, seed, heldout)
    if rank_and_world()[0] == 0:
        write_comparison(comparison, scale)
    return comparison


def compare_seeds(
    experiment: Experiment,
    methods: list[str] | None,
    out: Path | str,
    seeds: list[int],
    **kwargs: Any,
) -> list[Comparison]:
    """:func:`compare` once per seed into ``out/seed<S>``, then a per-seed grid of learning
    curves (``out/seeds.png``, like the paper's Fig. 10) and a mean ± std table
    (``out/results.md``)."""
    from physgrad.report.plots import plot_learning_curves, plot_seed_grid

    if not seeds:
        raise ValueError("no seeds given")
    out = Path(out)
    comparisons = [
        compare(experiment, methods, out / f"seed{seed}", seed=seed, **kwargs) for seed in seeds
    ]
    if rank_and_world()[0] != 0:
        return comparisons
    labels = {m: experiment.methods[m].label for m in comparisons[0].histories}
    plot_seed_grid(
        {c.seed: {labels[m]: h for m, h in c.histories.items()} for c in comparisons},
        metric=experiment.metrics[0],
        smoothing=experiment.smoothing,
        log_y=experiment.log_y,
        path=out / "seeds.png",
    )
    plot_learning_curves(  # mean over seeds with the min-max band
        {labels[m]: [c.histories[m] for c in comparisons] for m in labels},
        metrics=experiment.metrics,
        smoothing=experiment.smoothing,
        log_y=experiment.log_y,
        title=f"{experiment.name}: mean and range over seeds {', '.join(map(str, seeds))}",
        path=out / "curves.png",
        heldout={labels[m]: [c.heldout.get(m) for c in comparisons] for m in labels
                 if all(c.heldout.get(m) is not None for c in comparisons)},
    )
    table = seeds_table(comparisons)
    text = (
        f"# {experiment.name} over seeds {', '.join(map(str, seeds))} ({experiment.paper})\n\n"
        f"Mean over seeds of the per-seed values with the 95% Student-t interval in brackets "
        f"(geometric mean and log-scale interval for ratio columns; see each "
        f"`seed<S>/results.md`).\n\n"
        f"{table}\n\n![mean and range](curves.png)\n\n![seeds](seeds.png)\n"
    )
    atomic_write(out / "results.md", lambda tmp: Path(tmp).write_text(text))
    return comparisons


def seeds_table(comparisons: list[Comparison]) -> str:
    """Markdown table: mean over seeds of each numeric column of the summary rows with its 95%
    Student-t interval (geometric mean and log-scale interval for ratio columns)."""
    per_seed = [c.summary_rows() for c in comparisons]
    header = list(per_seed[0][0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, row in enumerate(per_seed[0]):
        cells = []
        for key in header:
            values = [rows[i][key] for rows in per_seed]
            if isinstance(row[key], str):
                cells.append(row[key])
            elif any(v is None for v in values):
                reached = [v for v in values if v is not None]
                cells.append(f"{len(reached)}/{len(values)} seeds" + (
                    f", {statistics.mean(reached):.3g}" if reached else ""))
            elif len(values) == 1:
                cells.append(_fmt(values[0]))
            else:
                ratio = " / " in key and all(v > 0 and math.isfinite(v) for v in values)
                mean, lo, hi = interval(values, log=ratio)
                cells.append(f"{mean:.3g} [{lo:.3g}, {hi:.3g}]")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_comparison(comparison: Comparison, scale: str = "cpu") -> None:
    """Learning-curve PNG, markdown table and JSON summary of a comparison."""
    from physgrad.report.plots import plot_learning_curves

    exp, out = comparison.experiment, comparison.out
    labels = {m: exp.methods[m].label for m in comparison.histories}
    plot_learning_curves(
        {labels[m]: h for m, h in comparison.histories.items()},
        metrics=exp.metrics,
        smoothing=exp.smoothing,
        log_y=exp.log_y,
        title=f"{exp.name}: {exp.description}",
        path=out / "curves.png",
        heldout={labels[m]: h for m, h in comparison.heldout.items()},
    )
    table = comparison.markdown_table()
    text = (
        f"# {exp.name} ({exp.paper})\n\n{exp.description}\n\n"
        f"{comparison.iterations} iterations, seed {comparison.seed}, all methods from the same "
        f"initial weights (`init.pt`) and the same data stream. Final values are running means "
        f"over the last {exp.smoothing} mini-batches.\n\n{table}\n\n{comparison.legend()}\n\n"
        "![curves](curves.png)\n"
    )
    atomic_write(out / "results.md", lambda tmp: Path(tmp).write_text(text))
    payload = json.dumps(comparison.summary_rows(), indent=2, default=str)
    atomic_write(out / "results.json", lambda tmp: Path(tmp).write_text(payload))
    if exp.figures is not None:
        with configured(exp):
            exp.figures(out, scale)


def _finished(run_dir: Path, iterations: int, meta: dict[str, Any]) -> bool:
    """Whether ``run_dir`` holds a completed run of exactly this configuration."""
    summary = run_dir / "summary.json"
    if not summary.exists() or not (run_dir / "metrics.csv").exists():
        return False
    try:
        data = json.loads(summary.read_text())
    except json.JSONDecodeError:
        return False
    same = all(data.get(k) == v for k, v in meta.items()) and ("lr" in meta) == ("lr" in data)
    return data.get("iterations") == iterations and same


def _fmt(value: Any) -> str:
    if value is None:
        return "never"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        return f"{value:.3g}"
    return str(value)
