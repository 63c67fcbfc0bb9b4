"""Heat physics (periodic spectral diffusion), its noise-aware inverse, data and solvers."""

from __future__ import annotations

import math

import pytest
import torch

from physgrad.experiments.heat import pinned_mean
from physgrad.physics.heat import Heat, diffuse, heat_log_kernel, inv_diffuse
from physgrad.problems.base import Batch
from physgrad.problems.heat import (
    HeatInverse,
    HeatProblem,
    fix_mean,
    soft_box_mask,
    soft_rectangles,
)
from physgrad.solvers import LBFGS, GradientDescent

F64 = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mode(shape: tuple[int, int], m: int, n: int, phase: float = 0.3) -> torch.Tensor:
    i = torch.arange(shape[0], dtype=F64)[:, None]
    j = torch.arange(shape[1], dtype=F64)[None, :]
    return torch.cos(2 * math.pi * (m * i / shape[0] + n * j / shape[1]) + phase)[None]


# --- forward physics ------------------------------------------------------------------------


def test_gaussian_spreads_to_analytic_gaussian() -> None:
    # Continuous heat kernel: variance sigma^2 -> sigma^2 + 2 nu t per axis, with nu t = 8.
    n, sigma2, amount = 64, 4.0, 8.0
    i = torch.arange(n, dtype=F64) - 32.0
    r2 = i[:, None] ** 2 + i[None, :] ** 2
    x = torch.exp(-r2 / (2 * sigma2))[None]
    y = diffuse(x, amount)
    var = sigma2 + 2 * amount
    expected = sigma2 / var * torch.exp(-r2 / (2 * var))
    torch.testing.assert_close(y[0], expected, atol=1e-9, rtol=0)
    measured_var = float((y[0] * i[:, None] ** 2).sum() / y[0].sum())
    assert measured_var == pytest.approx(var, rel=1e-9)


@pytest.mark.parametrize(
    ("shape", "m", "n", "amount"),
    [((64, 64), 3, 1, 8.0), ((12, 10), 2, 3, 0.5), ((9, 7), 4, 3, 0.2), ((64, 64), 32, 32, 0.1)],
)
def test_single_fourier_mode_decays_by_exact_factor(
    shape: tuple[int, int], m: int, n: int, amount: float
) -> None:
    x = _mode(shape, m, n)
    factor = math.exp(-((2 * math.pi) ** 2) * ((m / shape[0]) ** 2 + (n / shape[1]) ** 2) * amount)
    torch.testing.assert_close(diffuse(x, amount), factor * x, atol=1e-13, rtol=0)


def test_mean_conservation_dtype_and_batch_dims() -> None:
    x = torch.rand(3, 2, 16, 12, generator=_gen(), dtype=F64)  # extra channel dim
    y = diffuse(x)
    torch.testing.assert_close(y.mean(dim=(-2, -1)), x.mean(dim=(-2, -1)))
    torch.testing.assert_close(y[1, 1], diffuse(x[1, 1][None])[0])
    y32 = diffuse(x.float())
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), y, atol=1e-6, rtol=0)
    torch.testing.assert_close(diffuse(x, 0.0), x)
    torch.testing.assert_close(Heat(8.0)(x), y)


def test_heat_gradcheck() -> None:
    x = torch.randn(2, 6, 5, generator=_gen(), dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: diffuse(v, 0.7), (x,))
    assert torch.autograd.gradcheck(lambda v: diffuse(v, 8.0), (x,))


def test_log_kernel_extremes() -> None:
    lk = heat_log_kernel((64, 64))
    assert lk.shape == (64, 33) and float(lk[0, 0]) == 0.0
    assert float(lk.max()) == pytest.approx((2 * math.pi) ** 2 * 0.5 * 8)  # ~158: e^-158 damping


# --- noise-aware inverse --------------------------------------------------------------------


