"""Run an experiment's methods from one saved initialisation and summarise the comparison."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from physgrad._validation import check_callable, check_nonnegative_float, first_repeat
from physgrad.experiments.base import (
    Experiment,
    MethodSpec,
    Result,
    RunOptions,
    Scale,
)
from physgrad.io import write_text
from physgrad.problems.base import Problem
from physgrad.stats import interval
from physgrad.table import Table
from physgrad.training.checkpoint import check_entries, load_checkpoint, save_checkpoint
from physgrad.training.distributed import rank_and_world
from physgrad.training.evaluation import heldout_batch
from physgrad.training.optimizers import (
    OptimizerFactory,
    OptimizerSpec,
    configure,
    learning_rate,
)
from physgrad.training.smoothing import running_mean, smoothing_window
from physgrad.training.trainer import History, Trainer

_P = TypeVar("_P", bound=Problem)


@dataclass
class LearningCurves:
    """Figure data (``curves.png``): one panel per metric, per method label its training
    :class:`History` (or several seeds' list: mean with the min-max band) and, when recorded,
    a row of held-out scores (:func:`physgrad.report.plots.plot_learning_curves`)."""

    histories: dict[str, History | list[History]]
    metrics: tuple[str, ...]
    smoothing: int
    log_y: bool
    title: str
    heldout: dict[str, History | list[History]] = field(default_factory=dict)


@dataclass
class SeedGrid:
    """Figure data (``seeds.png``): one panel per seed, ``runs[seed][label] -> History``
    (:func:`physgrad.report.plots.plot_seed_grid`, as the paper's Fig. 10)."""

    runs: dict[int, dict[str, History]]
    metric: str
    smoothing: int
    log_y: bool


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
    scale: str = "cpu"
    result: Result = field(default_factory=Result)
    """What the experiment's figure hook made from this comparison (figures, sections)."""

    def networks(self, methods: Iterable[str] | None = None) -> dict[str, torch.nn.Module]:
        """The trained network of each of ``methods`` (default: the compared ones) that has
        a ``<method>/checkpoint.pt`` in :attr:`out`, in eval mode."""
        return trained_networks(self.experiment, self.out,
                                self.histories if methods is None else methods)

    def ratio(self, method: str) -> float:
        """The baseline's final headline metric divided by ``method``'s (> 1: ``method`` is
        more accurate; training batches, smoothed as the table)."""
        exp = self.experiment
        metric = exp.metrics[0]
        base = self.baseline
        return _ratio(*(final_value(self.histories[m][metric], exp.smoothing)
                        for m in (base, method)))

    @property
    def baseline(self) -> str:
        """The method the ratios are taken against: the experiment's baseline if it was
        trained here, else the first method compared."""
        name = self.experiment.baseline
        return name if name in self.histories else next(iter(self.histories))

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
        base = self.baseline
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
                    "label": exp.methods[name].label if name in exp.methods else name,
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
        metric, base = exp.metrics[0], self.baseline
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
        return Table(list(rows[0]), [[_fmt(v) for v in row.values()] for row in rows]).markdown()


def load_comparison(experiment: Experiment, out: Path | str, scale: str = "cpu") -> Comparison:
    """The :class:`Comparison` of the runs already in ``out`` (every method of ``experiment``
    with a ``<method>/metrics.csv``, e.g. trained one at a time with ``physgrad run``), read
    back from their files; the seed is the one ``init.pt`` (or a checkpoint) records."""
    out = Path(out)
    methods = [m for m in experiment.methods if (out / m / "metrics.csv").is_file()]
    if not methods:
        raise FileNotFoundError(f"no {experiment.name} runs (<method>/metrics.csv) in {str(out)!r}")
    histories = {m: History.read_csv(out / m / "metrics.csv") for m in methods}
    scores = {m: out / m / "heldout.csv" for m in methods}
    heldout = {m: History.read_csv(p) if p.is_file() else History() for m, p in scores.items()}
    recorded = [p for p in (out / "init.pt", out / methods[0] / "checkpoint.pt") if p.is_file()]
    seed = int(load_checkpoint(recorded[0])["seed"]) if recorded else 0
    iterations = min(len(h) for h in histories.values())
    return Comparison(experiment, histories, out, iterations, seed, heldout, scale)


def value_at(values: list[float], iteration: int, window: int) -> float:
    """The smoothed value at ``iteration`` (:func:`~physgrad.training.smoothing.running_mean`)."""
    return final_value(values[: iteration + 1], window)


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.inf


def final_value(values: list[float], window: int) -> float:
    """Mean of the last :func:`~physgrad.training.smoothing.smoothing_window` values."""
    tail = values[-smoothing_window(len(values), window) :]
    return float(sum(tail) / len(tail))


def iterations_to_reach(values: list[float], level: float, window: int) -> int | None:
    """First iteration where the running average is <= ``level`` (None if never)."""
    tolerance = 1e-9 * abs(level)  # the incremental running sum carries round-off
    smoothed = running_mean(values, window).tolist()
    return next((i for i, v in enumerate(smoothed) if v <= level + tolerance), None)


def first_at_or_below(scores: History, metric: str, level: float) -> int | None:
    """First evaluated iteration whose held-out ``metric`` is <= ``level`` (None if never)."""
    pairs = zip(scores["iteration"], scores[metric], strict=True)
    return next((int(it) for it, value in pairs if value <= level * (1 + 1e-12)), None)


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
    experiment: Experiment,
    method: str,
    batch_size: int,
    optimizer: OptimizerSpec | OptimizerFactory | None = None,
) -> dict[str, Any]:
    """The identity of one method's run, stored in its checkpoint and ``summary.json`` and
    checked on resume (the Trainer adds the seed). ``optimizer`` is the one the run uses
    (default: the method's own, see :func:`method_optimizer`): recorded as
    ``optimizer_spec`` (:meth:`~physgrad.training.optimizers.OptimizerSpec.record`) and, when
    its learning rate differs from the method's own, also as ``lr``."""
    meta: dict[str, Any] = {
        "experiment": experiment.name,
        "method": method,
        "batch_size": batch_size,
        "overrides": experiment.overrides or None,
    }
    own = experiment.check_method(method).optimizer
    used = own if optimizer is None else optimizer
    if used is not own and learning_rate(used) != learning_rate(own):
        meta["lr"] = learning_rate(used)
    if isinstance(used, OptimizerSpec):
        meta["optimizer_spec"] = used.record()
    return meta


def method_optimizer(
    experiment: Experiment,
    method: str,
    optimizer: Mapping[str, Any] | None = None,
    lr: float | None = None,
) -> OptimizerSpec | OptimizerFactory:
    """The optimizer ``method`` trains with: its own with a config's ``optimizer`` section
    (:func:`~physgrad.training.optimizers.configure`) and then ``lr`` applied."""
    own = experiment.check_method(method).optimizer
    used = configure(own, {**(optimizer or {}), "lr": lr} if lr is not None else optimizer,
                      method)
    if used is not own and learning_rate(used) != learning_rate(own):
        # finite and positive, and within the parameters' dtype: an lr of 1e300 overflows
        # float32 inside the optimizer step
        lr = check_nonnegative_float("lr", learning_rate(used), positive=True)
        dtype = next(iter(experiment.network().parameters()), torch.zeros(())).dtype
        if dtype.is_floating_point and lr > torch.finfo(dtype).max:
            raise ValueError(
                f"lr {lr:g} does not fit the network's {dtype} (at most "
                f"{torch.finfo(dtype).max:.3g}): the optimizer could not apply it"
            )
    return used


def recorded(experiment: Experiment, method: str, record: dict[str, Any]) -> dict[str, Any]:
    """A run's record (its checkpoint or ``summary.json``) with the optimizer it used.

    Records written before optimizers were recorded have no ``optimizer_spec``: they trained
    with the method's own optimizer, at the learning rate of their ``lr`` entry if they have
    one, which is what is filled in, so such runs still resume and count as finished.
    """
    own = experiment.check_method(method).optimizer
    if "optimizer_spec" in record or not isinstance(own, OptimizerSpec):
        return record
    lr = record.get("lr")
    spec = own if lr is None else own.override({"lr": lr}, "recorded")
    return {**record, "optimizer_spec": spec.record()}


def trained_network(experiment: Experiment, checkpoint: Path | str) -> torch.nn.Module:
    """``experiment.network()`` with the weights of one of its trainer checkpoints, in eval
    mode (the checkpoint must belong to ``experiment``)."""
    data = load_checkpoint(Path(checkpoint), expect={"experiment": experiment.name})
    network = experiment.network()
    network.load_state_dict(data["model"])
    return network.eval()


def problem_of(experiment: Experiment, kind: type[_P]) -> _P:
    """The experiment's (configured) problem, which must be a ``kind``; else ``TypeError``."""
    problem = experiment.problem()
    if not isinstance(problem, kind):
        raise TypeError(f"the {experiment.name} experiment's problem is a {type(problem).__name__}")
    return problem


def trained_networks(
    experiment: Experiment, out: Path | str, methods: Iterable[str]
) -> dict[str, torch.nn.Module]:
    """:func:`trained_network` of each of ``methods`` that has a ``<method>/checkpoint.pt`` in
    ``out``."""
    paths = {m: Path(out) / m / "checkpoint.pt" for m in methods}
    return {m: trained_network(experiment, p) for m, p in paths.items() if p.exists()}


def options_with(options: RunOptions | None, **fields: Any) -> RunOptions:
    """``options`` (default: :class:`RunOptions`'s defaults) with ``fields`` replaced; the
    keyword form lets callers write ``compare(exp, out=..., scale="smoke")``."""
    return dataclasses.replace(options or RunOptions(), **fields)


def run_method(
    experiment: Experiment,
    method: str,
    out: Path | str,
    *,
    seed: int = 0,
    init: dict[str, torch.Tensor] | None = None,
    heldout: int | None = None,
    options: RunOptions | None = None,
    **fields: Any,
) -> History:
    """Train one method of ``experiment`` into ``out/<method>`` and return its history.

    A finished run (``summary.json`` present with the requested iterations) is not redone
    when ``options.resume`` is set; an interrupted one continues from its checkpoint. The
    method's optimizer is built once, with ``options.optimizer`` and ``options.lr`` applied
    (:func:`method_optimizer`), and recorded in the checkpoint and ``summary.json``
    (:func:`run_meta`).

    Args:
        experiment: the registered experiment (problem, network, methods).
        method: one of ``experiment.method_names()``.
        out: output folder; the run goes to ``out/<method>``.
        seed: data seed.
        init: initial network weights, a ``state_dict`` (name -> tensor of that parameter's
            shape), e.g. from :func:`initial_weights`; ``None`` keeps the fresh network's.
        heldout: held-out problems to score during training (default
            ``experiment.heldout``; 0: none); scores go to ``out/<method>/heldout.csv``.
        options: length (default: the scale's), device, resume, progress, trackers, lr,
            checkpoint cadence, compile; ``fields`` replace single ones
            (``iterations=10, batch_size=4``).

    Returns:
        The run's :class:`~physgrad.training.History`.
    """
    opts = options_with(options, **fields)
    spec = experiment.check_method(method)
    if opts.threads is not None:
        torch.set_num_threads(opts.threads)
    iterations, batch_size = _length(experiment, opts)
    run_dir = Path(out) / method
    used = method_optimizer(experiment, method, opts.optimizer, opts.lr)
    meta = run_meta(experiment, method, batch_size, used)
    if opts.resume and _finished(experiment, run_dir, iterations, meta):
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
        used,
        batch_size=batch_size,
        seed=seed,
        run_dir=run_dir,
        checkpoint_every=opts.checkpoint_every,
        progress=opts.progress,
        device=opts.device,
        trackers=opts.trackers,
        meta=meta,
        heldout=heldout_batch(problem, heldout) if heldout else None,
        eval_every=max(1, iterations // 50),
        compile=opts.compile,
        shown=("loss", experiment.metrics[0]),
    )
    if opts.resume:
        _resume(trainer, experiment, method)
    return trainer.train(iterations)


def _length(experiment: Experiment, opts: RunOptions) -> tuple[int, int]:
    """Iterations and batch size: the options', else the scale's."""
    if opts.iterations is None or opts.batch_size is None:
        sc = experiment.scale(opts.scale)
        return opts.iterations or sc.iterations, opts.batch_size or sc.batch_size
    return opts.iterations, opts.batch_size


def compare(
    experiment: Experiment,
    methods: list[str] | None = None,
    out: Path | str = "runs",
    *,
    seed: int = 0,
    options: RunOptions | None = None,
    **fields: Any,
) -> Comparison:
    """Train ``methods`` from the same initial weights and data stream; write the report.

    ``options`` (or single ``fields`` such as ``scale="smoke"``) say how long, where and how
    (see :class:`~physgrad.experiments.base.RunOptions`); ``seed`` is this comparison's.
    Writes ``out/init.pt``, ``out/<method>/{metrics.csv,checkpoint.pt,summary.json}``,
    ``out/results.md`` and ``out/results.json``, then runs the experiment's figure hook with
    the comparison. The figures (``curves.png``, the hook's) come back as data in
    ``comparison.result``: :func:`physgrad.report.figures.render` draws them into ``out``.
    """
    if not isinstance(experiment, Experiment):
        raise ValueError(f"experiment {experiment.name!r} has no training methods to compare")
    opts = options_with(options, **fields)
    methods = list(experiment.default_methods if methods is None else methods)
    if not methods:  # [] is not "the defaults": None is
        raise ValueError("no methods given")
    for i, name in enumerate(methods):
        experiment.check_method(name)
        if name in methods[:i]:  # both would train into out/<name>
            raise ValueError(f"method {name!r} is listed twice")
    iterations, batch_size = _length(experiment, opts)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    init = initial_weights(experiment, seed, out / "init.pt")
    histories, heldout = {}, {}
    for name in methods:
        histories[name] = run_method(
            experiment,
            name,
            out,
            seed=seed,
            init=init,
            options=opts,
            # smoke checks the plumbing: a held-out set the size of a batch is enough
            heldout=min(experiment.heldout, batch_size) if opts.scale == "smoke" else None,
        )
        scores = out / name / "heldout.csv"
        heldout[name] = History.read_csv(scores) if scores.exists() else History()
        headline = experiment.metrics[0]
        if headline not in histories[name].columns:  # else a KeyError after every method
            raise ValueError(
                f"metric {headline!r} (the table's headline, metrics[0]) was not logged by "
                f"{name!r}; it logged: {', '.join(histories[name].columns)}"
            )
    comparison = Comparison(experiment, histories, out, iterations, seed, heldout, opts.scale)
    if rank_and_world()[0] == 0:
        write_comparison(comparison)
    return comparison


def compare_seeds(
    experiment: Experiment,
    methods: list[str] | None,
    out: Path | str,
    seeds: list[int],
    *,
    options: RunOptions | None = None,
    **fields: Any,
) -> list[Comparison]:
    """:func:`compare` once per seed into ``out/seed<S>``, then a mean ± std table
    (``out/results.md``) that links ``curves.png`` and ``seeds.png``, whose data
    :func:`seeds_figures` gives (the caller renders them)."""
    if not seeds:
        raise ValueError("no seeds given")
    twice = first_repeat(seeds)
    if twice is not None:  # both would train into out/seed<S>
        raise ValueError(f"seed {twice!r} is listed twice")
    opts = options_with(options, **fields)
    out = Path(out)
    comparisons = [
        compare(experiment, methods, out / f"seed{seed}", seed=seed, options=opts)
        for seed in seeds
    ]
    if rank_and_world()[0] != 0:
        return comparisons
    table = seeds_table(comparisons)
    text = (
        f"# {experiment.name} over seeds {', '.join(map(str, seeds))} ({experiment.paper})\n\n"
        f"Mean over seeds of the per-seed values with the 95% Student-t interval in brackets "
        f"(geometric mean and log-scale interval for ratio columns; see each "
        f"`seed<S>/results.md`).\n\n"
        f"{table}\n\n![mean and range](curves.png)\n\n![seeds](seeds.png)\n"
    )
    write_text(out / "results.md", text)
    return comparisons


def seeds_figures(comparisons: list[Comparison]) -> dict[str, LearningCurves | SeedGrid]:
    """The figure data of :func:`compare_seeds`: ``seeds.png`` (one panel per seed) and
    ``curves.png`` (mean over seeds with the min-max band)."""
    experiment = comparisons[0].experiment
    labels = {m: experiment.methods[m].label for m in comparisons[0].histories}
    seeds = ", ".join(str(c.seed) for c in comparisons)
    return {
        "seeds.png": SeedGrid(
            {c.seed: {labels[m]: h for m, h in c.histories.items()} for c in comparisons},
            experiment.metrics[0], experiment.smoothing, experiment.log_y,
        ),
        "curves.png": LearningCurves(
            {labels[m]: [c.histories[m] for c in comparisons] for m in labels},
            experiment.metrics, experiment.smoothing, experiment.log_y,
            f"{experiment.name}: mean and range over seeds {seeds}",
            {labels[m]: [c.heldout[m] for c in comparisons] for m in labels},
        ),
    }


def compare_methods(
    problem: Problem,
    network: Callable[[], nn.Module],
    methods: dict[str, Callable[[], Any] | tuple[Callable[[], Any], Any]],
    out: str | os.PathLike[str],
    *,
    iterations: int,
    batch_size: int,
    lr: float = 1e-3,
    seed: int = 0,
    metrics: tuple[str, ...] = ("x_l1", "y_l2"),
    smoothing: int = 32,
    description: str = "",
    progress: bool = False,
) -> Comparison:
    """Train each method from the same initial weights on the same data; write curves + table.

    A thin wrapper around :func:`compare`: the first method is the
    baseline of the table. Writes ``out/results.md``, ``out/results.json`` and one folder per
    method (metrics.csv, checkpoint.pt, summary.json); ``physgrad.report.figures.render(
    comparison)`` draws ``out/curves.png``. Runs always start afresh: an old ``out/init.pt``
    is replaced.

    Args:
        problem: the problem to train on.
        network: factory of a fresh network (called once per method; the weights of the
            first call with ``torch.manual_seed(seed)`` are loaded into every method).
        methods: ``{label: method_factory}`` or ``{label: (method_factory,
            optimizer)}`` with an :class:`~physgrad.training.optimizers.OptimizerSpec` (or a
            factory ``params -> optimizer``), e.g. ``{"Adam": Unsupervised, "Adam + PG (GN)":
            lambda: Physical(GaussNewton()), "SGD": (Unsupervised, OptimizerSpec("sgd",
            1e-2)), "HIG": HalfInverse}``. Without an optimizer a method is
            trained with its own ``optimizer`` if it names one (``HalfInverse``: SGD at lr 1),
            else with Adam at ``lr``. Labels also name the run folders (non-alphanumerics
            become ``-``).
        out: output folder.
        iterations: training length.
        batch_size: problems per iteration.
        lr: learning rate of the default Adam optimizer.
        seed: data and initialisation seed.
        metrics: plotted metrics; the first is the table's headline metric. Metrics the
            problem does not log (e.g. ``x_l1`` without ground truth) are dropped.
        smoothing: running-mean window (iterations) for curves and final values.
        description: figure title after the problem's name (default: the run's length).
        progress: show a progress bar on a terminal.

    Returns:
        the :class:`Comparison`; ``.markdown_table()`` is the table.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a physgrad Problem, got {type(problem).__name__}")
    if isinstance(network, nn.Module):  # a common slip: the network instead of its factory
        raise TypeError(
            f"network must be a factory () -> torch.nn.Module (e.g. lambda: MLP(...)), got a "
            f"{type(network).__name__} instance"
        )
    check_callable("network", network)
    if not methods:
        raise ValueError("no methods given")
    specs: dict[str, MethodSpec] = {}
    adam = OptimizerSpec("adam", lr)
    for label, entry in methods.items():
        method, optimizer = entry if isinstance(entry, tuple) else (entry, None)
        check_callable(f"method factory of {label!r}", method)
        if optimizer is None:  # the method's own optimizer (HIG: SGD lr 1), else Adam
            optimizer = getattr(method(), "optimizer", None) or adam
        check_callable(f"optimizer factory of {label!r}", optimizer)
        key = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-").lower() or "method"
        if key in specs:
            raise ValueError(f"method labels {label!r} and {specs[key].label!r} clash as folders")
        specs[key] = MethodSpec(label, method, optimizer)
    probe = problem.sample(1, torch.Generator().manual_seed(seed))
    if probe.x_true is None:
        metrics = tuple(m for m in metrics if not m.startswith("x_")) or ("y_l2",)
    experiment = Experiment(
        name=problem.name,
        description=description or f"{iterations} iterations, batch {batch_size}, seed {seed}",
        paper="own physics",
        scales={"cpu": Scale(iterations, batch_size)},
        problem=lambda: problem,
        network=network,
        methods=specs,
        default_methods=tuple(specs),
        baseline=next(iter(specs)),
        metrics=metrics,
        smoothing=min(smoothing, iterations),
    )
    out = Path(out)
    (out / "init.pt").unlink(missing_ok=True)  # a fresh start: the network may have changed
    return compare(experiment, list(specs), out, seed=seed, progress=progress)


def seeds_table(comparisons: list[Comparison]) -> str:
    """Markdown table: mean over seeds of each numeric column of the summary rows with its 95%
    Student-t interval (geometric mean and log-scale interval for ratio columns)."""
    per_seed = [c.summary_rows() for c in comparisons]
    header = list(per_seed[0][0])
    table = Table(header)
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
        table.rows.append(cells)
    return table.markdown()


def write_comparison(comparison: Comparison) -> None:
    """Markdown table and JSON summary of a comparison, then the experiment's figure hook;
    ``comparison.result`` gets the learning curves (``curves.png``) and what the hook made
    (:class:`~physgrad.experiments.base.Result`), as data the caller renders."""
    exp, out = comparison.experiment, comparison.out
    labels = {m: exp.methods[m].label for m in comparison.histories}
    curves = LearningCurves(
        {labels[m]: h for m, h in comparison.histories.items()},
        exp.metrics, exp.smoothing, exp.log_y, f"{exp.name}: {exp.description}",
        {labels[m]: h for m, h in comparison.heldout.items()},
    )
    table = comparison.markdown_table()
    text = (
        f"# {exp.name} ({exp.paper})\n\n{exp.description}\n\n"
        f"{comparison.iterations} iterations, seed {comparison.seed}, all methods from the same "
        f"initial weights (`init.pt`) and the same data stream. Final values are running means "
        f"over the last {exp.smoothing} mini-batches.\n\n{table}\n\n{comparison.legend()}\n\n"
        "![curves](curves.png)\n"
    )
    write_text(out / "results.md", text)
    write_text(out / "results.json", json.dumps(comparison.summary_rows(), indent=2, default=str))
    made = (exp.figures(comparison) if exp.figures is not None else None) or Result()
    comparison.result = dataclasses.replace(made, figures={"curves.png": curves, **made.figures})


def _finished(
    experiment: Experiment, run_dir: Path, iterations: int, meta: dict[str, Any]
) -> bool:
    """Whether ``run_dir`` holds a completed run of exactly this configuration."""
    summary = run_dir / "summary.json"
    if not summary.exists() or not (run_dir / "metrics.csv").exists():
        return False
    try:
        data = json.loads(summary.read_text())
    except json.JSONDecodeError:
        return False
    data = recorded(experiment, meta["method"], data)
    same = all(data.get(k) == v for k, v in meta.items()) and ("lr" in meta) == ("lr" in data)
    return data.get("iterations") == iterations and same


def _resume(trainer: Trainer, experiment: Experiment, method: str) -> None:
    """Continue ``trainer`` from its checkpoint, if it has one (:meth:`Trainer.resume`); a
    checkpoint written before optimizers were recorded is checked against its
    :func:`recorded` optimizer instead."""
    path = trainer.checkpoint_path
    if path is None or not path.exists():
        return
    data = load_checkpoint(path)
    meta = trainer.meta
    check_entries(path, recorded(experiment, method, data), {**meta, "seed": trainer.seed})
    if "optimizer_spec" not in data:  # an older checkpoint, checked just above
        trainer.meta = {k: v for k, v in meta.items() if k != "optimizer_spec"}
    try:
        trainer.resume()
    finally:
        trainer.meta = meta


def _fmt(value: Any) -> str:
    if value is None:
        return "never"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
