"""The training loop: on-the-fly seeded data, any method, any torch optimizer, exact resume."""

from __future__ import annotations

import csv
import json
import math
import operator
import platform
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from physgrad._validation import check_device, check_positive_int, check_seed, short_text
from physgrad.core import NonFiniteError
from physgrad.nets.adapters import adapt, takes_batch
from physgrad.problems.base import Batch, Problem
from physgrad.training.checkpoint import atomic_write, load_checkpoint, save_checkpoint
from physgrad.training.distributed import mean_across_ranks, rank_and_world
from physgrad.training.evaluation import (
    CALIBRATION_SEED,
    evaluate,
    has_batchnorm,
    heldout_batch,
    with_precise_batchnorm,
)
from physgrad.training.methods import Method
from physgrad.training.tracking import Tracker, check_trackers, open_trackers

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


class TrainingDiverged(RuntimeError):
    """The loss, a gradient or the weights became NaN/inf; the message names the iteration."""


@dataclass
class History:
    """Per-iteration metrics of one run: ``columns[name]`` is a list over logged iterations."""

    columns: dict[str, list[float]] = field(default_factory=dict)

    def append(self, row: dict[str, float]) -> None:
        """Append one logged iteration: ``row`` maps metric names to values."""
        for key, value in row.items():
            self.columns.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> list[float]:
        return self.columns[key]

    def __len__(self) -> int:
        return len(self.columns.get("iteration", []))

    @classmethod
    def read_csv(cls, path: Path) -> History:
        """Load a ``metrics.csv`` written by the :class:`Trainer` (every column as floats).

        Raises:
            ValueError: the file cannot be read, or a row is damaged (a missing, extra or
                non-numeric value), naming the file and line.
        """
        history = cls()
        try:
            with open(path, newline="") as fh:
                reader = csv.DictReader(fh)
                for row in reader:
                    try:
                        if None in row or None in row.values():  # too many / too few values
                            raise ValueError
                        values = {k: float(v) for k, v in row.items()}
                    except ValueError:
                        raise ValueError(
                            f"{str(path)!r} is damaged: line {reader.line_num} does not hold "
                            f"one number for each of its {len(reader.fieldnames or ())} columns"
                        ) from None
                    history.append(values)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else \
                short_text(exc)
            raise ValueError(f"cannot read {str(path)!r} ({reason})") from None
        return history