def test_inv_diffuse_inverts_a_clean_low_mode_exactly() -> None:
    x = _mode((64, 64), 1, 2)
    torch.testing.assert_close(inv_diffuse(diffuse(x)), x, atol=1e-12, rtol=0)
    torch.testing.assert_close(inv_diffuse(torch.zeros(2, 8, 8, dtype=F64)),
                               torch.zeros(2, 8, 8, dtype=F64))


def test_heat_inverse_recovers_low_frequencies() -> None:
    prob = HeatProblem()
    batch = prob.sample(8, _gen(1))
    x0 = fix_mean(torch.zeros_like(batch.x_true), batch.y_target)
    x1 = HeatInverse()(x0, batch.y_target, prob.forward)
    err0 = torch.fft.rfft2(x0 - batch.x_true)
    err1 = torch.fft.rfft2(x1 - batch.x_true)
    low = heat_log_kernel(prob.shape) < 5.0  # modes damped by less than e^-5 (~107 modes)
    assert float(err1[:, low].abs().max()) < 1e-8 * float(err0[:, low].abs().max())
    per_sample0 = (x0 - batch.x_true).flatten(1).norm(dim=1)
    per_sample1 = (x1 - batch.x_true).flatten(1).norm(dim=1)
    assert bool((per_sample1 < 0.5 * per_sample0).all())
    assert bool(torch.isfinite(x1).all())
    # more steps keep improving (the authors' iterative "inverse physics" solver)
    x10 = HeatInverse(steps=10, abs_noise=1e-8)(x0, batch.y_target, prob.forward)
    assert float((x10 - batch.x_true).abs().sum()) < float((x1 - batch.x_true).abs().sum())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_inv_diffuse_never_overflows(dtype: torch.dtype) -> None:
    n = 64
    i = torch.arange(n, dtype=F64)
    checker = (-1.0) ** (i[:, None] + i[None, :])  # the most damped mode, k = (1/2, 1/2)
    big = math.log10(torch.finfo(dtype).max) - 6
    small = math.log10(torch.finfo(dtype).tiny)
    exponents = torch.linspace(small, big, 60, dtype=F64)
    amps = (10.0**exponents)[:, None, None]
    noise = torch.randn(60, n, n, generator=_gen(), dtype=F64)
    for residual in (amps * checker, amps * noise, amps * (checker + 1e-3 * noise)):
        dx, p = inv_diffuse(residual.to(dtype), return_probability=True)
        assert dx.dtype == dtype
        assert bool(torch.isfinite(dx).all()), "inv_diffuse produced NaN/inf"
        assert bool(((p >= 0) & (p <= 1)).all())
    prob = HeatProblem(shape=(32, 32), dtype=dtype)
    batch = prob.sample(4, _gen(2))
    x0 = 1e6 * torch.randn(4, 32, 32, generator=_gen(3), dtype=dtype)
    assert bool(torch.isfinite(HeatInverse(steps=3)(x0, batch.y_target, prob.forward)).all())


def test_inv_diffuse_forward_diffuses_noise_like_modes() -> None:
    # A huge high-frequency residual is implausible as signal and as 1e-6 noise: p = 0,
    # so the mode is diffused (multiplied by exp(-log_kernel)) rather than amplified.
    x = _mode((16, 16), 8, 8, phase=0.0)
    factor = math.exp(-((2 * math.pi) ** 2) * 0.5 * 8.0)
    torch.testing.assert_close(inv_diffuse(x), factor * x, atol=1e-300, rtol=1e-9)


# --- data and problem -----------------------------------------------------------------------


def test_soft_box_mask_antialiasing() -> None:
    centre = torch.tensor([[5.0, 5.0]], dtype=F64)
    mask = soft_box_mask(centre, torch.tensor([[2.0, 2.25]], dtype=F64), (10, 10))[0]
    assert float(mask[3:7, 3:7].min()) == 1.0  # cell centres 3.5..6.5 inside
    assert float(mask[2, 5]) == 0.0  # x-edge on a cell face: sharp
    expected_edge = 0.5 - 0.25 / (math.sqrt(2) / 2)  # y-edge 0.25 cells past the centre
    assert float(mask[5, 2]) == pytest.approx(expected_edge)
    assert float(mask[5, 7]) == pytest.approx(expected_edge)
    assert float(mask[0, 0]) == 0.0


