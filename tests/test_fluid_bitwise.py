"""The fluid speed-ups change no number: training iterations of both methods, bit for bit
against the code before them (kept here as small frozen copies), and the pieces one by one.

Long training runs resume from checkpoints with whatever code is current, so data, losses,
gradients, updates and logged metrics must stay exactly what they were.
"""

from __future__ import annotations

import importlib
import math

import pytest
import torch

from physgrad.experiments import get_experiment
from physgrad.physics.fluid import (
    DEFAULT_DOMAIN,
    Domain,
    center_of_mass,
    generate_example,
    laplace_eigenvalues,
)
from physgrad.physics.fluid import grid as grid_module
from physgrad.physics.fluid import pressure as pressure_module
from physgrad.problems import fluid as fluid_module
from physgrad.problems.base import Batch
from physgrad.problems.fluid import (
    FluidProblem,
    ReverseSimEstimator,
    cross2d,
    measure_vortex_strength,
    uniform_plus_vortex,
)
from physgrad.training.trainer import Trainer

simulate_module = importlib.import_module("physgrad.physics.fluid.simulate")


def _bits(t: torch.Tensor) -> torch.Tensor:
    t = t.detach().contiguous()
    bits = t.view(torch.int32 if t.dtype == torch.float32 else torch.int64).clone()
    bits[torch.isnan(t)] = -1
    return bits


def assert_bitwise(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    assert torch.equal(_bits(a), _bits(b)), f"{int((_bits(a) != _bits(b)).sum())} differ"


# --------------------------------------------------------------------- the code before


def _previous_inverse_laplace_fft(rhs: torch.Tensor, domain: Domain) -> torch.Tensor:
    eig = laplace_eigenvalues(domain, rhs.dtype, rhs.device)
    inv = torch.where(eig == 0, torch.zeros_like(eig), 1.0 / torch.where(eig == 0, 1.0, eig))
    return torch.fft.irfft2(torch.fft.rfft2(rhs) * inv, s=domain.shape)


def _previous_sample(self: FluidProblem, batch_size: int, generator: torch.Generator) -> Batch:
    ex = generate_example(batch_size, generator, self.ground_truth, dtype=self.dtype)
    return Batch(y_target=ex.marker_t, x_true=ex.v0, condition=ex.marker0)


def _previous_solve(
    self: ReverseSimEstimator, x0: torch.Tensor, y_target: torch.Tensor, physics: object
) -> torch.Tensor:
    sim, d = self.simulator, self.simulator.domain
    with torch.no_grad():
        dtype = y_target.dtype
        v0 = x0.to(dtype)
        m0 = self.marker0.detach().to(dtype=dtype, device=v0.device)
        mt = y_target
        centre = torch.tensor(d.center, dtype=dtype, device=v0.device)
        total_time, n = sim.time, sim.steps
        w0 = measure_vortex_strength(v0, d)
        markers, velocities = sim.simulate(m0, v0, record=True)
        if self.forward_cache is not None and m0.dtype == self.marker0.dtype:
            self.forward_cache.remember(v0, self.marker0, markers[:, -1])
        coms = [center_of_mass(markers[:, i], d) for i in range(n + 1)]
        com0, com_t = coms[0], center_of_mass(mt, d)
        uniform = (centre - com0) / total_time
        swirl_end = centre + (centre - com0)
        terms = [cross2d(coms[n] - com_t, com_t - swirl_end)]
        marker, velocity = mt.unsqueeze(1), -velocities[:, -1]
        p = None
        step_time = sim.dt if self.dt_factor else 1.0
        for i in range(n):
            marker, velocity, p = sim._step(marker, velocity, p if sim.pressure == "cg" else None)
            rc = center_of_mass(marker[:, 0], d)
            swirl_i = centre + (centre - com0) / total_time * (n - 1 - i) * step_time
            terms.append(cross2d(coms[n - 1 - i] - rc, rc - swirl_i))
        delta = torch.stack(terms).mean(dim=0) * self.gain
        est = uniform_plus_vortex(uniform, w0 + delta, d)
    return est.to(x0.dtype)


def _previous_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grid_module, "_fused", lambda velocity: False)  # torch stencils
    # and autograd through the stencils' and the energy's torch ops
    for module in (grid_module, pressure_module, simulate_module):
        monkeypatch.setattr(module, "_recorded", lambda *tensors: False)
    monkeypatch.setattr(pressure_module, "_inverse_laplace_fft", _previous_inverse_laplace_fft)
    monkeypatch.setattr(FluidProblem, "sample", _previous_sample)
    monkeypatch.setattr(ReverseSimEstimator, "_solve", _previous_solve)
    monkeypatch.setattr(
        fluid_module, "_vector_length", lambda v: torch.linalg.vector_norm(v, dim=1)
    )


