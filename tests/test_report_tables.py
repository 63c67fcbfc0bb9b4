"""Report tables: paper numbers next to ours, fluid Table 1's training rows, time table,
embedded extra tables; computed on small synthetic curves."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from physgrad.cli import main
from physgrad.experiments.base import Experiment, Result, get_experiment
from physgrad.experiments.fluid_figures import (
    solver_reach,
    table1,
    training_comparison,
    training_rows,
)
from physgrad.experiments.runner import Comparison
from physgrad.problems.heat import HeatProblem
from physgrad.report.paper_numbers import (
    PAPER_NUMBERS,
    PaperNumber,
    format_values,
    measure,
    paper_rows,
)
from physgrad.report.reproduce import (
    SMOKE_VERDICT,
    SMOKE_WARNING,
    _extra_tables,
    _report_markdown,
)
from physgrad.training.checkpoint import save_checkpoint
from physgrad.training.trainer import History


def _history(values: list[float], step_time: float = 0.01, metric: str = "x_l1") -> History:
    h = History()
    for i, v in enumerate(values):
        h.append({"iteration": float(i), metric: v, "step_time": step_time})
    return h


def _heat_like(smoothing: int = 2) -> Experiment:
    """An unregistered experiment named like ``heat`` so the paper's heat numbers apply."""
    return Experiment(name="heat", description="d", paper="p", baseline="adam",
                      metrics=("x_l1",), smoothing=smoothing, problem=HeatProblem,
                      network=lambda: torch.nn.Identity())


ADAM = [10.0, 9, 8, 7, 6, 5, 4, 3, 2, 1]
PG = [10.0, 5, 4, 3, 2, 1, 0.5, 0.5, 0.5, 0.5]


def test_every_paper_number_names_a_registered_method() -> None:
    for number in PAPER_NUMBERS:
        exp = get_experiment(number.experiment)
        assert number.method in exp.methods, number
        assert number.source and number.shown
    with pytest.raises(ValueError, match="kind"):
        PaperNumber("heat", "pg-inverse", "speed", 1.0, "1", "Sec. 3.3")


def test_measure_reach_ratio_final_time_on_synthetic_curves() -> None:
    comp = Comparison(
        _heat_like(),
        {"adam": _history(ADAM, 0.01), "pg-inverse": _history(PG, 0.03)},
        Path("."), 10, 0,
    )
    # running means (window 2): adam final 1.5; PG [10, 7.5, 4.5, 3.5, 2.5, 1.5, ...]
    reach = measure(PaperNumber("heat", "pg-inverse", "reach", 138, "138", "s", at=10_000),
                    [comp])
    assert reach.values == (5.0,)
    at4 = measure(PaperNumber("heat", "pg-inverse", "ratio", 1.0, "1", "s", at=4), [comp])
    assert at4.values[0] == pytest.approx(6.5 / 2.5) and at4.where == "iteration 4"
    late = measure(PaperNumber("heat", "pg-inverse", "ratio", 1.0, "1", "s", at=100), [comp])
    assert late.values[0] == pytest.approx(1.5 / 0.5)
    assert "shorter than 100" in late.where and "iteration 9" in late.where
    final = measure(PaperNumber("heat", "pg-inverse", "final", 1.0, "1", "s"), [comp])
    assert final.values == (0.5,)
    t = measure(PaperNumber("heat", "pg-inverse", "time", 1.0, "1", "s"), [comp])
    assert t.values[0] == pytest.approx(3.0)
    # a method that was not run gives no row
    assert measure(PaperNumber("heat", "pg-lbfgs", "time", 1.0, "1", "s"), [comp]) is None
    rows = paper_rows([comp])
    assert {r["method"] for r in rows} == {"pg-inverse"}
    assert [r["paper"] for r in rows if "reach" in r["quantity"]] == ["138"]


def test_measure_flags_a_baseline_whose_error_grows() -> None:
    comp = Comparison(
        _heat_like(), {"adam": _history([1.0, 2, 3, 4]), "pg-inverse": _history([1.0] * 4)},
        Path("."), 4, 0,
    )
    m = measure(PaperNumber("heat", "pg-inverse", "reach", 1, "1", "s", at=10), [comp])
    assert m.values == (0.0,) and "met from the start" in m.where


