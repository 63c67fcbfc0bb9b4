"""The wave-packet fit (B.1): data, physics, the L-BFGS-B baseline and the experiment."""

import json
import math

import numpy as np
import pytest
import torch

from physgrad.experiments import compare, get_experiment
from physgrad.experiments.wavepacket import diverged, fit_lbfgs, lbfgs_baseline
from physgrad.problems.base import Batch
from physgrad.problems.wavepacket import (
    AMPLITUDE_RANGE,
    LENGTH,
    XI0_RANGE,
    WavePacketProblem,
    wave_packet,
)

DT = torch.float64


def _series(xi0: float, amplitude: float, seed: int = 0) -> torch.Tensor:
    """One noisy series ``(1, 256)`` with a packet at ``xi0`` (default noise)."""
    problem = WavePacketProblem()
    x = torch.tensor([[xi0, amplitude]], dtype=DT)
    noise = torch.randn(1, LENGTH, generator=torch.Generator().manual_seed(seed), dtype=DT)
    return problem.forward(x) + problem.noise_std * noise


def test_sample_shapes_ranges_dtype_and_seed_determinism():
    problem = WavePacketProblem()
    batch = problem.sample(500, torch.Generator().manual_seed(3))
    assert batch.y_target.shape == (500, LENGTH) and batch.y_target.dtype == DT
    assert batch.x_true.shape == (500, 2) and batch.condition is None
    xi0, amp = batch.x_true[:, 0], batch.x_true[:, 1]
    assert XI0_RANGE[0] <= xi0.min() and xi0.max() < XI0_RANGE[1]
    assert AMPLITUDE_RANGE[0] <= amp.min() and amp.max() < AMPLITUDE_RANGE[1]
    assert xi0.max() - xi0.min() > 150 and amp.max() - amp.min() > 2.5  # covers the ranges
    # residual = the noise: zero mean, the configured std
    noise = batch.y_target - problem.forward(batch.x_true)
    assert abs(float(noise.mean())) < 0.01
    assert float(noise.std()) == pytest.approx(problem.noise_std, rel=0.02)
    again = problem.sample(500, torch.Generator().manual_seed(3))
    assert torch.equal(again.y_target, batch.y_target) and torch.equal(again.x_true, batch.x_true)
    other = problem.sample(500, torch.Generator().manual_seed(4))
    assert not torch.equal(other.x_true, batch.x_true)


def test_physics_matches_a_direct_numpy_evaluation_and_is_differentiable():
    x = torch.tensor([[25.6, 1.0], [128.0, 2.0], [200.3, 3.7]], dtype=DT, requires_grad=True)
    y = wave_packet(x)
    xi = np.arange(256.0)
    for row, (xi0, amp) in zip(y.detach().numpy(), x.detach().numpy(), strict=True):
        ref = amp * np.sin(4.0 * xi) * np.exp(-0.5 * (xi - xi0) ** 2 / 20.0**2)
        np.testing.assert_allclose(row, ref, rtol=1e-12, atol=1e-14)
    # the envelope's exp(-1/2 ...): at one sigma from the centre it is e^{-1/2}
    flat = wave_packet(torch.tensor([[100.0, 1.0]], dtype=DT), frequency=0.0) + 1
    assert torch.all(flat == 1)
    env = wave_packet(torch.tensor([[100.0, 1.0]], dtype=DT), frequency=math.pi / 2 / 120.0)
    assert float(env[0, 120] / math.sin(math.pi / 2)) == pytest.approx(math.exp(-0.5), rel=1e-12)
    assert torch.autograd.gradcheck(lambda z: wave_packet(z, length=32, sigma=5.0),
                                    (torch.tensor([[12.3, 1.5]], dtype=DT, requires_grad=True),))


def test_metrics_separate_position_and_amplitude_errors():
    problem = WavePacketProblem()
    batch = problem.sample(4, torch.Generator().manual_seed(0))
    x = batch.x_true + torch.tensor([[3.0, -0.5]], dtype=DT)
    m = problem.metrics(x.float(), batch)
    torch.testing.assert_close(m["xi0_mae"], torch.full((4,), 3.0, dtype=DT), atol=1e-5, rtol=0)
    torch.testing.assert_close(m["amp_mae"], torch.full((4,), 0.5, dtype=DT), atol=1e-6, rtol=0)
    torch.testing.assert_close(m["x_l1"], m["xi0_mae"] + m["amp_mae"])
    truth = problem.metrics(batch.x_true, batch)["objective"]  # = noise energy ½ N σ²
    assert float(truth.mean()) == pytest.approx(0.5 * LENGTH * problem.noise_std**2, rel=0.2)
    assert set(problem.metrics(x, Batch(batch.y_target))) == {"objective", "y_l1", "y_l2"}


