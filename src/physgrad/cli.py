"""``physgrad`` command line: list, run, compare and demo. It only wires library pieces."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import physgrad

CONFIG_KEYS = {
    "experiment": str,
    "problem": str,
    "network": str,
    "method": str,
    "methods": str,
    "iters": int,
    "seed": int,
    "out": str,
    "scale": str,
    "batch_size": int,
    "lr": float,
    "device": str,
}


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--problem", help="your own problem: 'package.module:function' or 'file.py:function'"
    )
    p.add_argument("--network", help="network factory for --problem (default: an MLP)")
    p.add_argument("--iters", type=int, help="training iterations (default: the scale's)")
    p.add_argument("--seed", type=int, help="seed of the initial weights and data (default 0)")
    p.add_argument("--out", help="output folder (default runs/<experiment>)")
    p.add_argument(
        "--scale", choices=["smoke", "cpu", "paper"], help="preset length/batch (default cpu)"
    )
    p.add_argument("--batch-size", dest="batch_size", type=int, help="override the batch size")
    p.add_argument("--lr", type=float, help="override the learning rate of every method")
    p.add_argument("--config", help="YAML/JSON file with any of these options (flags win)")
    p.add_argument("--resume", action="store_true", help="continue from checkpoints in --out")
    p.add_argument(
        "--checkpoint-every",
        dest="checkpoint_every",
        type=int,
        default=500,
        help="iterations between checkpoints (default 500; also on Ctrl-C/SIGTERM)",
    )
    p.add_argument("--device", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard logs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="physgrad",
        description="Train networks on inverse problems with physical gradients.",
    )
    parser.add_argument("--version", action="version", version=f"physgrad {physgrad.__version__}")
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch (default: torch's choice; 1 is often fastest for small "
        "networks or on a busy machine)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    sub.add_parser("list", help="list the registered experiments and their methods")

    run = sub.add_parser("run", help="train one method of an experiment (or make its figure)")
    run.add_argument(
        "experiment", nargs="?", help="experiment name (see `physgrad list`; or in --config)"
    )
    run.add_argument("--method", help="method name (default: the experiment's first method)")
    _add_common(run)

    cmp = sub.add_parser(
        "compare", help="train several methods from the same init; curves + table"
    )
    cmp.add_argument(
        "experiment", nargs="?", help="experiment name (see `physgrad list`; or in --config)"
    )
    cmp.add_argument("--methods", help="comma-separated method names (default: all)")
    cmp.add_argument(
        "--seeds", help="comma-separated seeds: one comparison per seed + a per-seed figure"
    )
    _add_common(cmp)

    rep = sub.add_parser(
        "reproduce", help="every experiment at one scale into one report folder (resumable)"
    )
    rep.add_argument("--scale", choices=["smoke", "cpu", "paper"], default="cpu")
    rep.add_argument("--only", help="comma-separated experiment names (default: all)")
    rep.add_argument("--seeds", help="comma-separated seeds (curves: mean and spread)")
    rep.add_argument("--out", default="runs/reproduce", help="report folder")
    rep.add_argument("--device", help="torch device (default cpu)")
    rep.add_argument("--quiet", action="store_true", help="no progress bars")
    rep.add_argument("--resume", action="store_true", help="continue a run in --out")
    rep.add_argument("--force", action="store_true", help="start over in an existing --out")

    demo = sub.add_parser(
        "demo", help="< 3 min CPU demo: Adam vs Adam + physical gradients (heat or sine)"
    )
    demo.add_argument(
        "problem",
        nargs="?",
        default="heat",
        choices=["heat", "sine"],
        help="heat (default: inverse heat equation with a U-Net, ~1-2 min) or sine (~30 s)",
    )
    demo.add_argument("--out", help="output folder (default runs/demo-<problem>)")
    demo.add_argument(
        "--iters", type=int, help="iterations per method (default 4000 sine, 200 heat)"
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def load_config(path: str) -> dict[str, Any]:
    """Read a YAML or JSON options file; unknown keys and wrong types are errors."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"config file {path!r} does not exist")
    text = file.read_text()
    try:
        if file.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:
        raise ValueError(f"config file {path!r} is not valid YAML/JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {path!r} must hold a mapping of options")
    for key, value in data.items():
        if key not in CONFIG_KEYS:
            known = ", ".join(CONFIG_KEYS)
            raise ValueError(f"unknown config key {key!r} in {path}; known: {known}")
        if key == "lr" and isinstance(value, int) and not isinstance(value, bool):
            value = data[key] = float(value)
        if not isinstance(value, CONFIG_KEYS[key]) or isinstance(value, bool):
            kind = CONFIG_KEYS[key].__name__
            raise ValueError(f"config key {key!r} must be {kind}, got {value!r}")
    return data