def test_seeds_give_mean_and_std() -> None:
    comps = [
        Comparison(_heat_like(), {"adam": _history(ADAM), "pg-inverse": _history(pg)},
                   Path("."), 10, seed)
        for seed, pg in enumerate([PG, [10.0] * 10])
    ]
    m = measure(PaperNumber("heat", "pg-inverse", "reach", 1, "1", "s", at=10), comps)
    assert m.values == (5.0, None)
    assert format_values(m.values, "reach") == "5 (1/2 seeds reached)"
    # ratios: geometric mean, 95% t-interval of the log ratios (t(0.975, 1) = 12.706)
    assert format_values([2.0, 4.0], "ratio") == "2.83x (95% CI 0.0346–231x, 2 seeds)"
    assert format_values([10.0, 12.0], "final") == "11 (95% CI -1.71–23.7, 2 seeds)"
    assert format_values([None], "reach") == "never"
    assert format_values([7.0], "reach") == "7"


def test_report_markdown_has_paper_table_time_table_and_embedded_extra(tmp_path) -> None:
    comps = [
        Comparison(_heat_like(), {"adam": _history(ADAM, 0.01),
                                  "pg-inverse": _history(PG, 0.011 + 0.001 * s)},
                   tmp_path, 10, s)
        for s in (0, 1)
    ]
    for c in comps:  # as fluid's figure hook returns its Table 1
        c.result = Result(sections={"fluid: Table 1 (measured)": "\nintro\n\n| a | b |\n"
                                                                 "|---|---|\n| 1 | 2 |\n"})
    extra = _extra_tables(comps)
    assert extra[0].startswith("### fluid: Table 1 (measured) (seed 0)")
    assert "| 1 | 2 |" in extra[0]
    section = {"figures": [], "table": "| t |\n|---|\n| 1 |", "comparisons": comps,
               "extra": extra}
    text = _report_markdown([(comps[0].experiment, section, 1.0)], "cpu", [0, 1], None, "cmd")
    assert "## Paper vs this run" in text
    assert "| heat | pg-inverse | iterations to reach adam's final x_l1" in text
    assert "| 138 | Sec. 3.3 | 5 (95% CI 5–5, 2 seeds) |" in text
    assert "## Time per training iteration (Fig. 14)" in text
    assert ("| heat | pg-inverse | 11.5 (95% CI 5.15–17.9, 2 seeds) "
            "| 1.15x (95% CI 0.661–2x, 2 seeds) | < 1.1x (Fig. 14) |") in text
    assert "### fluid: Table 1 (measured) (seed 1)" in text
    assert SMOKE_WARNING not in text and SMOKE_VERDICT not in text
    heat_rows = [line for line in text.splitlines() if line.startswith("| heat | pg-inverse |")]
    assert any(line.endswith("| reproduced |") for line in heat_rows)

    # the same runs reported at smoke scale: warned at the top, no verdicts
    smoke = _report_markdown([(comps[0].experiment, section, 1.0)], "smoke", [0, 1], None, "c")
    assert smoke.splitlines()[2] == SMOKE_WARNING
    paper = smoke[smoke.index("## Paper vs this run"):smoke.index("## heat")]
    rows = [line for line in paper.splitlines() if line.startswith("| heat |")]
    assert rows and all(line.endswith(f"| {SMOKE_VERDICT} |") for line in rows)


def test_training_comparison_on_synthetic_curves() -> None:
    s = training_comparison(ADAM, PG, window=2, at=4)
    assert s["iterations"] == 10 and s["first_full"] == 2  # 2 values need 3 seen
    assert s["adam_final"] == 1.5 and s["pg_final"] == 0.5
    assert s["reach_final"] == 5 and not s["final_met_at_start"]
    assert s["adam_best"] == 1.5 and s["adam_best_at"] == 9 and s["reach_best"] == 5
    assert s["ratio_at"] == pytest.approx(6.5 / 2.5) and s["ratio_end"] == pytest.approx(3.0)
    rows = training_rows(s)
    assert len(rows) == 4 and all(r.startswith("| ") and r.endswith(" |") for r in rows)
    assert "| 5 | 55 (Adam trained 20,000), Sec. 3.4 |" in rows[0]
    assert "at iteration 4 | 2.6x | – |" in rows[2]  # the paper states iteration 200 only
    assert "| 3x | 5x, Sec. 3.4" in rows[3]


def test_training_comparison_when_adam_gets_worse_and_runs_are_short() -> None:
    adam = [4.0, 5, 6, 7, 8]  # the error grows during training
    pg = [4.0, 3, 2, 1, 1]
    s = training_comparison(adam, pg, window=2, at=200)
    assert s["final_met_at_start"] and s["reach_final"] == 0
    # the first full window is mean(5, 6) at iteration 2 (windows never reach into the first
    # half of the run, so iteration 0's value is not in it)
    assert s["adam_best"] == 5.5 and s["reach_best"] == 2
    assert s["ratio_at"] is None
    rows = training_rows(s)
    assert "met from the start" in rows[0]
    assert "already at the first full 2-iteration window" in rows[1]
    assert "run shorter" in rows[2]
    never = training_comparison([1.0, 1, 1], [2.0, 2, 2], window=1)
    assert never["reach_final"] is None and never["reach_best"] is None
    assert "never within 3" in training_rows(never)[0]


