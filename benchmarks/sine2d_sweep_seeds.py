"""The sine2d scale-invariance sweep over several seeds: tables, a figure and the numbers the
docs quote.

Each seed's sweep is made by :func:`physgrad.experiments.sine2d.sweep` (every method trained
for every conditioning ``ξ`` at θ = 0 and every rotation θ at ξ = 32, same seed for every
setting) and leaves ``<root>/seed<S>/sweep.json``. This script reads them all and writes
``<root>/README.md`` (per setting and method: the median over seeds and the range) and
``<root>/sweep-seeds.png`` (median line, min–max band, log y).

    OMP_NUM_THREADS=1 python -c "from physgrad.experiments.sine2d import sweep; \\
        sweep('docs/results/sine2d-sweep/seed0', iterations=2000, seed=0)"     # per seed
    python benchmarks/sine2d_sweep_seeds.py --root docs/results/sine2d-sweep

The "final" value of a run is its mean x-distance over the last 10 % of iterations; every
batch is new problems scored before the update, so it is an error on unseen problems.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from physgrad.io import atomic_write, write_text

PANELS = {"xi": ("x_dist / ξ", "ξ", "θ = {angle:g}°"), "angle": ("x_dist", "θ (degrees)",
                                                                 "ξ = {xi:g}")}


def load(root: Path) -> list[dict[str, Any]]:
    """Every ``seed*/sweep.json`` under ``root``, by seed; all must share the sweep's settings."""
    results = [json.loads(p.read_text()) for p in sorted(root.glob("seed*/sweep.json"))]
    if not results:
        raise SystemExit(f"no seed*/sweep.json under {root}")
    keys = {(r["iterations"], r["batch_size"], tuple(r["methods"]),
             tuple(r["xi"]["points"]), tuple(r["angle"]["points"])) for r in results}
    if len(keys) > 1:
        raise SystemExit(f"the sweeps under {root} differ in their settings: {sorted(keys)}")
    return sorted(results, key=lambda r: r["seed"])


def per_point(results: list[dict[str, Any]], panel: str, method: str) -> list[list[float]]:
    """For each point of ``panel``: the method's final value in every seed."""
    n = len(results[0][panel]["points"])
    return [[r[panel]["values"][method][i] for r in results] for i in range(n)]


def medians(results: list[dict[str, Any]], panel: str, method: str) -> list[float]:
    return [statistics.median(v) for v in per_point(results, panel, method)]


def summary(results: list[dict[str, Any]]) -> dict[str, str]:
    """The numbers the docs quote: Newton PG's and Adam's relative x-distance over ξ (medians
    over seeds; Newton PG's range is over every seed and ξ), Adam's growth from the smallest to
    the largest ξ, and the rotation panel at its fixed ξ."""
    xi = results[0]["xi"]["points"]
    angles = results[0]["angle"]["points"]
    pg_all = [v for vs in per_point(results, "xi", "pg-newton") for v in vs]
    adam = medians(results, "xi", "adam")
    pg_rot = [v for vs in per_point(results, "angle", "pg-newton") for v in vs]
    adam_rot = medians(results, "angle", "adam")
    tilted = [v for a, v in zip(angles, adam_rot, strict=True) if a >= 1]
    return {
        "seeds": str(len(results)),
        "iterations": f"{results[0]['iterations']:,}",
        "xi_low": f"{xi[0]:g}", "xi_high": f"{xi[-1]:g}",
        "pg_low": f"{min(pg_all):.2g}", "pg_high": f"{max(pg_all):.2g}",
        "adam_low": f"{adam[0]:.2g}", "adam_high": f"{adam[-1]:.2g}",
        "adam_growth": f"{adam[-1] / adam[0]:.0f}",
        "rot_xi": f"{results[0]['angle']['xi']:g}",
        "pg_rot_low": f"{min(pg_rot):.2g}", "pg_rot_high": f"{max(pg_rot):.2g}",
        "adam_rot0": f"{adam_rot[0]:.2g}",
        "adam_tilt_low": f"{min(tilted):.2g}", "adam_tilt_high": f"{max(tilted):.2g}",
    }