class Trainer:
    """Train ``network`` on ``problem`` with ``method`` and a torch optimizer.

    Each iteration draws a fresh batch from a generator seeded with ``seed`` (so every method
    trained with the same seed sees the same data), predicts ``x``, forms the method's loss,
    and steps the optimizer. Metrics of the prediction (before the step) are logged to
    ``run_dir/metrics.csv``; ``run_dir/checkpoint.pt`` holds everything needed to continue
    bit-for-bit (weights, optimizer, data-generator state, iteration).

    Under ``torchrun`` (an initialised process group) the network is wrapped in
    DistributedDataParallel; ``batch_size`` is the global batch, and rank ``r`` trains on the
    ``r``-th equal shard of exactly the batch a single process would draw, so results do not
    depend on the number of processes (up to floating-point summation order and BatchNorm
    statistics, which are per rank). Rank 0 alone writes metrics (averaged over ranks) and
    checkpoints, and a checkpoint resumes under any world size.

    Args:
        problem: the inverse problem (physics + data + metrics).
        network: an ``nn.Module`` called with the batch, adapted by its factory
            (:func:`physgrad.nets.adapt`: what it is fed, how its output becomes x); a
            network not adapted yet gets the default adapter in place (fed ``y*`` as float32,
            its output used as x).
        method: how gradients are formed (:mod:`physgrad.training.methods`).
        optimizer: a factory ``params -> torch.optim.Optimizer``, e.g.
            ``lambda p: torch.optim.Adam(p, lr=1e-3)``.
        batch_size: problems per iteration.
        seed: data seed.
        run_dir: folder for metrics and checkpoints (``None``: keep metrics in memory only).
        checkpoint_every: iterations between checkpoints (0: only at the end).
        progress: show a tqdm bar (only when stderr is a terminal).
        device: where the network and data live (default: the network's device).
        trackers: also log to these (``"tensorboard"``, ``"mlflow"``; each needs its package),
            see :mod:`physgrad.training.tracking`.
        meta: extra entries stored in the checkpoint and checked on resume (experiment name…).
        heldout: fixed problems to score the network on (eval mode, no gradients), e.g. from
            :func:`~physgrad.training.evaluation.heldout_batch`; ``None``: no evaluation.
        eval_every: evaluate ``heldout`` every this many iterations (0: only at the start and
            the end of :meth:`train`). Results: :attr:`evaluations` and ``run_dir/heldout.csv``
            (column ``iteration`` = number of training steps done, then the problem's metrics).
        compile: run the network through ``torch.compile`` (minutes of compilation up front,
            then faster steps; worth it for long runs only, see BENCHMARKS.md).
        shown: the logged columns the progress line shows (those the run logs).

    Logged per iteration: ``loss``, the problem's metrics of the prediction on the training
    batch, ``step_time`` (wall-clock seconds of the whole iteration: data, network, physics,
    solver, backward, optimizer step, metrics) and ``cpu_time`` (CPU seconds of this process in
    it, summed over its threads: less sensitive to other jobs on a shared machine).
    """

    def __init__(
        self,
        problem: Problem,
        network: nn.Module,
        method: Method,
        optimizer: OptimizerFactory,
        *,
        batch_size: int,
        seed: int = 0,
        run_dir: Path | str | None = None,
        checkpoint_every: int = 0,
        progress: bool = True,
        device: torch.device | str | None = None,
        trackers: Sequence[str] = (),
        meta: dict[str, Any] | None = None,
        heldout: Batch | None = None,
        eval_every: int = 0,
        compile: bool = False,
        shown: Sequence[str] = ("loss", "x_l1"),
    ):
        if not isinstance(problem, Problem):
            raise TypeError(f"problem must be a physgrad Problem, got {type(problem).__name__}")
        if not isinstance(network, nn.Module):
            raise TypeError(f"network must be a torch.nn.Module, got {type(network).__name__}")
        if not isinstance(method, Method):
            raise TypeError(f"method must be a physgrad Method, got {type(method).__name__}")
        self.problem, self.method = problem, method
        self.batch_size = check_positive_int("batch_size", batch_size)
        try:  # an int or a numpy integer (not a float), in [0, 2**64 - 1]
            self.seed = check_seed(seed if isinstance(seed, bool) else operator.index(seed))
        except TypeError:
            raise TypeError(f"seed must be an int, got {seed!r}") from None
        if checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {checkpoint_every}")
        self.checkpoint_every = checkpoint_every
        self.device = check_device(device) if device is not None else _module_device(network)
        self.network = (network if takes_batch(network) else adapt(network)).to(self.device)
        self.rank, self.world_size = rank_and_world()
        if self.batch_size % self.world_size:
            raise ValueError(
                f"batch_size {self.batch_size} is not divisible by the {self.world_size} processes"
            )
        self.model: nn.Module = self.network
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.network, device_ids=device_ids)
        if compile:
            self.model = torch.compile(self.model)
        self.optimizer = optimizer(self.network.parameters())
        if not isinstance(self.optimizer, torch.optim.Optimizer):
            raise TypeError(
                "optimizer must be a factory params -> torch.optim.Optimizer; it returned "
                f"{type(self.optimizer).__name__}"
            )
        method.setup(self.network)  # e.g. HalfInverse needs the network's per-sample Jacobian
        self.generator = torch.Generator().manual_seed(self.seed)
        self.iteration = 0
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.writes = self.rank == 0 and self.run_dir is not None
        self.progress = progress and self.rank == 0
        self.shown = tuple(shown)
        self.trackers = check_trackers(trackers)
        self.meta = {"method": method.name, **(meta or {})}
        self.history = History()
        self.wall_time = 0.0
        if eval_every < 0:
            raise ValueError(f"eval_every must be >= 0, got {eval_every}")
        if heldout is not None and not isinstance(heldout, Batch):
            raise TypeError(f"heldout must be a physgrad Batch, got {type(heldout).__name__}")
        self.heldout, self.eval_every = heldout, eval_every
        self.evaluations = History()
        self._calibration: Batch | None = None

    # -- persistence ---------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        """``run_dir/checkpoint.pt``, or ``None`` without a run folder."""
        return self._file("checkpoint.pt")

    def _file(self, name: str) -> Path | None:
        return None if self.run_dir is None else self.run_dir / name

    def save(self) -> None:
        """Write the checkpoint (atomically); only rank 0 writes."""
        if not self.writes:
            return
        save_checkpoint(
            self.checkpoint_path,
            {
                **self.meta,
                "iteration": self.iteration,
                "seed": self.seed,
                "wall_time": self.wall_time,
                "model": self.network.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(),
            },
        )

    def resume(self) -> bool:
        """Load ``run_dir/checkpoint.pt`` if present; return whether training continues from it."""
        path = self.checkpoint_path
        if path is None or not path.exists():
            return False
        data = load_checkpoint(path, expect={**self.meta, "seed": self.seed})
        try:
            self.network.load_state_dict(data["model"])
            self.optimizer.load_state_dict(data["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            msg = f"checkpoint {str(path)!r} does not fit this network: {short_text(exc)}"
            raise ValueError(msg) from None
        self.generator.set_state(data["generator"])
        self.iteration = int(data["iteration"])
        self.wall_time = float(data.get("wall_time", 0.0))
        # rows written after the checkpoint are redone; an evaluation at the checkpoint's
        # iteration scored exactly the saved weights, so it is kept
        self.history = _rows_before(self._file("metrics.csv"), self.iteration)
        self.evaluations = _rows_before(self._file("heldout.csv"), self.iteration + 1)
        return True

    # -- training ------------------------------------------------------------------------
    def predict(self, batch: Batch) -> torch.Tensor:
        """Network prediction ``x`` for a batch (with gradients): the adapted model called with
        the batch.

        Args:
            batch: a mini-batch on the trainer's device.

        Returns:
            ``x`` of shape ``(B, *x_shape)``, as the problem's physics expects it.
        """
        return self.model(batch)

    def step(self) -> dict[str, float]:
        """One training iteration; returns the logged row."""
        start, cpu_start = time.perf_counter(), time.process_time()
        batch = self.problem.sample(self.batch_size, self.generator)
        if self.world_size > 1:  # this rank's contiguous equal share of the global batch
            size = len(batch) // self.world_size
            batch = batch[self.rank * size : (self.rank + 1) * size]
        if batch.y_target.device != self.device:
            batch = batch.to(self.device)
        self.network.train()
        x = _check_x_shape(self.predict(batch), batch)
        if not bool(torch.isfinite(x).all()):
            raise TrainingDiverged(
                f"network prediction became NaN/inf at iteration {self.iteration}"
            )
        try:
            loss = self.method.loss(x, batch, self.problem)
        except NonFiniteError as exc:
            raise TrainingDiverged(f"{exc} at iteration {self.iteration}") from None
        if not bool(torch.isfinite(loss)):
            raise TrainingDiverged(
                f"loss became {float(loss.detach())} at iteration {self.iteration}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = dict(self.network.named_parameters())
        grads = {name: p.grad for name, p in params.items() if p.grad is not None}
        self._check_finite(grads, "gradient of {}")
        self.optimizer.step()
        self._check_finite(params, "weight {}")
        metrics = self.problem.metrics(x.detach(), batch)
        names = ["loss", *metrics]
        # one device-to-host transfer for all logged values (one sync per value on a GPU)
        values = torch.stack(
            [loss.detach().double(), *(v.detach().double().mean() for v in metrics.values())]
        ).tolist()
        row = {"iteration": float(self.iteration), **dict(zip(names, values, strict=True))}
        row["step_time"] = time.perf_counter() - start
        row["cpu_time"] = time.process_time() - cpu_start
        row = mean_across_ranks(row)
        self.iteration += 1
        self.wall_time += row["step_time"]
        return row

    def _check_finite(self, tensors: dict[str, torch.Tensor], what: str) -> None:
        """Raise :class:`TrainingDiverged` naming the first tensor with a NaN/inf entry.

        One fused norm over all tensors and a single host sync; only when that norm is not
        finite are the tensors checked one by one (a finite tensor whose norm overflows is
        no divergence).
        """
        if not tensors:
            return
        norms = torch._foreach_norm(list(tensors.values()))
        if bool(torch.isfinite(torch.stack(norms)).all()):
            return
        for name, t in tensors.items():
            if not bool(torch.isfinite(t).all()):
                msg = f"{what.format(name)} became NaN/inf at iteration {self.iteration}"
                raise TrainingDiverged(msg)

    def evaluate(self) -> dict[str, float]:
        """Score the network on :attr:`heldout` (no gradients); the row is also appended to
        :attr:`evaluations` with ``iteration`` = training steps done so far.

        A network with batch norm is scored in eval mode with statistics re-estimated for its
        current weights on calibration problems (as many as held-out ones, drawn once with
        :data:`~physgrad.training.evaluation.CALIBRATION_SEED`):
        :func:`~physgrad.training.evaluation.with_precise_batchnorm`. The network itself and
        the training data stream are untouched.
        """
        if self.heldout is None:
            raise ValueError("this Trainer has no held-out problems (heldout=None)")
        if self._calibration is None and has_batchnorm(self.network):
            self._calibration = heldout_batch(self.problem, len(self.heldout), CALIBRATION_SEED)
        scored = self.network
        if self._calibration is not None:
            scored = with_precise_batchnorm(  # the adapted network is fed the batch itself
                self.network, lambda batch: batch, self._calibration, device=self.device
            )
        was_training = self.network.training
        scored.eval()
        try:
            scores = evaluate(self.problem, lambda part: _check_x_shape(scored(part), part),
                              self.heldout, device=self.device)
        finally:
            self.network.train(was_training)
        row = {"iteration": float(self.iteration), **scores}
        self.evaluations.append(row)
        return row

    def train(self, iterations: int, *, resume: bool = False) -> History:
        """Train until ``iterations`` iterations have been done in total.

        With ``resume=True`` an existing checkpoint in ``run_dir`` is continued (the data
        stream, optimizer state and metrics pick up exactly where it stopped). Without it,
        an existing run folder is overwritten.
        """
        check_positive_int("iterations", iterations)
        if resume:
            self.resume()
        if self.writes:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        trackers = open_trackers(self.trackers, self.run_dir, self.meta) if self.writes else []
        bar = _Progress(
            total=iterations,
            initial=self.iteration,
            enabled=self.progress,
            desc=self.meta["method"],
            shown=self.shown,
        )
        self._evaluate_if_due(trackers, final=False)
        stop = _StopRequest()
        finished = False
        try:
            with stop:
                while self.iteration < iterations:
                    if stop.signal is not None:
                        # stop between iterations, so the checkpoint is a consistent state
                        self._flush()
                        self.save()
                        raise KeyboardInterrupt(f"{stop.signal} at iteration {self.iteration}")
                    row = self.step()
                    self._log(row, trackers, bar)
                    self._evaluate_if_due(trackers, final=self.iteration >= iterations)
                    if self.checkpoint_every and self.iteration % self.checkpoint_every == 0:
                        self._flush()
                        self.save()
            finished = True
        finally:
            bar.close()
            self._flush()
            for tracker in trackers:
                tracker.close(finished)
        self.save()
        self._write_summary()
        return self.history

    # -- helpers -------------------------------------------------------------------------
    def _log(self, row: dict[str, float], trackers: list[Tracker], bar: Any) -> None:
        self.history.append(row)
        for tracker in trackers:
            tracker.log(row, int(row["iteration"]))
        bar.update(row)

    def _evaluate_if_due(self, trackers: list[Tracker], *, final: bool) -> None:
        if self.heldout is None or self.rank != 0:
            return
        done = self.evaluations.columns.get("iteration", [])
        if done and done[-1] == self.iteration:
            return
        due = self.eval_every and self.iteration % self.eval_every == 0
        if not (final or due or self.iteration == 0 or not done):
            return
        row = self.evaluate()
        for tracker in trackers:
            tracker.log({f"heldout/{k}": v for k, v in row.items() if k != "iteration"},
                        self.iteration)

    def _flush(self) -> None:
        """Rewrite metrics.csv and heldout.csv (each atomically) with every row so far."""
        for name, rows in (("metrics.csv", self.history), ("heldout.csv", self.evaluations)):
            if self.writes and len(rows):
                _write_csv(self.run_dir / name, rows)

    def _write_summary(self) -> None:
        if not self.writes or not len(self.history):
            return
        last = {k: v[-1] for k, v in self.history.columns.items()}
        heldout = {k: v[-1] for k, v in self.evaluations.columns.items()} or None
        summary = {
            **self.meta,
            "iterations": self.iteration,
            "final": last,
            "heldout": heldout,
            "threads": torch.get_num_threads(),
            "wall_time_s": self.wall_time,
            "iterations_per_s": self.iteration / self.wall_time if self.wall_time else None,
            "versions": {"python": platform.python_version(), "torch": torch.__version__},
            "device": str(self.device),
            "world_size": self.world_size,
        }
        text = json.dumps(summary, indent=2, default=str)
        atomic_write(self.run_dir / "summary.json", lambda tmp: Path(tmp).write_text(text))


class _StopRequest:
    """Turns SIGINT/SIGTERM into a request the loop honours after the current iteration.

    A second signal interrupts at once (default behaviour). Outside the main thread, where
    handlers cannot be installed, signals keep their default behaviour.
    """

    def __init__(self) -> None:
        self.signal: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt(signal.Signals(signum).name)
        self.signal = signal.Signals(signum).name

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _write_csv(path: Path, history: History) -> None:
    """``history`` as CSV (a header, then one row per logged iteration; numbers by ``repr``)."""
    columns = [[repr(float(v)) for v in values] for values in history.columns.values()]

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(history.columns)
            w.writerows(zip(*columns, strict=True))

    atomic_write(path, write)


def _check_x_shape(x: torch.Tensor, batch: Batch) -> torch.Tensor:
    """``x`` (the network's prediction), checked against the shape of the batch's ground truth
    when it has one: a network of the wrong output size fails here, naming both shapes, not
    somewhere inside the user's physics. A shape comparison only (no sync, no numbers)."""
    if batch.x_true is not None and x.shape != batch.x_true.shape:
        raise ValueError(
            f"network output shape {tuple(x.shape)} does not match the problem's x_true shape "
            f"{tuple(batch.x_true.shape)} (B, *x_shape)"
        )
    return x


def _module_device(module: nn.Module) -> torch.device:
    return next((p.device for p in module.parameters()), torch.device("cpu"))


def _rows_before(path: Path | None, iteration: int) -> History:
    """The rows of a metrics CSV with ``iteration`` below the given one."""
    kept = History()
    if path is None or not path.exists():
        return kept
    old = History.read_csv(path)
    for i, it in enumerate(old.columns.get("iteration", [])):
        if it < iteration:
            kept.append({k: v[i] for k, v in old.columns.items()})
    return kept


class _Progress:
    """A tqdm bar on a terminal; otherwise (piped, CI, a log file) a plain line at most
    every :attr:`every_s` seconds and at the end, so long runs show they are alive."""

    every_s = 30.0

    def __init__(self, total: int, initial: int, enabled: bool, desc: str,
                 shown: Sequence[str]):
        self.total, self.done, self.desc, self.shown = total, initial, desc, shown
        self.enabled = enabled
        self.bar: Any = None
        self.start = self.last = time.monotonic()
        self.first = initial
        if enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total, initial=initial, desc=desc, dynamic_ncols=True, leave=False
            )

    def update(self, row: dict[str, float]) -> None:
        self.done += 1
        values = {k: f"{row[k]:.3g}" for k in self.shown if k in row}
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(values)
            return
        now = time.monotonic()
        if self.enabled and (now - self.last >= self.every_s or self.done == self.total):
            self.last = now
            rate = (self.done - self.first) / max(now - self.start, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else math.inf
            text = " ".join(f"{k} {v}" for k, v in values.items())
            print(f"{self.desc}: iteration {self.done}/{self.total} {text} "
                  f"({rate:.3g} it/s, {eta:.0f} s left, {torch.get_num_threads()} threads)",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
