"""``physgrad`` command line: list, run, compare and demo. It only wires library pieces."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import os
import sys
import time
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import physgrad
from physgrad._validation import short, short_text
from physgrad.config import (
    SCALES,
    OptimizerConfig,
    RunConfig,
    RunOptions,
    TrainingConfig,
    apply_overrides,
    configure_experiment,
    load_config_file,
    set_key,
)

# command-line flag -> dotted config key (flags override the --config file; --set wins last)
FLAG_KEYS = {
    "experiment": "experiment",
    "problem": "problem_fn",
    "network": "network_fn",
    "method": "method",
    "methods": "methods",
    "scale": "scale",
    "out": "out",
    "device": "device",
    "iters": "training.iterations",
    "batch_size": "training.batch_size",
    "seed": "training.seed",
    "checkpoint_every": "training.checkpoint_every",
    "compile": "training.compile",
    "lr": "optimizer.lr",
}


EXPERIMENT = dict(nargs="?", help="experiment name (see `physgrad list`; or in --config)")

# the options `run` and `compare` share: flag -> add_argument keywords
COMMON: dict[str, dict[str, Any]] = {
    "--problem": dict(help="your own problem: 'package.module:function' or 'file.py:function'"),
    "--network": dict(help="network factory for --problem (default: an MLP)"),
    "--iters": dict(type=int, help="training iterations (default: the scale's)"),
    "--seed": dict(type=int, help="seed of the initial weights and data (default 0)"),
    "--out": dict(help="output folder (default runs/<experiment>)"),
    "--scale": dict(choices=SCALES, help="preset length/batch (default cpu)"),
    "--batch-size": dict(type=int, help="override the batch size"),
    "--lr": dict(type=float, help="override the learning rate of every method"),
    "--config": dict(help="YAML/TOML/JSON run config, e.g. a run folder's config.yaml (flags "
                     "override it)"),
    "--set": dict(action="append", default=[], metavar="KEY=VALUE",
                  help="override one config key, e.g. --set problem.amount=4 --set "
                  "network.filters=32 --set training.iterations=500 (repeatable; applied last)"),
    "--resume": dict(action="store_true", help="continue from checkpoints in --out"),
    "--force": dict(action="store_true", help="start over in an --out that already holds runs"),
    "--checkpoint-every": dict(type=int, help="iterations between checkpoints (default 500; "
                               "also on Ctrl-C/SIGTERM)"),
    "--device": dict(help="torch device, e.g. cpu or cuda (default cpu)"),
    "--compile": dict(action="store_true", default=None, help="torch.compile the network: "
                      "minutes up front, faster steps (long runs only)"),
    "--tensorboard": dict(action="store_true", help="also write TensorBoard logs"),
    "--mlflow": dict(action="store_true", help="also log to MLflow ($MLFLOW_TRACKING_URI, else "
                     "a file store <out>/mlruns)"),
    "--quiet": dict(action="store_true", help="no progress bar"),
}


def _add(parser: argparse.ArgumentParser, options: dict[str, dict[str, Any]]) -> None:
    """``parser.add_argument(name, **keywords)`` for each entry of ``options``."""
    for name, keywords in options.items():
        parser.add_argument(name, **keywords)


class UsageError(ValueError):
    """A command line argparse rejects (unknown option, ``--iters 1.5``, missing argument)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line (``physgrad: error: ...``, exit 2) like
    every other physgrad error, not the usage block; ``--help`` still shows the usage."""

    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="physgrad",
        description="Train networks on inverse problems with physical gradients.",
    )
    parser.add_argument("--version", action="version", version=f"physgrad {physgrad.__version__}")
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch (default: 1 on machines with <= 4 cores or when the load "
        "average fills the machine, else the cores shared by the processes of this node)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    sub.add_parser("list", help="list the registered experiments and their methods")

    run = sub.add_parser("run", help="train one method of an experiment (or make its figure)")
    _add(run, {"experiment": EXPERIMENT,
               "--method": dict(help="method name (default: the experiment's first method)"),
               **COMMON})

    cmp = sub.add_parser(
        "compare", help="train several methods from the same init; curves + table"
    )
    _add(cmp, {
        "experiment": EXPERIMENT,
        "--methods": dict(help="comma-separated method names (default: all)"),
        "--seeds": dict(help="comma-separated seeds: one comparison per seed + a per-seed figure"),
        **COMMON,
    })

    rep = sub.add_parser(
        "reproduce", help="every experiment at one scale into one report folder (resumable)"
    )
    _add(rep, {
        "--scale": dict(choices=SCALES, default="cpu"),
        "--only": dict(help="comma-separated experiment names (default: all)"),
        "--seeds": dict(help="comma-separated seeds (curves: mean and spread)"),
        "--out": dict(default="runs/reproduce", help="report folder"),
        "--device": dict(help="torch device (default cpu)"),
        "--quiet": dict(action="store_true", help="no progress bars"),
        "--resume": dict(action="store_true", help="continue a run in --out"),
        "--force": dict(action="store_true", help="start over in an existing --out"),
    })

    demo = sub.add_parser(
        "demo", help="< 3 min CPU demo: Adam vs Adam + physical gradients (heat or sine)"
    )
    _add(demo, {
        "problem": dict(nargs="?", default="heat", choices=["heat", "sine"], help="heat (default: "
                        "inverse heat equation with a U-Net, ~1-2 min) or sine (~30 s)"),
        "--out": dict(help="output folder (default runs/demo-<problem>)"),
        "--iters": dict(type=int, help="iterations per method (default 4000 sine, 200 heat)"),
        "--quiet": COMMON["--quiet"],
    })

    diag = sub.add_parser(
        "diagnose",
        help="seconds-long look at your problem before training: conditioning, multimodality, "
        "solver cost, which methods to compare",
    )
    _add(diag, {
        "--problem": dict(required=True, help="module:function returning a Problem"),
        "--samples": dict(type=int, default=8, help="problems to examine (default 8)"),
        "--seed": dict(type=int, default=0, help="sampler seed (default 0)"),
        "--json": dict(action="store_true", help="print the measurements as JSON"),
    })
    return parser


def cmd_diagnose(args: argparse.Namespace) -> int:
    """``physgrad diagnose --problem module:function [--samples N] [--seed S] [--json]``."""
    import json

    from physgrad.diagnose import diagnose
    from physgrad.problems.custom import load_problem

    if args.samples < 2:
        raise ValueError(f"--samples must be >= 2, got {args.samples}")
    result = diagnose(load_problem(args.problem), samples=args.samples, seed=args.seed)
    if args.json:
        print(json.dumps(dataclasses.asdict(result), indent=2))
    else:
        print(f"physgrad diagnose {args.problem}\n")
        print(result.report())
        if result.methods:
            print(f"\nnext: physgrad compare --problem {args.problem} --methods "
                  + ",".join(result.methods))
    return 0


def _configured(args: argparse.Namespace, trains: bool = False) -> tuple[Any, ...]:
    """``(data, config, experiment, out)`` of ``run``/``compare``: the ``--config`` file, then
    the flags, then ``--set`` as a mapping and as the validated :class:`RunConfig`, the
    configured experiment (:func:`_experiment`) and the output folder."""
    data = load_config_file(args.config) if args.config else {}
    for flag, key in FLAG_KEYS.items():
        value = getattr(args, flag, None)
        if value is not None:
            set_key(data, key, value)
    if getattr(args, "seeds", None) is not None:
        set_key(data, "seeds", _split("--seeds", args.seeds, int))
    data = apply_overrides(data, getattr(args, "set", []))
    config = RunConfig.from_dict(data, source=args.config or "the command line")
    exp, config = _experiment(config, trains)
    # checked here, before `run` resolves its one method's optimizer (which drops the others)
    for name in config.optimizer.methods if hasattr(exp, "methods") else ():
        if name not in exp.methods:
            raise ValueError(
                f"unknown method {name!r} in optimizer.methods; choose one of "
                f"{', '.join(exp.methods)}"
            )
    return data, config, exp, Path(config.out if config.out is not None else f"runs/{exp.name}")


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> {dotted key: leaf value} (lists are leaves)."""
    if not isinstance(data, dict):
        return {prefix[:-1]: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flat(value, f"{prefix}{key}."))
    return out


