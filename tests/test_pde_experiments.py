"""The ``poisson`` / ``heat`` training experiments, their single-problem curves and figures."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from physgrad.experiments.base import FigureExperiment, get_experiment
from physgrad.experiments.heat import heat_network, heat_single_problem
from physgrad.experiments.pde_figures import reconstructions
from physgrad.experiments.poisson import poisson_network, poisson_single_problem
from physgrad.experiments.runner import compare
from physgrad.nets import UNet
from physgrad.report.figures import render
from physgrad.report.pde_figures import draw_reconstructions
from physgrad.report.plots import plot_single_problem_curves


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny tensors: a second intra-op thread only adds synchronisation on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_registered_with_paper_methods() -> None:
    poisson, heat = get_experiment("poisson"), get_experiment("heat")
    assert poisson.default_methods == ("adam", "sgd", "pg-inverse")
    assert heat.default_methods == ("adam", "pg-lbfgs", "pg-inverse")
    assert "pg-lbfgsb" in heat.methods
    for exp in (poisson, heat):
        assert exp.metrics[0] == "x_l1" and exp.baseline == "adam"
        assert exp.scale("paper").batch_size == 128
        assert sum(p.numel() for p in exp.network().parameters()) == 37_697
    assert isinstance(get_experiment("poisson-optim"), FigureExperiment)
    assert isinstance(get_experiment("heat-optim"), FigureExperiment)


@pytest.mark.parametrize("name", ["poisson", "heat"])
def test_the_network_factory_adds_and_removes_the_channel(name: str) -> None:
    """The U-Net's channel layout lives in the network factory, not in the problem: the
    network maps y* (B, X, Y) to x (B, X, Y) and keeps the bare U-Net's state_dict keys."""
    exp = get_experiment(name)
    problem, network = exp.problem(), exp.network()
    batch = problem.sample(2, torch.Generator().manual_seed(0))
    x = network(batch)
    assert x.shape == batch.y_target.shape and x.requires_grad
    torch.manual_seed(0)
    bare = UNet(1, 1, padding_mode="zeros" if name == "poisson" else "circular")
    assert list(network.state_dict()) == list(bare.state_dict())
    network.load_state_dict(bare.state_dict())
    inp = batch.y_target.float()
    with torch.no_grad():
        torch.testing.assert_close(network(inp), bare(inp.unsqueeze(1))[:, 0], rtol=0, atol=0)
    wide = {"poisson": poisson_network, "heat": heat_network}[name]()
    wide.outc = torch.nn.Conv2d(16, 2, 1)  # two output channels: refused, naming the shape
    with pytest.raises(ValueError, match=r"expected a network output \(B, 1, \.\.\.\)"):
        wide(inp)


@pytest.mark.parametrize("name", ["poisson", "heat"])
def test_smoke_comparison_and_reconstruction_figure(name: str, tmp_path: Path) -> None:
    exp = get_experiment(name)
    comparison = compare(exp, out=tmp_path, scale="smoke", progress=False)
    assert list(comparison.histories) == list(exp.default_methods)
    for history in comparison.histories.values():
        assert len(history) == exp.scale("smoke").iterations
        assert all(math.isfinite(v) and v > 0 for v in history["x_l1"])
    assert (tmp_path / "results.md").read_text().count("|") > 10
    drawn = render(comparison)
    assert [p.name for p in drawn] == ["curves.png", "reconstructions.png",
                                       "solvers_vs_networks.png"]
    assert (tmp_path / "curves.png").stat().st_size > 10_000

    data = reconstructions(exp, tmp_path, examples=(0, 1))
    assert set(data.predictions) == {exp.methods[m].label for m in exp.default_methods}
    assert all(math.isfinite(float(x.sum() + y.sum())) for x, y in data.predictions.values())
    png = draw_reconstructions(data, tmp_path / "reconstructions.png")
    assert png == tmp_path / "reconstructions.png" and png.stat().st_size > 10_000


def test_poisson_inverse_is_exact_in_one_step_gd_barely_moves(tmp_path: Path) -> None:
    curves = poisson_single_problem(5, tmp_path / "poisson.png", examples=2)
    start = curves.x_l1["GD"][0]
    assert all(curves.x_l1[m][0] == start for m in curves.x_l1)  # same x0 = 0, same examples
    assert curves.x_l1["Inverse"][1] < 1e-9 * start  # float64: exact up to round-off
    assert curves.x_l1["GD"][5] > 0.9 * start  # stable GD crawls on the low modes
    assert curves.x_l1["L-BFGS-B"][5] < start
    assert curves.objective["Inverse"][5] < 1e-12 * curves.objective["GD"][5]
    plot_single_problem_curves(curves, tmp_path / "poisson.png")
    assert (tmp_path / "poisson.png").stat().st_size > 10_000
    assert (tmp_path / "poisson.json").exists()


def test_heat_inverse_beats_gradient_descent(tmp_path: Path) -> None:
    curves = heat_single_problem(5, tmp_path / "heat.png", examples=2)
    assert curves.x_l1["Inverse"][5] < 0.7 * curves.x_l1["GD"][5]
    assert curves.objective["Inverse"][5] < curves.objective["GD"][5]
    assert "| Inverse |" in curves.markdown_table((1, 5))


def test_optim_experiment_writes_figure_and_table(tmp_path: Path) -> None:
    result = get_experiment("heat-optim").make(tmp_path, "smoke", False)
    assert render(result, tmp_path)[0].stat().st_size > 10_000 and "x_l1 @10" in result.table
    assert "x_l1 @10" in (tmp_path / "results.md").read_text()
