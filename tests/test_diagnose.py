"""physgrad.diagnose: exact spreads on linear maps, the three verdicts, multimodality, the CLI."""

import math

import pytest
import torch

import physgrad
from physgrad.cli import main
from physgrad.problems import FunctionProblem

DT = torch.float64


def _problem(physics, dim, low=0.25, high=1.75):
    def sampler(n, gen):
        x = torch.rand(n, dim, generator=gen, dtype=DT) * (high - low) + low
        return x, physics(x)

    return FunctionProblem(physics, sampler, dtype=DT)


def test_linear_map_spreads_are_exact():
    scales = torch.tensor([1.0, 1000.0], dtype=DT)
    d = physgrad.diagnose(_problem(lambda x: x * scales, 2), samples=4)
    assert d.finite and d.forward_mode and d.gradient_error < 1e-8
    assert d.condition_median == pytest.approx(1000.0, rel=1e-9)
    assert d.sensitivity_spread == pytest.approx(1000.0, rel=1e-9)
    assert d.across_samples_spread == pytest.approx(1.0, rel=1e-9)
    assert d.found_x == 1.0  # linear and invertible: every start comes back
    assert d.verdict == "PG likely helps" and "pg-gauss-newton" in d.methods


def test_well_conditioned_map_says_pg_unlikely_to_help():
    d = physgrad.diagnose(_problem(lambda x: torch.sin(x) + 2 * x, 3), samples=4)
    assert d.verdict == "PG unlikely to help" and d.methods == ["adam"]


def test_mirrored_elbow_is_found_as_another_minimum():
    def arm(q):  # two links of equal length: the hand position, elbow up or down
        a = torch.cumsum(q, dim=1)
        return torch.stack([a.cos().sum(1), a.sin().sum(1)], dim=1)

    d = physgrad.diagnose(_problem(arm, 2, low=-1.2, high=1.2), samples=8, starts=3)
    assert d.other_solution > 0.2 and d.found_x < 0.8
    assert any("multimodal" in r for r in d.reasons)


def test_null_space_is_a_flat_valley_not_another_minimum():
    def project(x):  # the second unknown is invisible
        return torch.stack([x[:, 0], 2 * x[:, 0]], dim=1)

    d = physgrad.diagnose(_problem(project, 2), samples=6)
    assert math.isinf(d.condition_median) and d.flat_valley > 0.5 and d.other_solution == 0.0
    assert any("ill-posed" in r for r in d.reasons)


def test_non_finite_and_non_differentiable_physics_are_named():
    d = physgrad.diagnose(lambda x: torch.log(x - 1.0), torch.rand(4, 1, dtype=DT) + 0.5)
    assert not d.finite and d.verdict == "fix the physics first" and d.methods == []
    # a detached piece (the usual user bug): autograd sees 0 * x, finite differences 3 x²
    steps = physgrad.diagnose(_problem(lambda x: x.detach() ** 3 + 0 * x, 2), samples=4)
    assert steps.gradient_error > 0.5
    assert any("not smoothly differentiable" in r for r in steps.reasons)


def test_plain_physics_needs_points_and_problems_without_truth_need_x():
    with pytest.raises(ValueError, match="needs x="):
        physgrad.diagnose(lambda x: x)
    no_truth = FunctionProblem(lambda x: x**3, lambda n, g: (None, torch.rand(n, 2, generator=g)))
    with pytest.raises(ValueError, match="no ground truth x_true: pass x="):
        physgrad.diagnose(no_truth)
    d = physgrad.diagnose(no_truth, torch.rand(4, 2) + 0.5)
    assert d.samples == 4 and d.finite
    d = physgrad.diagnose(lambda x: x**3, torch.rand(4, 2, dtype=DT) + 0.5)
    assert d.x_size == 2 and set(d.step_cost) >= {"adam (backprop)", "pg-lbfgs"}
    assert "verdict:" in d.report()


USER = '''
import torch
from physgrad.problems import FunctionProblem

def physics(x):
    return torch.stack([x[:, 0] ** 3, 100 * torch.exp(x[:, 1])], dim=1)

def sampler(batch_size, generator):
    x = torch.rand(batch_size, 2, generator=generator) + 0.5
    return x, physics(x)

def make():
    return FunctionProblem(physics, sampler, name="mine")
'''


def test_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "myphys.py").write_text(USER)
    assert main(["diagnose", "--problem", "myphys.py:make", "--samples", "4"]) == 0
    out = capsys.readouterr().out
    assert "verdict:" in out and "physgrad compare --problem myphys.py:make --methods adam" in out
    assert main(["diagnose", "--problem", "myphys.py:make", "--samples", "4", "--json"]) == 0
    assert '"verdict"' in capsys.readouterr().out
    assert main(["diagnose", "--problem", "myphys.py:nope"]) == 2
    assert main(["diagnose", "--problem", "myphys.py:make", "--samples", "1"]) == 2
    assert "--samples must be >= 2" in capsys.readouterr().err