def _options(
    args: argparse.Namespace, exp: Any, config: RunConfig, methods: list[str], **given: Any
) -> RunOptions:
    """The run's options, every value validated before any file is written, so a bad option
    leaves nothing behind (each method's optimizer is checked by :func:`_resolved`)."""
    if args.resume and args.force:
        raise ValueError("--resume continues runs and --force starts them over: give one")
    for name in methods:
        exp.check_method(name)
    trackers = tuple(n for n in ("tensorboard", "mlflow") if getattr(args, n, False))
    options = config.run_options(resume=args.resume, force=args.force,
                                 progress=not args.quiet, trackers=trackers,
                                 threads=args.threads, **given)
    return options


def _experiment(config: RunConfig, trains: bool = False) -> tuple[Any, RunConfig]:
    """The configured experiment and the config with every problem/network value filled in
    (``trains``: it must be a training experiment)."""
    from physgrad.experiments.base import FigureExperiment, get_experiment

    if config.network_fn and not config.problem_fn:  # was silently ignored
        raise ValueError(
            f"--network {short(config.network_fn)} applies only to your own --problem; a "
            "registered experiment's network is changed with --set network.<key>=<value>"
        )
    if config.problem_fn:
        from physgrad.experiments.custom import custom_experiment

        exp = custom_experiment(config.problem_fn, config.network_fn)
    elif not config.experiment:
        raise ValueError(
            "no experiment given: name one (see `physgrad list`), use --problem, or --config"
        )
    else:
        exp = get_experiment(config.experiment)
    if trains and isinstance(exp, FigureExperiment):
        raise ValueError(
            f"experiment {exp.name!r} makes a figure and has no methods; use `physgrad run "
            f"{exp.name}`"
        )
    exp, params = configure_experiment(exp, config)
    return exp, dataclasses.replace(config, **params)