def test_soft_rectangles_data() -> None:
    a = soft_rectangles(16, (64, 64), _gen(4))
    torch.testing.assert_close(a, soft_rectangles(16, (64, 64), _gen(4)))
    assert not torch.allclose(a, soft_rectangles(16, (64, 64), _gen(5)))
    assert a.shape == (16, 64, 64) and a.dtype == F64
    assert float(a.min()) >= 0.0 and float(a.max()) <= 10.0
    assert bool((a.flatten(1).amax(dim=1) > 0).all())
    fractional = ((a > 0) & (a < a.flatten(1).amax(dim=1)[:, None, None])).any()
    assert bool(fractional)
    # rectangles stay inside the domain (centre clipped by half size): nothing wraps
    one = soft_rectangles(64, (32, 24), _gen(6), min_count=1, max_count=1, max_half_size=4.0)
    assert one.shape == (64, 32, 24)
    rows = (one > 0).any(dim=2)  # (B, X) occupied rows: a single contiguous block
    assert bool((rows.sum(dim=1) <= 9).all())


def test_heat_problem_sample_and_the_networks_pinned_mean() -> None:
    prob = HeatProblem()
    assert prob.shape == (64, 64) and prob.dtype == F64 and prob.amount == 8.0
    batch = prob.sample(4, _gen(7))
    torch.testing.assert_close(batch.y_target, diffuse(batch.x_true))
    raw = torch.randn(4, 64, 64, generator=_gen(8), requires_grad=True)  # float32 net output
    x = pinned_mean(raw, batch)
    assert x.shape == (4, 64, 64) and x.dtype == F64
    torch.testing.assert_close(x.mean(dim=(1, 2)), batch.y_target.mean(dim=(1, 2)))
    torch.testing.assert_close(x.mean(dim=(1, 2)), batch.x_true.mean(dim=(1, 2)))
    x.sum().backward()
    assert raw.grad is not None and bool(torch.isfinite(raw.grad).all())
    with pytest.raises(ValueError, match="does not match the observations"):
        pinned_mean(torch.zeros(4, 32, 32), batch)
    assert set(prob.solvers(batch)) == {"inverse"}
    assert isinstance(Batch(batch.y_target), Batch)


@pytest.mark.parametrize("solver", [GradientDescent(lr=1.0, steps=5), LBFGS(steps=5)])
def test_generic_solvers_decrease_objective(solver: object) -> None:
    prob = HeatProblem(shape=(16, 16))
    batch = prob.sample(4, _gen(9))
    x0 = fix_mean(torch.zeros_like(batch.x_true), batch.y_target)
    start = prob.objective(prob.forward(x0), batch.y_target)
    x = solver(x0, batch.y_target, prob.forward)  # type: ignore[operator]
    end = prob.objective(prob.forward(x), batch.y_target)
    assert bool((end < start).all())


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        diffuse([[1.0]])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="real floating-point tensor, got dtype torch.int64"):
        diffuse(torch.ones(1, 4, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"shape \(batch, X, Y\), got shape \(4, 4\)"):
        diffuse(torch.ones(4, 4))
    with pytest.raises(ValueError, match="amount must be >= 0, got -1.0"):
        diffuse(torch.ones(1, 4, 4), -1.0)
    with pytest.raises(ValueError, match="prior must lie in"):
        inv_diffuse(torch.ones(1, 4, 4), prior=1.0)
    with pytest.raises(ValueError, match="dead_zone"):
        inv_diffuse(torch.ones(1, 4, 4), dead_zone=(0.7, 0.6))
    with pytest.raises(ValueError, match="shape must have 2 entries, got"):
        HeatProblem(shape=(8, 8, 8))
    with pytest.raises(ValueError, match="min_count"):
        HeatProblem(min_count=5, max_count=4)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        HeatProblem().sample(2, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"grid shape \(64, 64\)"):
        HeatProblem().forward(torch.ones(2, 32, 32, dtype=F64))