def test_solver_reach() -> None:
    assert solver_reach([3.0, 2.0, 1.0], 5.0) == (0, True)
    assert solver_reach([3.0, 2.0, 1.0], 1.5) == (2, False)
    assert solver_reach([3.0, 2.0, 1.0], 0.5) == (None, False)
    assert solver_reach([3.0], None) == (None, False)


def test_table1_says_when_the_start_is_already_better(tmp_path) -> None:
    exp = get_experiment("fluid")
    torch.manual_seed(0)
    histories = {}
    for method in ("adam", "pg-reverse-sim"):
        (tmp_path / method).mkdir()
        save_checkpoint(  # as the trainer writes them: format, version, experiment name
            tmp_path / method / "checkpoint.pt",
            {"experiment": "fluid", "model": exp.network().state_dict()},
        )
        histories[method] = _history([5.0, 4.0, 3.0, 2.0], metric="v0_l1")
    comparison = Comparison(exp, histories, tmp_path, 4, 0)
    single = {  # a start far better than an untrained network, and one far worse
        "examples": 1,
        "iterations": {"GD": 1, "Reverse sim.": 1},
        "v0_err": {"GD": [1e-6, 1e-7], "Reverse sim.": [1e9, 1e-9]},
        "v0_l1": {"GD": [2e-6, 2e-7], "Reverse sim.": [2e9, 2e-9]},
        "seconds": {"GD": 0.2, "Reverse sim.": 0.4},
        "stalled": {"GD": False, "Reverse sim.": False},
    }
    text = table1(comparison, single)
    assert (tmp_path / "table1.md").read_text() == text
    assert "| GD | drift guess | 0 (the start is already as accurate) | 0 ms |" in text
    # reached at iteration 1: 0.4 s / 1 iteration / 1 example
    assert "| Reverse sim. | drift guess | 1 | 400 ms | 1e-09 | 2e-09 | 1 |" in text
    assert "| GD | v0 = 0 |" in text and "| Reverse sim. | the Adam + PG network's" in text
    assert "Training, Adam + PG vs Adam" in text
    # runs logged before v0_err existed are compared on v0_l1
    assert "iterations Adam + PG needs to reach Adam's final v0_l1" in text


def test_reproduce_with_seeds_writes_mean_and_interval(tmp_path) -> None:
    out = tmp_path / "rep"
    assert main(["reproduce", "--scale", "smoke", "--only", "sine", "--seeds", "1,2",
                 "--out", str(out), "--quiet"]) == 0
    report = (out / "report.md").read_text()
    assert "## Paper vs this run" in report
    paper_lines = [line for line in report.splitlines() if line.startswith("| sine | pg-")]
    assert paper_lines and all("95% CI" in line and "2 seeds" in line for line in paper_lines)
    assert SMOKE_WARNING in report.splitlines()[:4]  # smoke: numbers mean nothing, said first
    paper = report[report.index("## Paper vs this run"):report.index("## sine (")]
    rows = [line for line in paper.splitlines() if line.startswith("| sine |")]
    assert rows and all(line.endswith(f"| {SMOKE_VERDICT} |") for line in rows)
    page = (out / "report.html").read_text()
    assert page.index("WARNING: smoke scale") < page.index("<table>")


def test_verdicts_follow_the_stated_rules() -> None:
    from physgrad.report.paper_numbers import verdict

    ratio = PaperNumber("heat", "pg-inverse", "ratio", 2.3, "2.3x", "s", at=10_000)
    assert verdict(ratio, [1.5, 2.0, 3.0]) == "reproduced"  # all ahead, gmean >= 1.15
    assert verdict(ratio, [0.9, 2.0, 3.0]) == "partly"  # one seed behind
    assert verdict(ratio, [0.5, 0.9]) == "not reproduced"
    reach = PaperNumber("heat", "pg-inverse", "reach", 138, "138", "s", at=10_000)
    assert verdict(reach, [100.0, 270.0]) == "reproduced"
    assert verdict(reach, [100.0, None]) == "partly"
    assert verdict(reach, [None, None]) == "not reproduced"
    final = PaperNumber("sine", "pg-analytic", "final", 1e-5, "~1e-5", "s")
    assert [verdict(final, [v]) for v in (5e-5, 5e-4, 5e-3)] == [
        "reproduced", "partly", "not reproduced"]
    time = PaperNumber("heat", "pg-inverse", "time", 1.1, "< 1.1x", "s")
    assert verdict(time, [1.6]) == "reproduced" and verdict(time, [1.7]) == "not reproduced"
