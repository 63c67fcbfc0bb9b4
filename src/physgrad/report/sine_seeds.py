"""The sin(a/x) seed study: tables and figure from ``benchmarks/sine_seeds.py``'s CSV files.

``python -m physgrad.report.sine_seeds docs/results/sine-seeds`` reads
``<dir>/<method>_<iterations>.csv`` and writes ``<dir>/README.md`` (one table per run length
and metric) and ``<dir>/ratios_<iterations>.png`` (the per-seed ratio Adam / method). The
tables come from :func:`tables_markdown`, which ``tests/test_quoted_numbers.py`` re-runs to
check the committed README and the sentences quoting it.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from physgrad.experiments.sine import SINE
from physgrad.io import write_text
from physgrad.report.plots import method_color, new_figure, readable_log_axis, save_png
from physgrad.report.seed_stats import markdown_table, per_seed, read_rows, summarise

METHOD_ORDER = ("adam", "adam-clip-dp", "adam-clip-dl", "pg-analytic", "pg-inverse-gradient",
                "pg-newton", "adam-lr-decay", "pg-analytic-lr-decay")
METRICS = {
    "mean_y_l1": "running mean of the per-batch |sin(a/x)+1| over the last 1000 training "
                 "batches (the paper's Fig. 3 quantity)",
    "median_y_l1": "median of the per-batch |sin(a/x)+1| over the last 1000 training batches",
    "heldout_mean_y_l1": "held-out test error: mean |sin(a/x)+1| of the final network on 4096 "
                         "fixed problems (seed 20221000, drawn independently of training)",
}
_FILE = re.compile(r"(?P<method>[a-z0-9-]+)_(?P<iterations>\d+)\.csv$")


def runs_by_length(folder: Path) -> dict[int, list[Path]]:
    """``{iterations: [csv files]}`` of the per-method files in ``folder``."""
    out: dict[int, list[Path]] = {}
    for path in sorted(Path(folder).glob("*.csv")):
        match = _FILE.match(path.name)
        if match:
            out.setdefault(int(match["iterations"]), []).append(path)
    return dict(sorted(out.items()))


def methods_in(rows: list[dict[str, str]]) -> list[str]:
    """Methods present in ``rows``, in the study's order (``adam`` first)."""
    present = {r["method"] for r in rows}
    return [m for m in METHOD_ORDER if m in present] + sorted(present - set(METHOD_ORDER))


DECAY = ("adam-lr-decay", "pg-analytic-lr-decay")
"""The learning-rate-decay variants: tabulated apart, on their own (fewer) seeds."""


def tables_markdown(folder: Path) -> str:
    """Every table of the study: per run length, one table per metric of :data:`METRICS`;
    then the learning-rate-decay variants beside the constant-rate runs of the same seeds."""
    parts = []
    for iterations, files in runs_by_length(folder).items():
        rows = read_rows(files)
        if not any(r["method"] == "adam" for r in rows):
            continue
        methods = [m for m in methods_in(rows) if m not in DECAY]
        parts.append(f"**{iterations:,} iterations**\n")
        for metric, what in METRICS.items():
            table = markdown_table(summarise(rows, methods, metric))
            parts.append(f"`{metric}`: {what}.\n\n{table}\n")
        decay_seeds = {r["seed"] for r in rows if r["method"] == DECAY[0]}
        if decay_seeds:
            sub = [r for r in rows if r["seed"] in decay_seeds]
            methods = [m for m in ("adam", DECAY[0], "pg-analytic", DECAY[1])
                       if any(r["method"] == m for r in sub)]
            parts.append(f"**{iterations:,} iterations, learning rate decayed tenfold every 5000 "
                         f"iterations (`*-lr-decay`), beside the constant rate on the same "
                         f"seeds**\n")
            for metric in METRICS:
                table = markdown_table(summarise(sub, methods, metric))
                parts.append(f"`{metric}`:\n\n{table}\n")
    return "\n".join(parts)


def ratio_figure(folder: Path, iterations: int, path: Path) -> Path:
    """Per-seed ratio ``adam / method`` for each metric: one dot per seed, one colour per
    method, log axis, median as a bar."""
    rows = read_rows(runs_by_length(folder)[iterations])
    methods = [m for m in methods_in(rows) if m != "adam" and m not in DECAY]
    sine = SINE.methods
    fig = new_figure(figsize=(4.2 * len(METRICS), 4.2), constrained_layout=True)
    axes = fig.subplots(1, len(METRICS), sharey=True)
    rng = np.random.default_rng(0)  # horizontal jitter only
    for ax, metric in zip(axes, METRICS, strict=True):
        base = per_seed(rows, "adam", metric)
        for i, method in enumerate(methods):  # a method keeps its colour in every figure
            color = method_color(sine[method].label if method in sine else method)
            values = per_seed(rows, method, metric)
            seeds = sorted(set(values) & set(base))
            ratio = np.array([base[s] / values[s] for s in seeds])
            ax.scatter(i + rng.uniform(-0.18, 0.18, len(ratio)), ratio, s=16, color=color,
                       alpha=0.8, label=f"{method} ({len(seeds)} seeds)")
            ax.hlines(np.median(ratio), i - 0.3, i + 0.3, color=color, lw=2.5)
        for level in (1, 10, 100, 1000):
            ax.axhline(level, color="0.6", lw=0.8, ls="--" if level > 1 else "-")
        ax.set_yscale("log")
        readable_log_axis(ax)
        ax.set_xlim(-0.6, len(methods) - 0.4)
        ax.set_xticks(range(len(methods)), methods, rotation=20, fontsize=8)
        ax.set_title(metric, fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_ylabel("Adam's final error / method's (per seed)")
    axes[-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"sin(a/x), {iterations:,} iterations, batch 1000: per-seed ratio "
                 f"(> 1: more accurate than Adam; bar: median)", fontsize=10)
    return save_png(fig, path, dpi=90)


README_HEAD = """# sin(a/x): final error over seeds

Written by `python -m physgrad.report.sine_seeds docs/results/sine-seeds` from the per-seed
CSV files here, which `benchmarks/sine_seeds.py` wrote (commands below). Seed *s* picks the
initial weights and the data stream; every method of a seed starts from the same weights and
sees the same batches. `adam` is the paper's baseline (B.2: L1 loss backpropagated through
sin(a/x), the batch loss's dL/dx clamped to [-1, 1]); `adam-clip-dp` is the variant this
project used before (½(sin(a/x)+1)² with dP/dx clamped per sample). Ratios are per seed,
Adam's value over the method's on the same seed (> 1: the method is more accurate); the
columns ≥10× … count the seeds reaching that ratio. A run that stopped on a NaN counts as
"failed" with infinite error.

"""


def write_readme(folder: Path, commands: str) -> Path:
    """``folder/README.md``: header, commands, every table, links to the figures."""
    figures = "".join(
        f"![per-seed ratios, {n:,} iterations](ratios_{n}.png)\n\n"
        for n in runs_by_length(folder)
    )
    text = f"{README_HEAD}```bash\n{commands.strip()}\n```\n\n{tables_markdown(folder)}\n{figures}"
    path = Path(folder) / "README.md"
    write_text(path, text)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m physgrad.report.sine_seeds FOLDER [--commands FILE]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--commands", type=Path, help="text file with the commands that made "
                        "the CSV files (default: FOLDER/commands.sh)")
    args = parser.parse_args(argv)
    commands = (args.commands or args.folder / "commands.sh").read_text()
    for iterations in runs_by_length(args.folder):
        ratio_figure(args.folder, iterations, args.folder / f"ratios_{iterations}.png")
    print(write_readme(args.folder, commands).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