SENTENCE = (
    "Over {seeds} seeds ({iterations} iterations per setting), the Newton PG's relative "
    "x-distance stays between {pg_low} and {pg_high} for ξ = {xi_low}…{xi_high} (θ = 0), "
    "while Adam's median grows {adam_growth}-fold, from {adam_low} to {adam_high}; at ξ = "
    "{rot_xi} the Newton PG's x-distance is {pg_rot_low}–{pg_rot_high} at every rotation, "
    "Adam's median {adam_rot0} at θ = 0 and {adam_tilt_low}–{adam_tilt_high} for θ ≥ 1°."
)


def markdown(results: list[dict[str, Any]]) -> str:
    first = results[0]
    methods = first["methods"]
    seeds = ", ".join(str(r["seed"]) for r in results)
    lines = [
        "# sine2d scale-invariance sweep over seeds", "",
        f"Seeds {seeds}; {first['iterations']:,} iterations per setting at batch "
        f"{first['batch_size']}; every method of a setting starts from the same weights. "
        "Final value: mean x-distance to the closest solution over the last 10 % of "
        "iterations (each batch new problems, scored before the update). Cells: median over "
        "seeds [smallest, largest]. Made by `benchmarks/sine2d_sweep_seeds.py` from the "
        "`seed*/sweep.json` beside this page (each seed's own table and figure are there).", "",
        SENTENCE.format(**summary(results)), "",
    ]
    for panel, (what, axis, fixed) in PANELS.items():
        part = first[panel]
        lines += [f"## {what} vs {axis} ({fixed.format(**part)})", "",
                  f"| {axis} | " + " | ".join(methods) + " |",
                  "|---|" + "---|" * len(methods)]
        columns = {m: per_point(results, panel, m) for m in methods}
        for i, point in enumerate(part["points"]):
            cells = []
            for m in methods:
                values = columns[m][i]
                cells.append(f"{statistics.median(values):.3g} [{min(values):.3g}, "
                             f"{max(values):.3g}]")
            lines.append(f"| {point:g} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("![sweep over seeds](sweep-seeds.png)")
    return "\n".join(lines) + "\n"


def figure(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from physgrad.report.plots import method_colors, readable_log_axis

    first = results[0]
    labels = first.get("labels", {})
    methods = first["methods"]
    colors = method_colors(labels.get(m, m) for m in methods)
    fig, axes = plt.subplots(1, 2, figsize=(10.4, 4.0), constrained_layout=True)
    for ax, (panel, (what, axis, fixed)) in zip(axes, PANELS.items(), strict=True):
        points = first[panel]["points"]
        for m in methods:
            values = per_point(results, panel, m)
            color = colors[labels.get(m, m)]
            ax.fill_between(points, [min(v) for v in values], [max(v) for v in values],
                            color=color, alpha=0.2, lw=0)
            ax.plot(points, [statistics.median(v) for v in values], "o-", color=color, ms=3.5,
                    lw=1.4, label=labels.get(m, m))
        ax.set_yscale("log")
        readable_log_axis(ax)
        ax.set_xlabel(f"{axis} ({fixed.format(**first[panel])})")
        ax.set_ylabel(f"final {what}")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(f"sine2d scale invariance: median over {len(results)} seeds (line) and range "
                 f"(band), {first['iterations']:,} iterations per setting", fontsize=9)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="docs/results/sine2d-sweep")
    args = parser.parse_args()
    root = Path(args.root)
    if not root.is_dir():
        parser.error(f"--root {args.root!r} is not a folder")
    results = load(root)
    write_text(root / "README.md", markdown(results))
    figure(results, root / "sweep-seeds.png")
    print(f"wrote {root / 'README.md'} and {root / 'sweep-seeds.png'} ({len(results)} seeds)")


if __name__ == "__main__":
    main()