@pytest.mark.parametrize("solver", ["scipy", "torch"])
def test_lbfgs_finds_a_centred_packet_but_not_a_far_off_centre_one(solver):
    y = torch.cat([_series(140.0, 3.0), _series(30.0, 1.5, seed=1)])
    x = fit_lbfgs(y, solver=solver, steps=300)
    assert abs(float(x[0, 0]) - 140.0) < 1.0 and abs(float(x[0, 1]) - 3.0) < 0.1
    # far off-centre: it fits the noise near its initial guess (128) with a tiny amplitude
    assert abs(float(x[1, 0]) - 30.0) > 50.0 and abs(float(x[1, 1])) < 0.3


def test_lbfgs_baseline_summary():
    result = lbfgs_baseline(12, seed=5, solver="torch", steps=40, bins=3)
    json.dumps(result)  # serialisable
    assert result["n"] == 12 and len(result["xi0_fit"]) == 12
    assert 0.0 <= result["converged"] <= 1.0 and 0.0 <= result["diverged"] <= 1.0
    assert sum(result["bins"]["count"]) == 12 and len(result["bins"]["edges"]) == 4
    assert result["random"]["xi0_mae"] > result["xi0_mae"]
    again = lbfgs_baseline(12, seed=5, solver="torch", steps=40, bins=3)
    assert again["xi0_fit"] == result["xi0_fit"]
    flags = diverged(torch.tensor([[128.0, 2.0], [math.nan, 1.0], [1e4, 1.0], [100.0, -500.0]]))
    assert flags.tolist() == [False, True, True, True]


def test_experiment_runs_at_smoke_scale_and_makes_its_figures(tmp_path):
    from physgrad.experiments.wavepacket_figures import wavepacket_figures
    from physgrad.report.figures import render

    exp = get_experiment("wavepacket")
    assert exp.metrics[0] == "objective" and {"adam", "pg-gauss-newton", "pg-lbfgs"} <= set(
        exp.methods)
    methods = ["adam", "pg-gauss-newton", "pg-lbfgs"]
    c = compare(exp, methods, tmp_path, scale="smoke", iterations=3, batch_size=4,
                progress=False)
    for name in methods:
        h = c.histories[name]
        assert len(h) == 3 and all(np.isfinite(h["objective"]))
        assert {"xi0_mae", "amp_mae"} <= set(h.columns)
    assert (tmp_path / "results.md").exists()
    assert {"curves.png", "fig8_curves.png"} <= set(c.result.figures)

    made = wavepacket_figures(c, tmp_path / "figs", n=6, solver="torch",
                              methods=["adam", "pg-lbfgs"])
    for path in render(made, tmp_path / "figs"):
        assert path.stat().st_size > 10_000, path
    assert set(made.figures) == {"fig8_curves.png", "fig1_example.png", "error_vs_xi0.png"}
    assert "L-BFGS-B" in (tmp_path / "figs" / "wavepacket.md").read_text()
    assert (tmp_path / "figs" / "lbfgs_baseline.json").exists()


def test_bad_inputs_raise():
    problem = WavePacketProblem()
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        wave_packet(torch.zeros(3, 3, dtype=DT))
    with pytest.raises(ValueError):
        wave_packet(torch.zeros(2, dtype=DT))
    with pytest.raises(TypeError, match="floating"):
        wave_packet(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError):
        problem.sample(0, torch.Generator())
    with pytest.raises(TypeError, match="Generator"):
        problem.sample(3, 0)
    with pytest.raises(ValueError):
        WavePacketProblem(noise_std=-1.0)
    with pytest.raises(ValueError, match=r"\(B, 256\)"):
        fit_lbfgs(torch.zeros(2, 100, dtype=DT))
    with pytest.raises(ValueError):
        fit_lbfgs(torch.zeros(2, 256, dtype=DT), solver="adam")
    with pytest.raises(ValueError):
        lbfgs_baseline(0)