# --------------------------------------------------------------------- tests


def _train(iterations: int, batch_size: int) -> dict[str, tuple]:
    """Per method: the logged rows (timings left out), the weights, Adam's state, the data
    generator's state after ``iterations`` steps."""
    exp = get_experiment("fluid")
    out = {}
    for method, spec in exp.methods.items():
        torch.manual_seed(0)
        net = exp.network()
        trainer = Trainer(exp.problem(), net, spec.method(), spec.optimizer,
                          batch_size=batch_size, seed=3, progress=False)
        rows = [trainer.step() for _ in range(iterations)]
        logged = [{k: v for k, v in row.items() if k not in ("step_time", "cpu_time")}
                  for row in rows]
        weights = torch.cat([p.detach().flatten() for p in net.parameters()])
        state = trainer.optimizer.state_dict()["state"]
        moments = torch.cat([torch.cat([s["exp_avg"].flatten(), s["exp_avg_sq"].flatten()])
                             for s in state.values()])
        out[method] = (logged, weights, moments, trainer.generator.get_state())
    return out


def test_training_iterations_are_bitwise_the_previous_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two iterations per method at batch 9 (one full and one partial batch chunk in the
    simulations without gradients): the logged loss and metrics (compared as floats: equal
    means the same bits for these finite values), the weights, Adam's moments and the data
    stream are the same as with the code before the speed-ups."""
    now = _train(2, 9)
    with monkeypatch.context() as patch:
        _previous_code(patch)
        before = _train(2, 9)
    for method in now:
        rows, weights, moments, generator = now[method]
        rows0, weights0, moments0, generator0 = before[method]
        assert rows == rows0 and all(math.isfinite(v) for row in rows for v in row.values())
        assert_bitwise(weights, weights0)
        assert_bitwise(moments, moments0)
        assert torch.equal(generator, generator0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_vector_length_is_the_cpu_norm(dtype: torch.dtype) -> None:
    """Over magnitudes from subnormal to overflow, with zeros, infinities and NaN."""
    gen = torch.Generator().manual_seed(1)
    scales = torch.logspace(-40, 35, 16, dtype=torch.float64)
    v = torch.randn(16, 2, 48, 40, generator=gen, dtype=torch.float64)
    v = (v * scales[:, None, None, None]).to(dtype)
    v[0, :, :3, :3] = 0.0
    v[1, 0, 0, :4] = torch.tensor([math.inf, -math.inf, math.nan, 1.0], dtype=dtype)
    assert_bitwise(fluid_module._vector_length(v), torch.linalg.vector_norm(v, dim=1))


def test_vector_length_of_realistic_errors() -> None:
    """On what the metric sees: a network-like prediction minus the ground truth."""
    problem = FluidProblem()
    batch = problem.sample(16, torch.Generator().manual_seed(4))
    x = batch.x_true * 0.7 + 0.05
    start = problem.simulator._initial_velocity(x)
    for field in (start, start - batch.x_true):
        assert_bitwise(fluid_module._vector_length(field), torch.linalg.vector_norm(field, dim=1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cached_inverse_eigenvalues_are_a_fresh_computation(dtype: torch.dtype) -> None:
    domain = Domain(12, 10, 7.0, 3.0)
    rhs = torch.randn(3, 10, 12, generator=torch.Generator().manual_seed(2), dtype=dtype)
    first = pressure_module._inverse_laplace_fft(rhs, domain)
    assert (domain, dtype, torch.device("cpu")) in pressure_module._INVERSE_EIGENVALUES
    assert_bitwise(pressure_module._inverse_laplace_fft(rhs, domain), first)
    assert_bitwise(first, _previous_inverse_laplace_fft(rhs, domain))


def test_inverse_eigenvalues_made_in_inference_mode_are_not_kept() -> None:
    """A tensor made under ``torch.inference_mode`` cannot be saved for a later backward."""
    domain = Domain(6, 6)
    pressure_module._INVERSE_EIGENVALUES.pop((domain, torch.float64, torch.device("cpu")), None)
    with torch.inference_mode():
        pressure_module._inverse_laplace_fft(torch.ones(1, 6, 6, dtype=torch.float64), domain)
    assert (domain, torch.float64, torch.device("cpu")) not in pressure_module._INVERSE_EIGENVALUES
    rhs = torch.randn(2, 6, 6, dtype=torch.float64, requires_grad=True)
    pressure_module._inverse_laplace_fft(rhs, domain).sum().backward()
    assert rhs.grad is not None


def test_estimator_and_sample_match_the_recorded_runs() -> None:
    """The estimator's forward run and the data generator without stacked frames, on the
    default domain at batch 10 (chunked simulations)."""
    problem = FluidProblem(DEFAULT_DOMAIN)
    batch = problem.sample(10, torch.Generator().manual_seed(5))
    previous = _previous_sample(problem, 10, torch.Generator().manual_seed(5))
    for got, expected in zip(
        (batch.y_target, batch.x_true, batch.condition),
        (previous.y_target, previous.x_true, previous.condition),
        strict=True,
    ):
        assert_bitwise(got, expected)
    estimator = problem.solvers(batch)["reverse-sim"]
    x0, physics = batch.x_true * 0.5, problem.physics(batch)
    expected = _previous_solve(estimator, x0, batch.y_target, physics)
    assert_bitwise(estimator(x0, batch.y_target, physics), expected)


def test_cached_frequency_weights_are_a_fresh_computation() -> None:
    """The frequency loss with its kept weights equals the formula computed afresh, and
    weights made under ``torch.inference_mode`` are not kept."""
    data_module = importlib.import_module("physgrad.physics.fluid.data")
    x = torch.randn(3, 10, 12, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    ky, kx = torch.fft.fftfreq(10, dtype=x.dtype), torch.fft.fftfreq(12, dtype=x.dtype)
    weights = torch.exp(-0.5 * (ky[:, None] ** 2 + kx[None, :] ** 2) * 7.0**2)
    centred = x - x.mean(dim=(1, 2), keepdim=True)
    spec = torch.fft.fft2(centred) * weights
    fresh = torch.sqrt(torch.clamp(spec.real**2 + spec.imag**2, min=1e-5)).sum(dim=(1, 2))
    for _ in range(2):  # computed, then kept
        assert_bitwise(data_module.frequency_loss(x, frequency_falloff=7.0), fresh)
    key = (10, 12, 7.0, torch.float64, torch.device("cpu"))
    assert key in data_module._FREQUENCY_WEIGHTS
    data_module._FREQUENCY_WEIGHTS.pop(key)
    with torch.inference_mode():
        data_module.frequency_loss(x, frequency_falloff=7.0)
    assert key not in data_module._FREQUENCY_WEIGHTS


def test_discretized_markers_equal_those_of_a_full_sort() -> None:
    """The data generator's marker (the largest ``fill`` share of ``noise * box`` set to 1,
    times the box) is the same with the partial selection as with the full ``argsort`` it
    replaced, on several grids: ties sit in the zeros outside the box, where the marker is 0
    whichever of them is chosen."""
    data_module = importlib.import_module("physgrad.physics.fluid.data")
    g = torch.Generator().manual_seed(11)
    for domain in (Domain(), Domain(16, 16, 32.0, 32.0), Domain(40, 24, 80.0, 48.0)):
        size = torch.tensor([domain.size_x, domain.size_y], dtype=torch.float64)
        for _ in range(20):
            pos = torch.rand(8, 2, generator=g, dtype=torch.float64) * (size / 2) + size / 4
            half = size * (28.0 / 128.0)
            box = data_module.soft_box_mask(pos - half, pos + half, domain)
            values = data_module.phiflow_noise(8, domain, g, dtype=torch.float64) * box
            fill = float(torch.rand((), generator=g, dtype=torch.float64)) * 0.1 + 0.05
            flat = values.reshape(8, -1)
            start = int(round(flat.shape[1] * (1 - fill)))
            by_sort = torch.zeros_like(flat).scatter_(1, flat.argsort(dim=1)[:, start:], 1.0)
            assert torch.equal(data_module.discretize(values, fill) * box,
                               by_sort.reshape(values.shape) * box)