def cmd_list(_: argparse.Namespace) -> int:
    from physgrad.experiments.base import list_experiments

    for exp in list_experiments():
        print(f"{exp.name}  ({exp.paper})\n    {exp.description}")
        if methods := getattr(exp, "methods", None):
            print(f"    methods: {', '.join(methods)}")
        else:
            print("    makes its figure with `physgrad run " + exp.name + "`")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from physgrad.experiments.base import FigureExperiment
    from physgrad.experiments.runner import initial_weights, method_optimizer, run_method
    from physgrad.report.figures import render

    data, config, exp, out = _configured(args)
    if isinstance(exp, FigureExperiment):
        unused = [k for k in _flat(data) if k.split(".")[0] in ("method", "training", "optimizer")]
        unused += [f"--{n}" for n in ("tensorboard", "mlflow") if getattr(args, n)]
        if unused:  # they were silently ignored
            raise ValueError(
                f"experiment {exp.name!r} makes a figure and trains no method, so "
                f"{', '.join(unused)} would be ignored; only --scale and --out apply"
            )
        _check_out(out)
        with _locked(out):
            drawn = render(exp.make(out, config.scale, not args.quiet), out)
        print(f"{exp.name}: wrote {drawn[0] if drawn else out}")
        return 0
    if config.seeds or (config.methods and not config.method):  # compare's keys: were ignored
        key, value = ("seeds", config.seeds) if config.seeds else ("methods", config.methods)
        raise ValueError(
            f"{key} {short(value)} is for `physgrad compare` (e.g. a comparison's config.yaml); "
            f"`physgrad run` trains one method with one seed: use compare, or "
            f"--set {key}=null{' --method <name>' if key == 'methods' else ''}"
        )
    method = config.method or exp.method_names()[0]
    exp.check_method(method)
    run_dir = out / method
    if args.resume:
        config = _restore(config, _flat(data), run_dir / "config.yaml")
        exp, config = _experiment(config)
    config = _resolved(exp, config, method, out, config.training.seed)
    options = _options(args, exp, config, [method], out=out)
    optimizer = method_optimizer(exp, method, options.optimizer, options.lr)
    _check_out(out)
    # --force renews init.pt too, unless other methods' runs in this folder started from it
    fresh_init = args.force and not any(
        _holds_run(d) for d in (out.iterdir() if out.is_dir() else ()) if d != run_dir
    )
    inits = [] if fresh_init else [(out / "init.pt", options.seed)]
    _check_start(options, exp, [(run_dir, method, config, optimizer)], inits)
    with _locked(run_dir):
        if args.force:
            _clear_runs([run_dir])
        if fresh_init:
            (out / "init.pt").unlink(missing_ok=True)
        init = initial_weights(exp, options.seed, out / "init.pt")
        config.save(run_dir / "config.yaml")
        history = run_method(exp, method, out, seed=options.seed, init=init, options=options)
    final = {k: v[-1] for k, v in history.columns.items() if k != "iteration"}
    print(f"{exp.name}/{method}: {len(history)} iterations, final " + _fmt_row(final))
    print(f"metrics: {out / method / 'metrics.csv'}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from physgrad.experiments.base import Result
    from physgrad.experiments.runner import (
        compare,
        compare_seeds,
        method_optimizer,
        seeds_figures,
        seeds_table,
    )
    from physgrad.report.figures import render

    data, config, exp, out = _configured(args, trains=True)
    if config.method:  # run's key: it was ignored, and such a config's optimizer is that method's
        raise ValueError(
            f"method {config.method!r} is for `physgrad run` (a run folder's config.yaml records "
            f"that method's optimizer, which compare would give to every method): use "
            f"`physgrad run --config`, the comparison's own config.yaml, or --set method=null"
        )
    if args.resume:
        config = _restore(config, _flat(data), out / "config.yaml")
        exp, config = _experiment(config, trains=True)
    methods = config.methods or list(exp.default_methods)
    training = _sized(exp, config)
    config = dataclasses.replace(config, methods=methods, out=str(out), training=training)
    options = _options(args, exp, config, methods)
    seeds = config.seeds
    folders = [(out / f"seed{s}", s) for s in seeds] if seeds else [(out, training.seed)]
    runs = [
        (folder / m, m, _resolved(exp, config, m, folder, seed),
         method_optimizer(exp, m, options.optimizer, options.lr))
        for folder, seed in folders
        for m in methods
    ]
    _check_out(out)
    inits = [] if args.force else [(folder / "init.pt", seed) for folder, seed in folders]
    _check_start(options, exp, runs, inits)
    with _locked(out, *[run_dir for run_dir, *_ in runs]):
        if args.force:
            _clear_runs([run_dir for run_dir, *_ in runs])
            for folder, _ in folders:
                (folder / "init.pt").unlink(missing_ok=True)
        config.save(out / "config.yaml")
        for run_dir, _, run_config, _ in runs:
            run_config.save(run_dir / "config.yaml")
        if seeds:
            comparisons = compare_seeds(exp, methods, out, seeds, options=options)
            for c in comparisons:
                render(c)
            render(Result(seeds_figures(comparisons)), out)
            print(seeds_table(comparisons))
            print(f"\nwrote {out / 'seeds.png'} and {out / 'results.md'}")
            return 0
        comparison = compare(exp, methods, out, seed=training.seed, options=options)
        render(comparison)
    print(comparison.markdown_table())
    print("\n" + comparison.legend())
    print(f"\nwrote {comparison.out / 'curves.png'} and {comparison.out / 'results.md'}")
    return 0


# ---- checks before anything is written --------------------------------------------------

RUN_FILES = ("checkpoint.pt", "metrics.csv", "summary.json")
"""A method folder holding any of these holds a (finished or interrupted) run."""

RESUME_MAY_CHANGE = ("training.iterations", "training.checkpoint_every", "device", "out",
                     "methods", "seeds")
"""Config keys a resume may change; every other given key must match the recorded run."""


def _sized(exp: Any, config: RunConfig, **changes: Any) -> TrainingConfig:
    """``config.training`` with the scale's length and batch size where it sets none (and
    ``changes`` applied)."""
    sc, t = exp.scale(config.scale), config.training
    return dataclasses.replace(t, iterations=t.iterations or sc.iterations,
                               batch_size=t.batch_size or sc.batch_size, **changes)


def _resolved(exp: Any, config: RunConfig, method: str, out: Path, seed: int) -> RunConfig:
    """The config one method's run folder records: every value resolved (the scale's length
    and batch, the method's optimizer, the device), so it repeats the run exactly."""
    from physgrad.experiments.runner import method_optimizer
    from physgrad.training.optimizers import OptimizerSpec, learning_rate

    training = _sized(exp, config, seed=seed)
    used = method_optimizer(exp, method, dataclasses.asdict(config.optimizer))
    if isinstance(used, OptimizerSpec):
        optimizer = OptimizerConfig(**used.record())
    else:  # a factory function: only its learning rate is known
        optimizer = dataclasses.replace(config.optimizer, lr=learning_rate(used), methods={})
    return dataclasses.replace(
        config,
        method=method,
        methods=None,
        seeds=None,
        out=str(out),
        device=config.device or "cpu",
        training=training,
        optimizer=optimizer,
    )


def _restore(config: RunConfig, given: dict[str, Any], stored_path: Path) -> RunConfig:
    """``--resume``: the recorded config of the run (except its device), with the keys given
    now; a given key that differs from the record (other than :data:`RESUME_MAY_CHANGE`) is
    refused."""
    if not stored_path.is_file():
        return config
    stored = RunConfig.from_dict(load_config_file(stored_path), source=str(stored_path))
    recorded, now = _flat(stored.to_dict()), _flat(config.to_dict())
    for key in given:
        if key in RESUME_MAY_CHANGE or key not in now or key not in recorded:
            continue
        if recorded[key] is not None and now[key] != recorded[key]:
            raise ValueError(
                f"--resume: {key} = {short(now[key])} differs from the run's {short(recorded[key])}"
                f" ({str(stored_path)!r}); drop it to continue the run, or use --force to start"
                " over"
            )
    data = stored.to_dict()
    data["device"] = None  # the machine's, not the recorded one: a GPU run resumes on a CPU
    for key in given:
        if key in now:
            set_key(data, key, now[key])
    return RunConfig.from_dict(data, source=str(stored_path))


def _out_folder(text: str) -> Path:
    """``--out`` as typed, checked: ``''`` would be the working folder (``Path('')`` is
    ``.``), so it is refused before :func:`_check_out` sees it."""
    if not text.strip():
        raise ValueError(f"--out must name a folder, got {short(text)}")
    out = Path(text)
    _check_out(out)
    return out


def _check_out(out: Path) -> None:
    """``--out`` must be (or become) a writable folder."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file, not a folder")
    parent = out
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"--out {str(out)!r} lies under {str(parent)!r}, which is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--out {str(out)!r}: no permission to write in {str(parent)!r}")


def _check_start(
    options: RunOptions,
    exp: Any,
    runs: list[tuple[Path, str, RunConfig, Any]],
    inits: list[tuple[Path, int]],
) -> None:
    """Refuse to overwrite runs (unless ``--force``) and check that ``--resume`` can continue
    every run (``(run folder, method, its config, its optimizer)``) from its checkpoint and
    reuse every ``(init.pt, seed)``, before anything is written."""
    from physgrad.experiments.runner import init_meta, recorded, run_meta
    from physgrad.training.checkpoint import check_entries, load_checkpoint

    started = [d for d, *_ in runs if _holds_run(d)]
    if started and not (options.resume or options.force):
        raise ValueError(
            f"{str(started[0])!r} already holds a run; pass --resume to continue it or --force "
            "to start over"
        )
    for path, seed in inits:
        if path.exists():
            load_checkpoint(path, expect=init_meta(exp, seed))
    for run_dir, method, config, optimizer in runs:
        path = run_dir / "checkpoint.pt"
        if options.resume and path.exists():
            meta = run_meta(exp, method, config.training.batch_size, optimizer)
            expect = {**meta, "seed": config.training.seed}
            checkpoint = load_checkpoint(path)
            check_entries(path, recorded(exp, method, checkpoint), expect)
            _check_logs(run_dir, int(checkpoint.get("iteration", 0)))


def _check_logs(run_dir: Path, iteration: int) -> None:
    """``--resume`` keeps the rows of ``metrics.csv``/``heldout.csv`` before the checkpoint:
    a damaged file is refused now rather than found (or silently emptied) mid-resume."""
    from physgrad.training.trainer import History

    metrics = run_dir / "metrics.csv"
    if metrics.exists() and iteration > 0 and not len(History.read_csv(metrics)):
        raise ValueError(
            f"{str(metrics)!r} holds no rows, but the checkpoint is at iteration {iteration}: "
            "restore the file, or start over with --force"
        )
    if (run_dir / "heldout.csv").exists():
        History.read_csv(run_dir / "heldout.csv")


def _holds_run(run_dir: Path) -> bool:
    return any((run_dir / name).exists() for name in RUN_FILES)


def _clear_runs(run_dirs: list[Path]) -> None:
    """``--force``: remove what earlier runs left in these method folders."""
    import shutil

    for run_dir in run_dirs:
        for name in (*RUN_FILES, "heldout.csv", "config.yaml", "mlflow_run_id"):
            (run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(run_dir / "tensorboard", ignore_errors=True)


@contextlib.contextmanager
def _locked(*folders: Path) -> Iterator[None]:
    """Create ``folders`` and hold an exclusive lock on each (``flock`` on the folder itself,
    so no lock file is left behind) for the command: a second physgrad writing to the same
    method folder (or, for ``compare``, the same ``--out``) gets a one-line error instead of
    mixing its files with this one's. Runs of different methods in one ``--out`` may run side
    by side. Locks are released when the command ends or the process dies; under torchrun
    only rank 0 locks."""
    from physgrad.training.distributed import rank_and_world

    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        fcntl = None
    fds: list[int] = []
    created: list[Path] = []  # removed again if a lock is refused
    try:
        for folder in folders:
            missing = [p for p in (folder, *folder.parents) if not p.exists()]
            folder.mkdir(parents=True, exist_ok=True)
            created += reversed(missing)
            if fcntl is None or rank_and_world()[0] != 0:
                continue
            fds.append(os.open(folder, os.O_RDONLY))
            try:
                fcntl.flock(fds[-1], fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                for path in reversed(created):
                    with contextlib.suppress(OSError):
                        path.rmdir()
                raise ValueError(
                    f"{str(folder)!r} is in use by another physgrad run (it holds the "
                    "folder's lock); wait for it to finish or choose another --out"
                ) from None
            except OSError:  # a file system without flock: run unlocked
                pass
        yield
    finally:
        for fd in fds:
            os.close(fd)  # releases the lock


DEMO_INTRO = {
    "sine": "physgrad demo: learn x with sin(a/x) = -1 for a ~ U[0.1, 10.1) (paper Sec. 3.1).\n"
    "Same network, same init, same data; only the gradient fed to Adam differs:\n"
    "  Adam            backprop of |sin(a/x) + 1| through the physics, dL/dx clamped\n"
    "                  to [-1, 1] (the paper's B.2 baseline)\n"
    "  Adam + PG       physical gradient from the analytic inverse (nearest solution)\n",
    "heat": "physgrad demo heat: recover a 64x64 initial temperature x from y = heat(x, t nu = 8)\n"
    "(paper Sec. 3.3). A U-Net (37,697 parameters), same init and data for both:\n"
    "  Adam            backprop through the diffusion (high frequencies vanish from it)\n"
    "  Adam + PG       physical gradient from the noise-aware inverse solver\n",
}


def cmd_demo(args: argparse.Namespace) -> int:
    from physgrad.experiments.base import get_experiment
    from physgrad.experiments.runner import compare
    from physgrad.report.figures import render

    if args.iters is not None and args.iters < 1:
        raise ValueError(f"iterations must be >= 1, got {args.iters}")
    out = _out_folder(f"runs/demo-{args.problem}" if args.out is None else args.out)
    sine = args.problem == "sine"
    print(DEMO_INTRO[args.problem])
    start = time.perf_counter()
    if sine:
        # a shorter running mean than the paper's 1000 batches suits a 4000-iteration run
        exp = dataclasses.replace(get_experiment("sine"), smoothing=200)
        pg, iterations, batch_size = "pg-analytic", 4000, 1000
    else:
        # 64 held-out problems instead of 256: scoring them (with batch-norm statistics
        # re-estimated on as many calibration problems) every 4 iterations would otherwise
        # cost more than training
        exp = dataclasses.replace(get_experiment("heat"), smoothing=32, heldout=64)
        pg, iterations, batch_size = "pg-inverse", 200, 16
    comparison = compare(
        exp,
        ["adam", pg],
        out,
        iterations=args.iters or iterations,
        batch_size=batch_size,
        progress=not args.quiet,
    )
    render(comparison)
    print(comparison.markdown_table())
    gain, seconds = comparison.ratio(pg), time.perf_counter() - start
    if sine:
        print(
            f"\nOn this one seed Adam + PG ends {gain:.3g}x more accurate than Adam "
            f"(|sin(a/x) + 1|, running mean over the last 200 batches; {seconds:.0f} s).\n"
            "This is one draw, not a result: training on sin(a/x) is chaotic, and the ratio of a\n"
            "single seed changes by orders of magnitude with the seed, and even with the machine\n"
            "(the order of float additions). The claim is the distribution over 20 seeds in\n"
            "docs/results/sine-seeds/README.md (made by benchmarks/sine_seeds.py)."
        )
    else:
        print(
            f"\nOn this one seed Adam + PG ends {gain:.3g}x more accurate than Adam (||x - x*||_1, "
            f"running\nmean over the last 32 batches; {seconds:.0f} s). This is one draw: the "
            f"ratio moves with the seed.\n{_heat_seed_evidence()}"
        )
    print(f"learning curves: {comparison.out / 'curves.png'}")
    if not sine:
        print(f"reconstructions: {comparison.out / 'reconstructions.png'}")
    return 0


SEED_EVIDENCE = "docs/results/reproduce-cpu-seeds"
"""The committed multi-seed heat/Poisson study the heat demo points to (repository-relative)."""


def _heat_seed_evidence() -> str:
    """Where the multi-seed heat claim is, with its mean and interval read from the committed
    CSVs (only the pointer when the repository's docs/results are not there, e.g. in a
    pip-installed package)."""
    from physgrad.report.seed_stats import heldout_ratio

    where = f"{SEED_EVIDENCE}/README.md"
    r = heldout_ratio(Path(__file__).resolve().parents[2] / SEED_EVIDENCE / "heat",
                      "pg-inverse", "x_l1")
    if r is None:
        return f"The claim is the distribution over seeds in {where} (in the repository)."
    return (f"Over {r.seeds} seeds at {r.iterations} iterations Adam + PG's held-out error is "
            f"{r.mean:.3g}x [{r.low:.3g}, {r.high:.3g}] lower\nthan Adam's (geometric mean, "
            f"95% interval; batch-norm statistics re-estimated): {where}.")


def _join_torchrun(args: argparse.Namespace) -> None:
    """Under torchrun: join the process group, default to this rank's GPU, and keep the
    other ranks quiet (rank 0 prints and writes)."""
    from physgrad.training.distributed import default_device, init_from_env, rank_and_world

    if not init_from_env():
        return
    if args.device is None:
        args.device = str(default_device())
    if rank_and_world()[0] != 0:
        args.quiet = True
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process


def _split(flag: str, text: str, kind: type = str) -> list[Any]:
    """``text`` split at commas into ``kind`` values (``int``: integers, ``str``: names)."""
    try:
        values = [kind(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:  # "" or ",," would silently mean the default (every seed, every name)
        what = "integers" if kind is int else "names"
        raise ValueError(f"{flag} must be comma-separated {what}, got {short(text)}")
    return values


def cmd_reproduce(args: argparse.Namespace) -> int:
    from physgrad.experiments.base import RunOptions
    from physgrad.report.reproduce import command_line, reproduce

    only = _split("--only", args.only) if args.only is not None else None
    seeds = _split("--seeds", args.seeds, int) if args.seeds is not None else [0]
    options = RunOptions(out=_out_folder(args.out), scale=args.scale, seeds=tuple(seeds),
                         device=args.device, resume=args.resume, force=args.force,
                         progress=not args.quiet, threads=args.threads)
    report = reproduce(options, only=only, command=command_line())
    print(f"report: {report} (and {report.with_suffix('.html')})")
    return 0


def _last_checkpoint(failed: str | None, fix: str = "make room") -> str:
    """Where a run that failed to write ``failed`` can continue from (once the user did
    ``fix``)."""
    from physgrad.training.checkpoint import load_checkpoint

    path = Path(failed or ".").with_name("checkpoint.pt")
    try:
        iteration = load_checkpoint(path)["iteration"]
    except (ValueError, OSError, KeyError):
        return f"no checkpoint of this run was written yet: {fix} and rerun with --force"
    return (
        f"the last good checkpoint {str(path)!r} (iteration {iteration}) is kept: {fix} "
        "and rerun with --resume"
    )


def _fmt_row(row: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in row.items())


COMMANDS = {
    "list": cmd_list,
    "run": cmd_run,
    "compare": cmd_compare,
    "reproduce": cmd_reproduce,
    "demo": cmd_demo,
    "diagnose": cmd_diagnose,
}


def _set_threads(args: argparse.Namespace) -> None:
    """``--threads``, or :func:`~physgrad.training.distributed.default_threads`; each run
    records the count in its summary.json and its plain progress lines."""
    import torch

    from physgrad.training.distributed import default_threads

    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(default_threads() if args.threads is None else args.threads)


def main(argv: list[str] | None = None) -> int:
    from physgrad.training.checkpoint import CheckpointError, WriteError
    from physgrad.training.trainer import TrainingDiverged

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"physgrad: error: {short_text(exc, 400)}", file=sys.stderr)
        return 2
    try:
        _set_threads(args)
        if args.command in ("run", "compare"):
            _join_torchrun(args)
        code = COMMANDS[args.command](args)
        from physgrad.training.distributed import leave

        leave()
        return code
    except TrainingDiverged as exc:
        print(f"physgrad: training stopped: {exc} (checkpoints written before it are kept)",
              file=sys.stderr)
        return 1
    except WriteError as exc:  # disk full, file-size limit: atomic writes kept the old files
        fix = "make room" if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) else \
            "fix that"
        print(f"physgrad: error: {exc}; {_last_checkpoint(exc.filename, fix)}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, CheckpointError, ModuleNotFoundError, OSError) as exc:
        print(f"physgrad: error: {short_text(exc, 400)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("physgrad: interrupted; rerun with --resume to continue", file=sys.stderr)
        return 130
    except Exception as exc:
        if _out_of_memory(exc):
            print(f"physgrad: error: out of memory: {short_text(exc, 300)}; try a smaller "
                  "--batch-size or problem size", file=sys.stderr)
            return 2
        where = _user_frame(exc)
        if where is None:  # raised inside physgrad or torch: a bug, keep the traceback
            raise
        print(f"physgrad: error: {type(exc).__name__} in your code at {where}: "
              f"{short_text(exc, 300)}", file=sys.stderr)
        return 2


def _out_of_memory(exc: BaseException) -> bool:
    """``exc`` is an allocation failure (CPU or GPU), e.g. from a huge ``--batch-size``."""
    import torch

    text = str(exc)
    return isinstance(exc, MemoryError | torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError)
        and ("can't allocate memory" in text or "out of memory" in text.lower())
    )


def _user_frame(exc: BaseException) -> str | None:
    """``file:line (function)`` of the innermost frame of ``exc``'s traceback that belongs to
    the user's code (a ``--problem`` file, an experiments package in development), not to
    physgrad, the standard library or an installed package (torch, numpy, matplotlib, ...:
    their errors are not blamed on the user); ``None`` when there is none."""
    import site
    import sysconfig
    import traceback

    paths = sysconfig.get_paths()
    roots = [Path(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths]
    roots += [Path(site.getusersitepackages()), Path(__file__).resolve().parent]
    for name in ("torch", "numpy", "scipy"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            roots.append(Path(module.__file__).resolve().parent)
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        path = Path(frame.filename).resolve()
        if frame.filename.startswith("<") or any(path.is_relative_to(r) for r in roots):
            continue
        if path == Path(sys.argv[0]).resolve():  # the `physgrad` console script
            return None
        return f"{frame.filename}:{frame.lineno} ({frame.name})"
    return None


if __name__ == "__main__":
    sys.exit(main())
