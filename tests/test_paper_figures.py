"""Paper figures added for issue 15: Fig. 9 (sine update directions)."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import load_script

from physgrad.experiments.sine import UPDATES, update_directions
from physgrad.report.sine_updates import update_directions_figure

# points away from the singularities of the Newton / inverse-gradient steps
X = torch.tensor([0.15, 0.3, 0.45, 1.0, 1.7], dtype=torch.float64)


@pytest.mark.parametrize("a", [1.0, 2.5])
def test_updates_match_the_closed_forms_of_appendix_b2(a):
    d = update_directions(X, a)
    s, c = torch.sin(a / X), torch.cos(a / X)
    slope = -a * c / X**2  # dP/dx
    torch.testing.assert_close(d["gd"], -slope)
    # B.2: inverse gradient x^2 (sin(a/x) + 1) / (a cos(a/x))
    torch.testing.assert_close(d["inverse-gradient"], X**2 * (s + 1) / (a * c))
    # B.2: Newton x^2 cos / (2x cos - a sin), its sign flipped to descend in P
    newton = X**2 * c / (2 * X * c - a * s)
    torch.testing.assert_close(d["newton"], newton.abs() * torch.sign(-slope))


@pytest.mark.parametrize("a", [1.0, 2.5])
def test_physical_and_supervised_updates_land_on_minima(a):
    d = update_directions(X, a)
    for method in ("pg", "supervised"):
        target = X + d[method]
        torch.testing.assert_close(torch.sin(a / target), -torch.ones_like(X))
    # supervised: one label for every x (the minimum nearest to x0 = 1)
    assert torch.allclose(X + d["supervised"], (X + d["supervised"])[0].expand(len(X)))
    # physical gradient: the nearest minimum in a/x (within half a period), except beyond the
    # outermost minimum a/x* = 3 pi / 2, which is then the target
    phase, target_phase = a / X, a / (X + d["pg"])
    near = (phase - target_phase).abs() <= math.pi + 1e-9
    outermost = (phase < 1.5 * math.pi) & ((target_phase - 1.5 * math.pi).abs() < 1e-9)
    assert bool((near | outermost).all())


def test_update_directions_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        update_directions(X.reshape(-1, 1))
    with pytest.raises(ValueError, match="a must be"):
        update_directions(X, a=0.0)


def test_fig9_is_written(tmp_path):
    path = update_directions_figure(tmp_path / "fig9.png", points=2001)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(UPDATES) == 5
    with pytest.raises(ValueError, match="x_range"):
        update_directions_figure(tmp_path / "bad.png", x_range=(0.0, 1.0))


# -- Fig. 11 / 12: single-problem solvers next to the networks ------------------------------


def test_solver_comparison_figure_and_single_problem_solutions(tmp_path):
    from physgrad.experiments import get_experiment
    from physgrad.experiments.pde_figures import (
        SOLVERS,
        TEST_SEED,
        single_problem_solutions,
        solver_comparison,
    )
    from physgrad.report.pde_figures import draw_solver_comparison
    from physgrad.training.checkpoint import save_checkpoint

    exp = get_experiment("heat")
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "adam" / "checkpoint.pt",
                    {"experiment": "heat", "model": exp.network().state_dict()})
    path = draw_solver_comparison(solver_comparison(exp, tmp_path, examples=(1,), n_iter=2),
                                  tmp_path / "solvers_vs_networks.png")
    assert path == tmp_path / "solvers_vs_networks.png"
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert "| GD (2 it., x0 = 0) |" in path.with_suffix(".md").read_text()
    # the solvers really solve: the inverse beats x0 = 0 on the test example
    batch = exp.problem().sample(1, torch.Generator().manual_seed(TEST_SEED))
    xs = single_problem_solutions(exp, batch, n_iter=3)
    assert set(xs) == set(SOLVERS)
    start = batch.x_true.abs().sum()
    for name, x in xs.items():
        assert x.shape == batch.x_true.shape
        assert float((x - batch.x_true).abs().sum()) < float(start), name
    with pytest.raises(ValueError, match="no single-problem solvers"):
        single_problem_solutions(get_experiment("wavepacket"), batch)


# -- wavepacket: L-BFGS-B divergence rate -------------------------------------------------

DIVERGENCE = "benchmarks/bench_wavepacket_divergence.py"


def test_closed_form_lbfgsb_matches_the_autograd_one():
    from physgrad.experiments.wavepacket import fit_lbfgs
    from physgrad.problems.wavepacket import WavePacketProblem

    fit_lbfgsb_closed_form = load_script(DIVERGENCE).fit_lbfgsb_closed_form

    problem = WavePacketProblem(noise_std=1.0)
    batch = problem.sample(6, torch.Generator().manual_seed(3))
    reference = fit_lbfgs(batch.y_target, steps=200, problem=problem)
    fast = fit_lbfgsb_closed_form(batch.y_target, steps=200, problem=problem)
    torch.testing.assert_close(fast, reference, atol=1e-3, rtol=1e-4)
    with pytest.raises(ValueError, match="shape"):
        fit_lbfgsb_closed_form(batch.y_target[:, :10])


def test_divergence_rate_interval_is_exact_binomial():
    from scipy.stats import binomtest

    divergence_rate = load_script(DIVERGENCE).divergence_rate
    r = divergence_rate(20, seed=0, noise_std=1.0, steps=50)
    for key in ("diverged", "left_grid", "nonfinite"):
        k = r[key]["count"]
        ci = binomtest(k, 20).proportion_ci(0.95, method="exact")
        assert r[key]["rate"] == k / 20
        assert r[key]["low"] == pytest.approx(ci.low, abs=1e-9)
        assert r[key]["high"] == pytest.approx(ci.high, abs=1e-9)
    assert 0.0 <= r["found"] <= 1.0
    with pytest.raises(ValueError, match="confidence"):
        divergence_rate(2, confidence=1.0)


# -- paper numbers: the L-BFGS-B rows name the solver they measured ------------------------


def _history(values, step_time):
    from physgrad.training.trainer import History

    h = History()
    for i, v in enumerate(values):
        h.append({"iteration": float(i), "x_l1": v, "step_time": step_time})
    return h


def test_lbfgsb_rows_use_the_papers_solver_or_say_which_stands_in():
    from pathlib import Path

    from physgrad.experiments import get_experiment
    from physgrad.experiments.runner import Comparison
    from physgrad.report.paper_numbers import PAPER_NUMBERS, paper_rows

    lbfgsb = [p for p in PAPER_NUMBERS if p.method == "pg-lbfgsb"]
    assert {p.kind for p in lbfgsb} == {"reach", "ratio", "time"}
    assert all(p.stand_in in get_experiment(p.experiment).methods for p in lbfgsb)
    exp = get_experiment("heat")
    adam = _history([10.0, 8, 6, 4], 0.01)
    torch_lbfgs = Comparison(exp, {"adam": adam, "pg-lbfgs": _history([10.0, 6, 4, 2], 0.02)},
                             Path("."), 4, 0)
    rows = [r for r in paper_rows([torch_lbfgs]) if r["paper"] == "17x"]
    assert len(rows) == 1 and rows[0]["ours"] == "2x"
    assert "in place of the paper's pg-lbfgsb" in rows[0]["method"]
    assert "a different solver" in rows[0]["method"]
    assert rows[0]["verdict"].endswith("(with a different solver)")
    both = Comparison(exp, {"adam": adam, "pg-lbfgs": _history([10.0, 6, 4, 2], 0.02),
                            "pg-lbfgsb": _history([10.0, 6, 4, 2], 0.05)}, Path("."), 4, 0)
    rows = [r for r in paper_rows([both]) if r["paper"] == "17x"]
    assert rows[0]["method"] == "pg-lbfgsb" and rows[0]["ours"] == "5x"


def test_lbfgsb_stand_in_is_measured_on_held_out_scores_too():
    from pathlib import Path

    from physgrad.experiments import get_experiment
    from physgrad.experiments.runner import Comparison
    from physgrad.report.paper_numbers import PAPER_NUMBERS, measure

    ratio = next(p for p in PAPER_NUMBERS if p.method == "pg-lbfgsb" and p.kind == "ratio")
    held = {"adam": _history([10.0, 6.0], 0.0), "pg-lbfgs": _history([10.0, 3.0], 0.0)}
    for h in held.values():  # evaluated at iterations 0 and 100
        h.columns["iteration"] = [0.0, 100.0]
    comp = Comparison(get_experiment("heat"),
                      {"adam": _history([9.0] * 4, 0.01), "pg-lbfgs": _history([9.0] * 4, 0.02)},
                      Path("."), 100, 0, heldout=held)
    m = measure(ratio, [comp])
    assert m.method == "pg-lbfgs" and m.values == (2.0,) and m.where.startswith("held-out")