def _options(args: argparse.Namespace) -> dict[str, Any]:
    opts = load_config(args.config) if getattr(args, "config", None) else {}
    for key in CONFIG_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            opts[key] = value
    return opts


def _check_run_options(exp: Any, opts: dict[str, Any], methods: list[str]) -> None:
    """Validate everything before any file is written, so a bad option leaves nothing behind."""
    from physgrad._validation import check_nonnegative_float, check_positive_int

    if not exp.trains:
        raise ValueError(
            f"experiment {exp.name!r} makes a figure and has no methods; use `physgrad run "
            f"{exp.name}`"
        )
    for name in methods:
        exp.check_method(name)
    exp.scale(opts.get("scale", "cpu"))
    for key, label in (("iters", "iterations"), ("batch_size", "batch_size")):
        if key in opts:
            check_positive_int(label, opts[key])
    if opts.get("lr") is not None:
        check_nonnegative_float("lr", opts["lr"], positive=True)
    if "seed" in opts and opts["seed"] < 0:
        raise ValueError(f"seed must be >= 0, got {opts['seed']}")


def _experiment(opts: dict[str, Any]) -> Any:
    from physgrad.experiments.base import get_experiment

    if opts.get("problem"):
        from physgrad.experiments.custom import custom_experiment

        if opts.get("experiment"):
            raise ValueError("give either an experiment name or --problem, not both")
        return custom_experiment(opts["problem"], opts.get("network"))

    if not opts.get("experiment"):
        raise ValueError(
            "no experiment given: name one (see `physgrad list`), use --problem, or --config"
        )
    return get_experiment(opts["experiment"])


def save_options(path: Path, opts: dict[str, Any]) -> None:
    """Store the resolved options so ``physgrad run --config <path>`` repeats the run."""
    import yaml

    from physgrad.training.checkpoint import atomic_write

    text = "# repeat with: physgrad run --config <this file>  (or compare)\n" + yaml.safe_dump(
        {k: v for k, v in opts.items() if k in CONFIG_KEYS}, sort_keys=False
    )
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _name_the_experiment(resolved: dict[str, Any], opts: dict[str, Any]) -> dict[str, Any]:
    """A stored config names either the registered experiment or the user's --problem."""
    if opts.get("problem"):
        resolved.pop("experiment", None)
        resolved["problem"] = opts["problem"]
        if opts.get("network"):
            resolved["network"] = opts["network"]
    return resolved


