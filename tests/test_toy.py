"""Tests for the toy figure (paper Fig. 2a): physgrad.experiments.toy."""

from __future__ import annotations

import pathlib
import time

import numpy as np
import pytest
import torch

from physgrad.experiments import toy
from physgrad.report.plots import plot_toy


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("toy")
    start = time.perf_counter()
    trajs = toy.toy_trajectories()
    figure = plot_toy(trajs, out / "toy_trajectories.png")
    res = {"seconds": time.perf_counter() - start, "figure": figure,
           "trajectories": {"flow": trajs.flow, "fixed": trajs.fixed},
           "final": {k: tuple(v[-1]) for k, v in trajs.flow.items()},
           "final_fixed": {k: tuple(v[-1]) for k, v in trajs.fixed.items()}}
    res["out_dir"] = out
    return res


def test_runs_fast_and_writes_png(result: dict) -> None:
    assert result["seconds"] < 10
    fig = result["figure"]
    assert isinstance(fig, pathlib.Path)
    assert fig == result["out_dir"] / "toy_trajectories.png"
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fig.stat().st_size > 10_000
    assert set(result["final"]) == {"GD", "Newton", "PG"}
    assert set(result["final_fixed"]) == {"GD", "Newton", "PG"}


def test_pg_infinitesimal_trajectory_reaches_origin(result: dict) -> None:
    assert np.hypot(*result["final"]["PG"]) < 0.01
    assert np.hypot(*result["final"]["Newton"]) < 0.01


def test_pg_is_a_straight_line_in_y_space(result: dict) -> None:
    for kind in ("flow", "fixed"):
        x = result["trajectories"][kind]["PG"]
        y = np.stack([x[:, 0], x[:, 1] ** 2], axis=1)
        # y stays on the ray from y0 = (3, 9) to the origin: y2 = 3 y1
        np.testing.assert_allclose(y[:, 1], 3 * y[:, 0], atol=1e-3 if kind == "flow" else 1e-12)
    # fixed steps with lr 0.5 halve y each time
    x = result["trajectories"]["fixed"]["PG"]
    np.testing.assert_allclose(x[1], [1.5, np.sqrt(4.5)])


def test_gd_fixed_steps_are_dominated_by_the_steep_direction(result: dict) -> None:
    x = result["trajectories"]["fixed"]["GD"]
    assert x.shape == (11, 2)
    steps = np.diff(x, axis=0)
    # first step: x2 moves 1.5 (3 -> 1.5), x1 only 6 * 0.5/36 = 1/12
    np.testing.assert_allclose(x[1], [3 - 1 / 12, 1.5])
    assert abs(steps[0, 1]) > 10 * abs(steps[0, 0])
    # over the 10 iterates GD has travelled far more in x2 than in x1 and stays far from x1 = 0
    assert abs(x[-1, 1] - x[0, 1]) > 2 * abs(x[-1, 0] - x[0, 0])
    assert x[-1, 0] > 2.0
    # while PG (and Newton) have nearly converged in x1 after 10 steps
    assert result["final_fixed"]["PG"][0] < 0.01
    assert result["final_fixed"]["Newton"][0] < 0.01


def test_solver_updates_match_closed_forms() -> None:
    x = torch.tensor([[3.0, 3.0], [-1.0, 0.5]], dtype=torch.float64)
    steps = toy.make_steps({"GD": 0.01, "Newton": 0.5, "PG": 0.5})
    gd = x - 0.01 * torch.stack([2 * x[:, 0], 4 * x[:, 1] ** 3], 1)
    newton = x - 0.5 * torch.stack([x[:, 0], x[:, 1] / 3], 1)
    pg = torch.stack([0.5 * x[:, 0], (0.5 * x[:, 1] ** 2).sqrt() * x[:, 1].sign()], 1)
    torch.testing.assert_close(steps["GD"](x), gd)
    torch.testing.assert_close(steps["Newton"](x), newton)
    torch.testing.assert_close(steps["PG"](x), pg)


def test_flow_directions_match_solvers() -> None:
    x = torch.tensor([[3.0, 3.0], [-1.0, 0.5], [0.2, -0.7]], dtype=torch.float64)
    directions = toy.make_directions()
    unit = toy.make_steps({"GD": 1.0, "Newton": 1.0, "PG": 1e-7})
    torch.testing.assert_close(directions["GD"](x), x - unit["GD"](x))
    torch.testing.assert_close(directions["Newton"](x), x - unit["Newton"](x))
    pg_fd = (x - unit["PG"](x)) / 1e-7
    torch.testing.assert_close(directions["PG"](x), pg_fd, rtol=1e-5, atol=1e-7)
