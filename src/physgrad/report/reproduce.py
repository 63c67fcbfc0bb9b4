"""``physgrad reproduce``: every registered experiment at one scale, into one report folder.

The folder holds ``report.md`` and ``report.html`` (same content), each experiment's own
comparison folder (curves, tables, per-method metrics and checkpoints), and ``state.json``
with what has finished. Re-running with the same ``--out`` resumes: finished trainings are not
redone (their ``summary.json`` says so) and interrupted ones continue from their checkpoints.
"""

from __future__ import annotations

import html
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import markdown
import torch

import physgrad
from physgrad._validation import short_text
from physgrad.experiments.base import (
    AnyExperiment,
    Experiment,
    FigureExperiment,
    Result,
    RunOptions,
    list_experiments,
)
from physgrad.experiments.paper import PAPER_SUMMARY
from physgrad.experiments.runner import (
    Comparison,
    compare,
    compare_seeds,
    options_with,
    seeds_figures,
    seeds_table,
)
from physgrad.io import write_text
from physgrad.report.figures import render
from physgrad.report.paper_numbers import PAPER_NUMBERS, format_values, paper_rows
from physgrad.table import Table


def reproduce(
    options: RunOptions | None = None,
    *,
    only: list[str] | None = None,
    command: str | None = None,
    **fields: Any,
) -> Path:
    """Run every registered experiment (or ``only`` these) and write the report.

    ``options`` (or single ``fields``) give the report folder ``out`` (default
    ``runs/reproduce``), scale, seeds, device, progress, ``resume`` and ``force``. An ``out``
    folder that already holds a report (or a started one) is refused unless ``resume``
    (continue it: finished runs are kept, interrupted ones continue from their checkpoints)
    or ``force`` (start over in place). ``report.md`` is written only when every experiment
    has finished, so a partial run is never presented as a report.

    Returns the path of ``report.md``.
    """
    opts = options_with(options or RunOptions(out=Path("runs/reproduce")), **fields)
    scale, seeds = opts.scale, list(opts.seeds)
    experiments = list_experiments()
    known = [e.name for e in experiments]
    if only:
        unknown = [name for name in only if name not in known]
        if unknown:
            raise ValueError(
                f"unknown experiment(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
        experiments = [e for e in experiments if e.name in only]
    for exp in experiments:
        if isinstance(exp, Experiment):
            exp.scale(scale)  # validate before any work starts
    out = opts.out
    started = (out / "state.json").exists() or (out / "report.md").exists()
    if started and not (opts.resume or opts.force):
        raise ValueError(
            f"{str(out)!r} already holds a reproduce run; pass --resume to continue it or "
            "--force to start over"
        )
    if opts.force:
        for name in ("state.json", "report.md", "report.html"):
            (out / name).unlink(missing_ok=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create output folder {str(out)!r}: {exc.strerror}") from None
    state_path = out / "state.json"
    state = _read_state(state_path)
    sections = []
    start = time.perf_counter()
    for i, exp in enumerate(experiments, 1):
        print(f"[{i}/{len(experiments)}] {exp.name} ({exp.paper}) at scale {scale}", flush=True)
        t0 = time.perf_counter()
        done = state.get(exp.name, {})
        finished = bool(opts.resume and done.get("finished") and done.get("scale") == scale
                        and done.get("seeds") == seeds and "figures" in done)
        if finished:
            print("      finished before: kept, figures not redrawn", flush=True)
        section = _run_one(exp, replace(opts, out=out / exp.name), done if finished else None)
        wall = time.perf_counter() - t0
        state[exp.name] = {"finished": True, "wall_s": done.get("wall_s", 0.0) + wall,
                           "scale": scale, "seeds": seeds, "extra": section["extra"],
                           "figures": section["figures"],
                           **({"table": section["table"]} if not section["comparisons"] else {})}
        write_text(state_path, json.dumps(state, indent=2))
        sections.append((exp, section, state[exp.name]["wall_s"]))
        print(f"      done in {wall:.0f} s (overall {time.perf_counter() - start:.0f} s)")
    text = _report_markdown(sections, scale, seeds, opts.device, command)
    write_text(out / "report.md", text)
    write_text(out / "report.html", markdown_to_html(text, title=f"physgrad reproduce ({scale})"))
    return out / "report.md"


def _read_state(path: Path) -> dict[str, Any]:
    """``state.json`` of an earlier invocation ({} when there is none): which experiments
    finished, with what settings."""
    if not path.exists():
        return {}

    def damaged(reason: str) -> ValueError:
        return ValueError(f"reproduce state {str(path)!r} is damaged ({reason}); restore it, "
                          "or start over with --force")

    try:
        state = json.loads(path.read_text())
    except OSError as exc:
        raise damaged(exc.strerror or short_text(exc)) from None
    except ValueError as exc:  # not JSON, not UTF-8
        raise damaged(short_text(exc)) from None
    if not isinstance(state, dict) or not all(isinstance(v, dict) for v in state.values()):
        raise damaged("not a mapping of experiments")
    return state


def _run_one(
    exp: AnyExperiment, opts: RunOptions, finished: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run one experiment into ``opts.out``, draw the figures its Results carry there and
    return its report section (figures as paths relative to ``opts.out``). ``finished``: the
    state it recorded when it completed in an earlier invocation with these settings; its
    trainings are then only read back and its figure hook is not rerun (that hook costs
    minutes for fluid): its tables and figure list come from that record."""
    out = opts.out
    if isinstance(exp, FigureExperiment):
        if not finished:
            result = exp.make(out, opts.scale, opts.progress)
            finished = {"figures": _names(render(result, out), out), "table": result.table}
        return {"figures": finished["figures"], "table": finished["table"], "comparisons": [],
                "extra": []}
    if finished:
        exp = replace(exp, figures=None)
    if len(opts.seeds) > 1:
        comparisons = compare_seeds(exp, None, out, list(opts.seeds), options=opts)
        drawn = [render(c) for c in comparisons]  # the report shows the first seed's
        figures = _names(render(Result(seeds_figures(comparisons)), out), out)
        figures += _names(drawn[0], out)
        table = seeds_table(comparisons)
    else:
        comparisons = [compare(exp, None, out, seed=opts.seed, options=opts)]
        figures = _names(render(comparisons[0]), out)
        table = comparisons[0].markdown_table()
    return {
        "figures": finished["figures"] if finished else figures,
        "table": table,
        "comparisons": comparisons,
        "extra": finished["extra"] if finished else _extra_tables(comparisons),
    }


def _names(paths: list[Path], folder: Path) -> list[str]:
    """The figures as paths relative to ``folder``, in name order (as the report lists them)."""
    return sorted(p.relative_to(folder).as_posix() for p in paths)


def _extra_tables(comparisons: list[Comparison]) -> list[str]:
    """The sections the experiment's figure hook returned (e.g. fluid's Table 1), as
    Markdown to embed: the title becomes a level-3 heading (with the seed for several)."""
    blocks = []
    for c in comparisons:
        for title, body in c.result.sections.items():
            seed = f" (seed {c.seed})" if len(comparisons) > 1 else ""
            blocks.append(f"### {title}{seed}\n{body}".strip())
    return blocks


SMOKE_WARNING = (
    "> WARNING: smoke scale. Every experiment trained for a few iterations only, to check "
    "that the pipeline runs end to end; the numbers, tables and curves in this report say "
    "nothing about the methods or the paper. Use `--scale cpu` (or `paper`) for results."
)
"""Put at the top of a report made with ``--scale smoke``."""

SMOKE_VERDICT = "n/a (smoke)"
"""The verdict cells of the paper-vs-ours table at smoke scale."""


def _report_markdown(sections, scale, seeds, device, command) -> str:
    lines = [
        f"# physgrad reproduce — scale `{scale}`",
        "",
        *([SMOKE_WARNING, ""] if scale == "smoke" else []),
        f"- command: `{command or 'physgrad reproduce --scale ' + scale}`",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- physgrad {physgrad.__version__}, torch {torch.__version__}, Python "
        f"{platform.python_version()}, {platform.platform()}",
        f"- machine: {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, device "
        f"{device or 'cpu'}",
        f"- seeds: {', '.join(map(str, seeds)) if seeds else '0'}",
        f"- total wall time: {sum(w for _, _, w in sections):.0f} s (training time summed "
        "over the invocations that made this folder)",
        "",
        "Curves and tables below are measured by this run at this scale; the paper's numbers "
        "are quoted for comparison, not reproduced figures. Smaller scales train for fewer "
        "iterations on smaller batches, so expect orderings, not the paper's accuracies.",
        "",
    ]
    overview = _overview_table(sections, smoke=scale == "smoke")
    if overview:
        lines += [
            "## Paper vs this run",
            "",
            "Every quantitative statement of the paper about these experiments "
            "(`physgrad.report.paper_numbers.PAPER_NUMBERS`, section cited) next to the same "
            "quantity measured here on the experiment's headline metric (the first column of "
            "its table below): on the fixed held-out problems where the runs recorded them "
            "(`heldout.csv`; the network after that many iterations, in eval mode with "
            "batch-norm statistics re-estimated for its weights), otherwise "
            "running means over the training batches, as the 'ours measured at' column says; "
            "the baseline is Adam, trained as long as the method (the paper's Adam length is "
            "in the quantity). Where our run is shorter than the paper's iteration, ours is "
            "taken at our last evaluated iteration. Several seeds: mean with the 95% "
            "Student-t interval (geometric mean and log-scale interval for ratios). "
            "Verdicts (`physgrad.report.paper_numbers.verdict`): a ratio is reproduced when "
            "every seed has the method ahead and the geometric mean is within 2x of the "
            "paper's or above it (partly: ahead but further off); iterations-to-reach when "
            "every seed reaches within twice the paper's count (partly: some seed reaches); "
            "'same length?' says whether our runs were as long as the paper's statement."
            + (f" At smoke scale no verdict is given ({SMOKE_VERDICT})." if scale == "smoke"
               else ""),
            "",
            overview,
            "",
        ]
    time_table = _time_table(sections)
    for exp, section, wall in sections:
        lines += [f"## {exp.name} ({exp.paper})", "", exp.description, ""]
        if exp.name in PAPER_SUMMARY:
            lines += [f"Paper: {PAPER_SUMMARY[exp.name]}.", ""]
        if section["table"]:
            lines += [section["table"], ""]
        comparisons = section.get("comparisons") or []
        if comparisons:
            lines += [_columns_note(exp, comparisons), ""]
        for block in section.get("extra") or []:
            lines += [block, ""]
        lines += [f"Wall time: {wall:.0f} s.", ""]
        for fig in section["figures"]:
            lines += [f"![{exp.name}]({exp.name}/{fig})", ""]
    if time_table:
        lines += [
            "## Time per training iteration (Fig. 14)",
            "",
            "Median over each run of data generation + gradient + update, as a ratio to the "
            "experiment's baseline method (Adam; SGD for `exp`) trained in the same "
            "invocation (several seeds: mean with 95% interval). Runs of one experiment ran "
            "one after "
            "another on a shared machine, so load changes between them show up in the ratios; "
            "BENCHMARKS.md has interleaved timings.",
            "",
            time_table,
            "",
        ]
    return "\n".join(lines)


def _columns_note(exp: Experiment, comparisons: list[Comparison]) -> str:
    n = min(len(h) for c in comparisons for h in c.histories.values())
    metric = exp.metrics[0]
    return (
        f"Columns: final {metric} = running mean over the last {exp.smoothing} of {n} "
        f"iterations; `{exp.baseline} / method` = the baseline's {metric} divided by the "
        f"method's (> 1: the method is more accurate), at the iterations marked @ and at the "
        f"end; `iters to {exp.baseline}'s final` = first iteration at which the method's "
        f"running mean is at or below the baseline's final {metric} (never: not within the "
        "run)."
    )


def _overview_table(sections, smoke: bool = False) -> str:
    """The paper-vs-ours rows of every experiment (``smoke``: no verdicts) as one table."""
    table = None
    for exp, section, _ in sections:
        for row in paper_rows(section.get("comparisons") or []):
            table = table or Table(["experiment", *row])
            if smoke:
                row["verdict"] = SMOKE_VERDICT
            table.add(exp.name, *row.values())
    return table.markdown() if table else ""


def _time_table(sections) -> str:
    """The step times the comparisons measured (their summary rows), one row per method."""
    table = Table(["experiment", "method", "ms / iteration", "ratio to baseline", "paper"])
    for exp, section, _ in sections:
        comparisons = section.get("comparisons") or []
        if not comparisons:
            continue
        base = exp.baseline if exp.baseline in comparisons[0].histories else None
        paper = {p.method: p for p in PAPER_NUMBERS if p.experiment == exp.name
                 and p.kind == "time"}
        rows = [{r["method"]: r for r in c.summary_rows()} for c in comparisons]
        for method in comparisons[0].histories:
            ms = [r[method]["step ms"] for r in rows]
            ratio = "–" if base is None else format_values(
                [r[method][f"step time / {base}"] for r in rows], "time")
            p = paper.get(method)
            cited = f"{p.shown} ({p.source})" if p else ("1x" if method == base else "–")
            ms_text = format_values(ms, "final")
            table.add(exp.name, method, ms_text, ratio, cited)
    return table.markdown() if table.rows else ""


PAGE_STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
    "img{max-width:100%}"
    # the smoke warning (a quoted block): boxed so that nobody reads past it
    "blockquote{border:3px solid #c00;background:#fee;padding:0.6em;margin:1em 0;"
    "font-weight:bold}"
)


def markdown_to_html(text: str, title: str) -> str:
    """Markdown with tables (the ``markdown`` package) as a standalone page."""
    head = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{PAGE_STYLE}</style></head><body>"
    )
    return f"{head}\n{markdown.markdown(text, extensions=['tables'])}\n</body></html>\n"


def command_line() -> str:
    """The current ``physgrad ...`` command line, shell-quoted (recorded in the report)."""
    return "physgrad " + " ".join(shlex.quote(a) for a in sys.argv[1:])


__all__ = ["command_line", "markdown_to_html", "reproduce"]