def cmd_list(_: argparse.Namespace) -> int:
    from physgrad.experiments.base import list_experiments

    for exp in list_experiments():
        print(f"{exp.name}  ({exp.paper})\n    {exp.description}")
        if exp.methods:
            print(f"    methods: {', '.join(exp.methods)}")
        else:
            print("    makes its figure with `physgrad run " + exp.name + "`")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from physgrad.experiments.runner import initial_weights, run_method

    opts = _options(args)
    exp = _experiment(opts)
    out = Path(opts.get("out", f"runs/{exp.name}"))
    scale = opts.get("scale", "cpu")
    if not exp.trains:
        result = exp.run(out, scale=scale, progress=not args.quiet)
        print(f"{exp.name}: wrote {result.get('figure', out)}")
        return 0
    method = opts.get("method") or exp.method_names()[0]
    _check_run_options(exp, opts, [method])
    sc = exp.scale(scale)
    seed = opts.get("seed", 0)
    resolved = {
        "experiment": exp.name,
        "method": method,
        "scale": scale,
        "iters": opts.get("iters", sc.iterations),
        "batch_size": opts.get("batch_size", sc.batch_size),
        "seed": seed,
        "out": str(out),
    }
    if opts.get("lr") is not None:
        resolved["lr"] = opts["lr"]
    _name_the_experiment(resolved, opts)
    out.mkdir(parents=True, exist_ok=True)
    init = initial_weights(exp, seed, out / "init.pt")
    (out / method).mkdir(parents=True, exist_ok=True)
    save_options(out / method / "config.yaml", resolved)
    history = run_method(
        exp,
        method,
        out,
        iterations=resolved["iters"],
        batch_size=resolved["batch_size"],
        seed=seed,
        init=init,
        resume=args.resume,
        progress=not args.quiet,
        device=opts.get("device"),
        tensorboard=args.tensorboard,
        lr=opts.get("lr"),
        checkpoint_every=args.checkpoint_every,
    )
    final = {k: v[-1] for k, v in history.columns.items() if k != "iteration"}
    print(f"{exp.name}/{method}: {len(history)} iterations, final " + _fmt_row(final))
    print(f"metrics: {out / method / 'metrics.csv'}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from physgrad.experiments.runner import compare, compare_seeds, seeds_table

    opts = _options(args)
    exp = _experiment(opts)
    methods = [m.strip() for m in opts["methods"].split(",")] if opts.get("methods") else None
    out = Path(opts.get("out", f"runs/{exp.name}"))
    kwargs = dict(
        scale=opts.get("scale", "cpu"),
        iterations=opts.get("iters"),
        batch_size=opts.get("batch_size"),
        resume=args.resume,
        progress=not args.quiet,
        device=opts.get("device"),
        tensorboard=args.tensorboard,
        lr=opts.get("lr"),
        checkpoint_every=args.checkpoint_every,
    )
    _check_run_options(exp, opts, methods or list(exp.default_methods))
    seeds = _int_list("--seeds", args.seeds) if args.seeds else None
    out.mkdir(parents=True, exist_ok=True)
    save_options(out / "config.yaml", _name_the_experiment({**opts, "experiment": exp.name}, opts))
    if seeds:
        comparisons = compare_seeds(exp, methods, out, seeds, **kwargs)
        print(seeds_table(comparisons))
        print(f"\nwrote {out / 'seeds.png'} and {out / 'results.md'}")
        return 0
    comparison = compare(exp, methods, out, seed=opts.get("seed", 0), **kwargs)
    print(comparison.markdown_table())
    print(f"\nwrote {comparison.out / 'curves.png'} and {comparison.out / 'results.md'}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from physgrad.experiments.base import get_experiment
    from physgrad.experiments.runner import compare

    if args.iters is not None and args.iters < 1:
        raise ValueError(f"iterations must be >= 1, got {args.iters}")
    if args.threads is None:  # small networks: extra threads only add synchronisation
        import torch

        torch.set_num_threads(1)
    if args.problem == "heat":
        return _demo_heat(args)
    print(
        "physgrad demo: learn x with sin(a/x) = -1 for a ~ U[0.1, 10.1) (paper Sec. 3.1).\n"
        "Same network, same init, same data; only the gradient fed to Adam differs:\n"
        "  Adam            backprop through sin(a/x) (gradient clipped, it is unbounded)\n"
        "  Adam + PG       physical gradient from the analytic inverse (nearest solution)\n"
    )
    start = time.perf_counter()
    # a shorter running mean than the paper's 1000 batches suits a 4000-iteration run
    sine = dataclasses.replace(get_experiment("sine"), smoothing=200)
    comparison = compare(
        sine,
        ["adam", "pg-analytic"],
        Path(args.out or "runs/demo-sine"),
        iterations=args.iters or 4000,
        batch_size=1000,
        progress=not args.quiet,
    )
    print(comparison.markdown_table())
    rows = {r["method"]: r for r in comparison.summary_rows()}
    gain = rows["pg-analytic"]["adam / method"]
    print(
        f"\nAdam + PG ends {gain:.3g}x more accurate than Adam (|sin(a/x) + 1|, running mean"
        f" over the last 200 batches) in {time.perf_counter() - start:.0f} s."
    )
    print(f"learning curves: {comparison.out / 'curves.png'}")
    print("One seed; the gap varies over seeds (BENCHMARKS.md; physgrad compare sine --seeds 5,6)")
    return 0


def _demo_heat(args: argparse.Namespace) -> int:
    from physgrad.experiments.base import get_experiment
    from physgrad.experiments.runner import compare

    print(
        "physgrad demo heat: recover a 64x64 initial temperature x from y = heat(x, t nu = 8)\n"
        "(paper Sec. 3.3). A U-Net (37,697 parameters), same init and data for both:\n"
        "  Adam            backprop through the diffusion (high frequencies vanish from it)\n"
        "  Adam + PG       physical gradient from the noise-aware inverse solver\n"
    )
    start = time.perf_counter()
    heat = dataclasses.replace(get_experiment("heat"), smoothing=32)
    comparison = compare(
        heat,
        ["adam", "pg-inverse"],
        Path(args.out or "runs/demo-heat"),
        iterations=args.iters or 200,
        batch_size=16,
        progress=not args.quiet,
    )
    print(comparison.markdown_table())
    gain = {r["method"]: r for r in comparison.summary_rows()}["pg-inverse"]["adam / method"]
    print(
        f"\nAdam + PG ends {gain:.3g}x more accurate than Adam (||x - x*||_1, running mean over "
        f"the last 32 batches) in {time.perf_counter() - start:.0f} s; the gap grows with "
        "training (BENCHMARKS.md)."
    )
    print(f"learning curves: {comparison.out / 'curves.png'}")
    print(f"reconstructions: {comparison.out / 'reconstructions.png'}")
    return 0


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


def _int_list(flag: str, text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{flag} must be comma-separated integers, got {text!r}") from None


def cmd_reproduce(args: argparse.Namespace) -> int:
    from physgrad.report.reproduce import command_line, reproduce

    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    seeds = _int_list("--seeds", args.seeds) if args.seeds else None
    report = reproduce(
        args.out,
        scale=args.scale,
        only=only,
        seeds=seeds,
        progress=not args.quiet,
        device=args.device,
        command=command_line(),
        resume=args.resume,
        force=args.force,
    )
    print(f"report: {report} (and {report.with_suffix('.html')})")
    return 0


def _fmt_row(row: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in row.items())


COMMANDS = {
    "list": cmd_list,
    "run": cmd_run,
    "compare": cmd_compare,
    "reproduce": cmd_reproduce,
    "demo": cmd_demo,
}


def main(argv: list[str] | None = None) -> int:
    from physgrad.training.checkpoint import CheckpointError
    from physgrad.training.trainer import TrainingDiverged

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.threads is not None:
            if args.threads < 1:
                raise ValueError(f"--threads must be >= 1, got {args.threads}")
            import torch

            torch.set_num_threads(args.threads)
        if getattr(args, "checkpoint_every", 0) < 0:
            raise ValueError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
        if args.command in ("run", "compare"):
            _join_torchrun(args)
        return COMMANDS[args.command](args)
    except TrainingDiverged as exc:
        print(f"physgrad: training stopped: {exc} (last good checkpoint kept)", file=sys.stderr)
        return 1
    except (ValueError, TypeError, CheckpointError) as exc:
        print(f"physgrad: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("physgrad: interrupted; rerun with --resume to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
