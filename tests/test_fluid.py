"""Tests of the differentiable periodic fluid simulator (physgrad.physics.fluid)."""

from __future__ import annotations

import math

import pytest
import torch

from physgrad.physics.fluid import (
    DEFAULT_DOMAIN,
    CGOptions,
    Domain,
    FluidSimulator,
    advect_centered,
    advect_staggered,
    angular_velocity,
    center_of_mass,
    centered_to_staggered,
    discretize,
    divergence,
    energy,
    frequency_loss,
    generate_example,
    laplace,
    make_incompressible,
    phiflow_noise,
    rescale_energy,
    sample_initial_state,
    simulate,
    solve_pressure_cg,
    solve_pressure_fft,
    staggered_to_centered,
)

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These grids are tiny: one intra-op thread avoids contention stalls on shared CPUs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _smooth_velocity(domain: Domain, batch: int = 2, dtype: torch.dtype = F64) -> torch.Tensor:
    """A centred smooth flow: uniform drift plus a Gaussian vortex at the centre."""
    c = domain.cell_centers(dtype)
    cx, cy = domain.center
    dx, dy = c[0] - cx, c[1] - cy
    fall = torch.exp(-0.5 * (dx**2 + dy**2) / (0.15 * domain.size_x) ** 2)
    out = []
    for b in range(batch):
        w = 0.5 + 0.5 * b
        out.append(torch.stack([-w * fall * dy / 20 + 1.0, w * fall * dx / 20 - 0.5]))
    return torch.stack(out)


def _blob(domain: Domain, batch: int = 2, dtype: torch.dtype = F64) -> torch.Tensor:
    c = domain.cell_centers(dtype)
    cx, cy = domain.center
    r2 = (c[0] - cx + 10) ** 2 + (c[1] - cy - 5) ** 2
    return torch.exp(-0.5 * r2 / 12.0**2).expand(batch, -1, -1).clone()


# ----------------------------------------------------------------------------- grid


def test_staggered_resampling_of_constant_and_roundtrip_shapes() -> None:
    d = Domain(16, 12, 32.0, 24.0)
    v = torch.ones(3, 2, 12, 16, dtype=F64) * torch.tensor([1.5, -2.0], dtype=F64)[:, None, None]
    s = centered_to_staggered(v)
    assert s.shape == (3, 2, 12, 16)
    torch.testing.assert_close(s, v)
    torch.testing.assert_close(staggered_to_centered(s), v)
    assert float(divergence(s, d).abs().max()) == 0.0
    c = d.cell_centers(F64)
    assert c.shape == (2, 12, 16)
    assert float(c[0, 0, 0]) == 1.0 and float(c[1, 0, 0]) == 1.0  # (i + 1/2) dx, dx = 2


# ----------------------------------------------------------------------------- projection


@pytest.mark.parametrize("method", ["fft", "cg"])
def test_projection_removes_divergence(method: str) -> None:
    d = Domain(32, 24, 64.0, 48.0)
    v = torch.randn(3, 2, 24, 32, generator=_gen(1), dtype=F64)
    div0 = divergence(v, d).abs().max()
    opts = CGOptions(rtol=1e-10)
    vp, p = make_incompressible(v, d, method, cg_options=opts)
    assert float(divergence(vp, d).abs().max() / div0) < 1e-5
    assert float(p.mean(dim=(1, 2)).abs().max()) < 1e-10
    # projecting twice changes nothing
    vpp, _ = make_incompressible(vp, d, method, cg_options=opts)
    torch.testing.assert_close(vpp, vp, atol=1e-8, rtol=0)


def test_projection_float32_relative_divergence() -> None:
    d = Domain()
    v = torch.randn(4, 2, 64, 64, generator=_gen(2))
    vp, _ = make_incompressible(v, d)
    assert vp.dtype == torch.float32
    assert float(divergence(vp, d).abs().max() / divergence(v, d).abs().max()) < 1e-5


def test_cg_and_fft_projection_agree_with_warm_start() -> None:
    d = Domain(32, 32, 64.0, 64.0)
    v = torch.randn(4, 2, 32, 32, generator=_gen(3), dtype=F64)
    v_fft, p_fft = make_incompressible(v, d, "fft")
    v_cg, p_cg = make_incompressible(v, d, "cg", cg_options=CGOptions(rtol=1e-12))
    torch.testing.assert_close(p_cg, p_fft, atol=1e-9, rtol=0)
    torch.testing.assert_close(v_cg, v_fft, atol=1e-9, rtol=0)
    # warm start from a near solution: same answer
    guess = p_fft + 0.01 * torch.randn(p_fft.shape, generator=_gen(4), dtype=F64)
    v_w, _ = make_incompressible(v, d, "cg", pressure_guess=guess, cg_options=CGOptions(1e-12))
    torch.testing.assert_close(v_w, v_fft, atol=1e-9, rtol=0)


def test_poisson_solvers_invert_laplace_and_balance_mean() -> None:
    d = Domain(16, 20, 16.0, 40.0)
    rhs = torch.randn(2, 20, 16, generator=_gen(5), dtype=F64) + 3.0  # non-zero mean
    for p in (solve_pressure_fft(rhs, d), solve_pressure_cg(rhs, d, options=CGOptions(1e-12))):
        torch.testing.assert_close(laplace(p, d), rhs - rhs.mean(dim=(1, 2), keepdim=True))


def test_cg_backward_is_an_adjoint_solve_matching_fft() -> None:
    d = Domain(16, 16, 32.0, 32.0)
    rhs = torch.randn(2, 16, 16, generator=_gen(6), dtype=F64)
    weight = torch.randn(2, 16, 16, generator=_gen(7), dtype=F64)
    grads = []
    for solve in (
        lambda r: solve_pressure_fft(r, d),
        lambda r: solve_pressure_cg(r, d, options=CGOptions(1e-12)),
    ):
        r = rhs.clone().requires_grad_(True)
        (solve(r) * weight).sum().backward()
        grads.append(r.grad)
    torch.testing.assert_close(grads[1], grads[0], atol=1e-9, rtol=0)
    small = Domain(6, 8, 6.0, 16.0)
    r = torch.randn(1, 8, 6, generator=_gen(8), dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x: solve_pressure_cg(x, small, options=CGOptions(1e-13)), (r,), atol=1e-6
    )


# ----------------------------------------------------------------------------- advection


@pytest.mark.parametrize("scheme", ["mac_cormack", "semi_lagrangian"])
def test_uniform_velocity_shifts_marker_exactly_by_whole_cells(scheme: str) -> None:
    d = Domain(16, 12, 32.0, 24.0)  # dx = dy = 2
    m = torch.rand(2, 12, 16, generator=_gen(8), dtype=F64)
    # dt * v = (2 dx, -1 dy) per step
    vel = torch.empty(2, 2, 12, 16, dtype=F64)
    vel[:, 0], vel[:, 1] = 16.0, -8.0
    out = advect_centered(m, vel, 0.25, d, scheme)
    torch.testing.assert_close(out, torch.roll(m, shifts=(-1, 2), dims=(1, 2)), rtol=0, atol=1e-12)
    # the staggered velocity advects itself unchanged (uniform) and a staggered field shifts too
    torch.testing.assert_close(advect_staggered(vel, vel, 0.25, d, scheme), vel)
    w = torch.rand(2, 2, 12, 16, generator=_gen(9), dtype=F64)
    torch.testing.assert_close(
        advect_staggered(w, vel, 0.25, d, scheme),
        torch.roll(w, (-1, 2), (2, 3)),
        atol=1e-12,
        rtol=0,
    )


def _advection_error(n: int, scheme: str) -> float:
    d = Domain(n, n, 1.0, 1.0)
    c = d.cell_centers(F64)

    def f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.sin(2 * math.pi * x) * torch.cos(2 * math.pi * y) + 0.5 * torch.sin(
            2 * math.pi * (x + 2 * y)
        )

    vx, vy, total = 0.9, 0.35, 0.5
    steps = n  # fixed CFL numbers 0.45 and 0.175
    dt = total / steps
    m = f(c[0], c[1])[None]
    vel = torch.stack([torch.full((n, n), vx, dtype=F64), torch.full((n, n), vy, dtype=F64)])
    vel = vel[None]
    for _ in range(steps):
        m = advect_centered(m, vel, dt, d, scheme)
    exact = f(c[0] - vx * total, c[1] - vy * total)
    return float(((m[0] - exact) ** 2).mean().sqrt())


def test_mac_cormack_is_second_order_semi_lagrangian_first() -> None:
    mc = _advection_error(32, "mac_cormack") / _advection_error(64, "mac_cormack")
    sl = _advection_error(32, "semi_lagrangian") / _advection_error(64, "semi_lagrangian")
    assert 3.5 < mc < 4.5, mc
    assert 1.5 < sl < 2.3, sl


def test_mac_cormack_respects_bounds_and_conserves_roughly() -> None:
    d = Domain(32, 32, 64.0, 64.0)
    m = (torch.rand(2, 32, 32, generator=_gen(10), dtype=F64) > 0.7).to(F64)
    v = make_incompressible(centered_to_staggered(_smooth_velocity(d) * 3), d)[0]
    out = advect_centered(m, v, 0.25, d)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


# ----------------------------------------------------------------------------- simulation


def test_energy_rescale_hits_target() -> None:
    v = torch.randn(3, 2, 8, 8, generator=_gen(11), dtype=F64)
    for mode in ("component", "total"):
        target = energy(v, mode) * torch.tensor([0.5, 2.0, 1.0], dtype=F64).view(3, 1, 1, 1)
        out = rescale_energy(v, target, mode)
        torch.testing.assert_close(energy(out, mode), target)
    zero = torch.zeros(1, 2, 8, 8, dtype=F64, requires_grad=True)
    out = rescale_energy(zero, torch.ones(1, 2, 1, 1, dtype=F64), "component")
    out.sum().backward()
    assert float(out.detach().abs().max()) == 0.0 and bool(torch.isfinite(zero.grad).all())


@pytest.mark.parametrize("mode", ["component", "total"])
def test_simulation_conserves_energy_per_step(mode: str) -> None:
    d = Domain(32, 32, 64.0, 64.0)
    sim = FluidSimulator(d, dt=0.25, steps=4, energy=mode)
    v0 = _smooth_velocity(d) + 0.3 * torch.randn(2, 2, 32, 32, generator=_gen(12), dtype=F64)
    _, vs = sim.simulate(_blob(d), v0, record=True)
    e = energy(vs.flatten(0, 1), mode).view(2, 5, -1)
    torch.testing.assert_close(e, e[:, :1].expand_as(e))


def test_default_simulation_shapes_and_incompressible_start() -> None:
    d = Domain()
    sim = FluidSimulator()
    assert sim.time == 2.0 and d.dx == 2.0
    m0 = torch.rand(2, 64, 64, generator=_gen(13))
    v0 = torch.randn(2, 2, 64, 64, generator=_gen(14))
    markers, vs = sim.simulate(m0, v0, record=True)
    assert markers.shape == (2, 9, 64, 64) and vs.shape == (2, 9, 2, 64, 64)
    assert markers.dtype == torch.float32
    torch.testing.assert_close(markers[:, 0], m0)
    assert float(divergence(vs[:, 0], d).abs().max()) < 1e-4
    torch.testing.assert_close(simulate(m0, v0), markers[:, -1])


@pytest.mark.parametrize("grid", ["staggered", "centered"])
def test_taylor_green_vortex_is_nearly_steady_and_converges(grid: str) -> None:
    """u = sin x cos y, v = -cos x sin y solves the Euler equations steadily."""
    errs = []
    for n in (16, 32):
        d = Domain(n, n, 2 * math.pi, 2 * math.pi)
        pts = d.face_centers(F64) if grid == "staggered" else d.cell_centers(F64).expand(2, 2, n, n)
        vel = torch.stack(
            [
                torch.sin(pts[0, 0]) * torch.cos(pts[0, 1]),
                -torch.cos(pts[1, 0]) * torch.sin(pts[1, 1]),
            ]
        )[None]
        sim = FluidSimulator(d, dt=8.0 / n, steps=n // 4, grid=grid, energy="none")
        _, vs = sim.simulate(
            torch.zeros(1, n, n, dtype=F64), vel, record=True, initial_is_state=True
        )
        errs.append(float((vs[0, -1] - vel[0]).pow(2).mean().sqrt()))
    assert errs[0] < 0.15 and errs[1] / errs[0] < 0.6, errs


def test_forward_then_reversed_flow_returns_to_start() -> None:
    d = Domain(48, 48, 96.0, 96.0)
    m0 = _blob(d)
    errs = {}
    for scheme in ("mac_cormack", "semi_lagrangian"):
        sim = FluidSimulator(d, dt=0.25, steps=8, scheme=scheme)
        markers, vs = sim.simulate(m0, 4 * _smooth_velocity(d), record=True)
        back = sim.simulate(markers[:, -1], -vs[:, -1], initial_is_state=True)
        moved = float((markers[:, -1] - m0).norm() / m0.norm())
        assert moved > 0.4  # the flow really moved the blob
        errs[scheme] = float((back - m0).norm() / m0.norm())
    assert errs["mac_cormack"] < 0.03 * moved, errs
    assert errs["mac_cormack"] < 0.25 * errs["semi_lagrangian"], errs


def test_physics_matches_simulate_and_is_differentiable() -> None:
    d = Domain(16, 16, 32.0, 32.0)
    sim = FluidSimulator(d, steps=3)
    m0 = _blob(d)
    v0 = _smooth_velocity(d).requires_grad_(True)
    phys = sim.physics(m0)
    out = phys(v0)
    torch.testing.assert_close(out, sim(m0, v0))
    (g,) = torch.autograd.grad((out**2).sum(), v0)
    assert g.shape == v0.shape and bool(torch.isfinite(g).all()) and float(g.abs().max()) > 0


def test_physics_supports_forward_mode_vmap_and_double_backward() -> None:
    d = Domain(8, 8, 16.0, 16.0)
    m0 = torch.rand(2, 8, 8, generator=_gen(30), dtype=F64)
    v0 = torch.randn(2, 2, 8, 8, generator=_gen(31), dtype=F64)
    tangents = torch.randn(3, 2, 2, 8, 8, generator=_gen(32), dtype=F64)
    phys = FluidSimulator(d, steps=2).physics(m0)
    cols = torch.func.vmap(lambda t: torch.func.jvp(phys, (v0,), (t,))[1])(tangents)
    eps = 1e-6
    fd = (phys(v0 + eps * tangents[1]) - phys(v0 - eps * tangents[1])) / (2 * eps)
    torch.testing.assert_close(cols[1], fd, atol=1e-7, rtol=1e-5)
    hvps = []
    for pressure in ("fft", "cg"):
        sim = FluidSimulator(d, steps=1, pressure=pressure, cg_options=CGOptions(1e-12))
        v = v0.clone().requires_grad_(True)
        (g,) = torch.autograd.grad((sim(m0, v) ** 2).sum(), v, create_graph=True)
        hvps.append(torch.autograd.grad((g * tangents[0]).sum(), v)[0])
    torch.testing.assert_close(hvps[1], hvps[0], atol=1e-8, rtol=0)


def test_unchecked_physics_propagates_nan_instead_of_crashing() -> None:
    d = Domain(8, 8)
    phys = FluidSimulator(d, steps=1).physics(torch.rand(1, 8, 8))
    v0 = torch.randn(1, 2, 8, 8)
    v0[0, 0, 3, 3] = float("nan")
    assert bool(torch.isnan(phys(v0)).any())
    v = v0.clone().requires_grad_(True)  # the fast backward too
    (g,) = torch.autograd.grad(phys(v).sum(), v)
    assert bool(torch.isnan(g).any())


def test_cpu_batch_chunks_change_no_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a graph a CPU step runs in batch chunks that fit the cache; samples are
    independent, so the values equal the unchunked run, and runs with gradients are whole."""
    import sys

    simulate_module = sys.modules[FluidSimulator.__module__]
    d = Domain(12, 10, 24.0, 20.0)
    m0 = torch.rand(5, 10, 12, generator=_gen(44), dtype=F64)
    v0 = torch.randn(5, 2, 10, 12, generator=_gen(45), dtype=F64)
    steps = []
    monkeypatch.setattr(
        FluidSimulator, "_step_batch",
        lambda self, m, v, p, original=FluidSimulator._step_batch: (
            steps.append(v.shape[0]) or original(self, m, v, p)
        ),
    )
    results, frames = [], []
    for chunk_bytes in (1 << 30, 2 * 10 * 12 * 8 * 2):  # everything at once; 2 samples
        monkeypatch.setattr(simulate_module, "CACHE_CHUNK_BYTES", chunk_bytes)
        for pressure in ("fft", "cg"):
            results.append(FluidSimulator(d, steps=3, pressure=pressure)(m0, v0))
        frames.append(FluidSimulator(d, steps=3).simulate(m0, v0, record=True))
    assert steps.count(2) == 3 * 3 * 2 and steps.count(1) == 3 * 3  # chunks 2, 2, 1
    for chunked, whole in zip(results[2:], results[:2], strict=True):
        torch.testing.assert_close(chunked, whole, atol=1e-13, rtol=1e-12)
    for chunked, whole in zip(frames[1], frames[0], strict=True):
        torch.testing.assert_close(chunked, whole, atol=1e-13, rtol=1e-12)
    # a run takes each chunk through all steps and joins the chunks at the end: the frames
    # are bit for bit those of joining the same chunks after every step
    sim = FluidSimulator(d, steps=3)
    m, v = m0.unsqueeze(1), sim.initial_velocity(v0)
    stepwise = [m0]
    for _ in range(3):
        m, v, _ = sim._step(m, v, None)
        stepwise.append(m[:, 0])
    assert torch.equal(frames[1][0], torch.stack(stepwise, dim=1))
    steps.clear()
    FluidSimulator(d, steps=3)(m0, v0.clone().requires_grad_(True))
    assert steps == [5, 5, 5]


@pytest.mark.parametrize("pressure", ["fft", "cg"])
def test_gradcheck_one_step(pressure: str) -> None:
    d = Domain(8, 8, 16.0, 16.0)
    sim = FluidSimulator(d, dt=0.25, steps=1, pressure=pressure, cg_options=CGOptions(1e-13))
    m = torch.rand(1, 8, 8, generator=_gen(15), dtype=F64, requires_grad=True)
    v = (2 * torch.randn(1, 2, 8, 8, generator=_gen(16), dtype=F64)).requires_grad_(True)

    def step(m: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m1, v1, _ = sim.step(m, v)
        return m1, v1

    assert torch.autograd.gradcheck(step, (m, v), atol=1e-6)


def test_gradcheck_initial_projection_and_centered_grid() -> None:
    d = Domain(8, 8, 16.0, 16.0)
    v0 = (2 * torch.randn(1, 2, 8, 8, generator=_gen(17), dtype=F64)).requires_grad_(True)
    m0 = torch.rand(1, 8, 8, generator=_gen(18), dtype=F64)
    for grid in ("staggered", "centered"):
        sim = FluidSimulator(d, steps=2, grid=grid)
        assert torch.autograd.gradcheck(lambda v, s=sim: s(m0, v), (v0,), atol=1e-6)


@pytest.mark.parametrize("scheme", ["mac_cormack", "semi_lagrangian"])
@pytest.mark.parametrize("field", ["smooth", "binary"])
def test_grid_sample_advection_matches_the_gather_implementation(field: str, scheme: str) -> None:
    """The fast path (grid_sample, in-place passes, hand-written backward) against the
    gather-based one: values and gradients, incl. the limiter's ties on a binary marker,
    integer back-traces and inputs of which only some need gradients."""
    from physgrad.physics.fluid.advection import _advect_own_grid, _advect_own_grid_gather

    d = Domain(16, 12, 32.0, 24.0)
    g = _gen(40)
    if field == "smooth":
        values = torch.randn(6, 12, 16, generator=g, dtype=F64)
    else:
        values = (torch.rand(6, 12, 16, generator=g, dtype=F64) > 0.7).to(F64)
    wx = 8 * torch.randn(6, 12, 16, generator=g, dtype=F64)
    wy = 8 * torch.randn(6, 12, 16, generator=g, dtype=F64)
    wx[:2] = 0.0  # back-traced points exactly on grid columns
    weights = torch.randn(6, 12, 16, generator=g, dtype=F64)
    for needs in ((True, True, True), (False, True, True), (True, False, False)):
        results = []
        for advect in (_advect_own_grid, _advect_own_grid_gather):
            with torch.no_grad():
                plain = advect(values, wx, wy, 0.25, d, scheme)
            inputs = [
                t.clone().requires_grad_(need)
                for t, need in zip((values, wx, wy), needs, strict=True)
            ]
            out = advect(*inputs, 0.25, d, scheme)
            torch.testing.assert_close(out.detach(), plain, atol=0, rtol=0)
            wanted = [t for t in inputs if t.requires_grad]
            grads = torch.autograd.grad((out * weights).sum(), wanted)
            results.append((out.detach(), *grads))
        for fast, reference in zip(*results, strict=True):
            torch.testing.assert_close(fast, reference, atol=1e-12, rtol=1e-12)


def test_fast_advection_second_derivatives_match_the_gather_implementation() -> None:
    """create_graph through the fast path (recomputed with the gather version) gives the
    gather version's Hessian-vector products."""
    from physgrad.physics.fluid.advection import _advect_own_grid, _advect_own_grid_gather

    d = Domain(10, 8, 20.0, 16.0)
    g = _gen(43)
    values = torch.randn(3, 8, 10, generator=g, dtype=F64)
    w = [4 * torch.randn(3, 8, 10, generator=g, dtype=F64) for _ in range(2)]
    tangents = [torch.randn(3, 8, 10, generator=g, dtype=F64) for _ in range(3)]
    hvps = []
    for advect in (_advect_own_grid, _advect_own_grid_gather):
        inputs = [t.clone().requires_grad_(True) for t in (values, *w)]
        grads = torch.autograd.grad((advect(*inputs, 0.25, d, "mac_cormack") ** 2).sum(),
                                    inputs, create_graph=True)
        dot = sum((gr * t).sum() for gr, t in zip(grads, tangents, strict=True))
        hvps.append(torch.autograd.grad(dot, inputs))
    for fast, reference in zip(*hvps, strict=True):
        torch.testing.assert_close(fast, reference, atol=1e-12, rtol=1e-12)


def test_advection_second_derivatives() -> None:
    d = Domain(6, 6, 12.0, 12.0)
    m = torch.rand(1, 6, 6, generator=_gen(41), dtype=F64, requires_grad=True)
    v = (2 * torch.randn(1, 2, 6, 6, generator=_gen(42), dtype=F64)).requires_grad_(True)
    assert torch.autograd.gradgradcheck(
        lambda m, v: advect_centered(m, v, 0.25, d), (m, v), atol=1e-6
    )


def test_dtype_and_device_follow_inputs() -> None:
    d = Domain(8, 8)
    sim = FluidSimulator(d, steps=1)
    for dtype in (torch.float32, F64):
        m = torch.rand(1, 8, 8, dtype=dtype)
        v = torch.randn(1, 2, 8, 8, dtype=dtype)
        assert sim(m, v).dtype == dtype


# ----------------------------------------------------------------------------- data and loss


def test_phiflow_noise_statistics_and_spectrum() -> None:
    d = DEFAULT_DOMAIN
    n = phiflow_noise(3, d, _gen(20), dtype=F64)
    torch.testing.assert_close(n.std(dim=(1, 2), correction=0), torch.ones(3, dtype=F64))
    torch.testing.assert_close(n.mean(dim=(1, 2)), torch.zeros(3, dtype=F64), atol=1e-12, rtol=0)
    spec = torch.fft.fft2(n).abs()
    # k = m * 10 / 128 per axis: modes with |m|^2 <= 16 are removed
    assert float(spec[:, 0, 4].max()) < 1e-8 and float(spec[:, 3, 2].max()) < 1e-8
    assert float(spec[:, 0, 5].min()) > 1e-3
    v = phiflow_noise(2, d, _gen(21), channels=2)
    assert v.shape == (2, 2, 64, 64) and v.dtype == torch.float32
    torch.testing.assert_close(phiflow_noise(2, d, _gen(21), channels=2), v)


def test_discretize_and_center_of_mass() -> None:
    vals = torch.randn(2, 8, 8, generator=_gen(22), dtype=F64)
    m = discretize(vals, 0.25)
    assert m.sum(dim=(1, 2)).tolist() == [16.0, 16.0]
    assert float(vals[m == 1].min()) > float(vals[m == 0].max()) - 10  # same sample ordering
    for b in range(2):
        assert float(vals[b][m[b] == 1].min()) >= float(vals[b][m[b] == 0].max())
    d = Domain(8, 8, 16.0, 16.0)
    point = torch.zeros(1, 8, 8, dtype=F64)
    point[0, 2, 5] = 3.0  # cell centre x = 11, y = 5
    torch.testing.assert_close(center_of_mass(point, d), torch.tensor([[11.0, 5.0]], dtype=F64))


def test_angular_velocity_matches_authors_vorticity_estimate() -> None:
    w = torch.tensor([1.5, -0.7], dtype=F64)
    v = angular_velocity(w)
    d = DEFAULT_DOMAIN.cell_centers(F64) - 64.0
    # authors' estimator: mean(cross(-v, x - 64)) / 120.5 recovers the strength
    est = (-v[:, 0] * d[1] + v[:, 1] * d[0]).mean(dim=(1, 2)) / 120.5
    torch.testing.assert_close(est, w, rtol=1e-3, atol=0)


def test_generated_examples_are_seeded_and_well_formed() -> None:
    d = Domain(32, 32, 64.0, 64.0)
    sim = FluidSimulator(d, grid="centered", project_initial=False)
    ex = generate_example(3, _gen(23), sim)
    again = generate_example(3, _gen(23), sim)
    torch.testing.assert_close(again.marker_t, ex.marker_t)
    assert ex.marker0.shape == (3, 32, 32) and ex.v0.shape == (3, 2, 32, 32)
    assert ex.markers.shape == (3, 9, 32, 32) and ex.velocities.shape == (3, 9, 2, 32, 32)
    assert float(ex.marker0.min()) >= 0 and float(ex.marker0.max()) <= 1
    filled = (ex.marker0 > 0).sum(dim=(1, 2)).double() / (32 * 32)
    assert bool(((filled > 0.03) & (filled < 0.17)).all())
    assert not torch.equal(generate_example(3, _gen(24), sim).marker0, ex.marker0)


def test_uniform_part_moves_center_of_mass_to_domain_center() -> None:
    d = DEFAULT_DOMAIN
    marker0, _ = sample_initial_state(2, _gen(25), d, 2.0, dtype=F64)
    com = center_of_mass(marker0, d)
    v0 = ((64.0 - com) / 2.0)[:, :, None, None].expand(2, 2, 64, 64)
    out = FluidSimulator(d)(marker0, v0)
    torch.testing.assert_close(
        center_of_mass(out, d), torch.full((2, 2), 64.0, dtype=F64), atol=0.3, rtol=0
    )


def test_frequency_loss_formula() -> None:
    zero = torch.zeros(2, 64, 64, dtype=F64)
    torch.testing.assert_close(
        frequency_loss(zero), torch.full((2,), 4096 * math.sqrt(1e-5), dtype=F64)
    )
    c = DEFAULT_DOMAIN.cell_centers(F64)
    wave = torch.cos(2 * math.pi * c[0] / 128.0)[None]  # mode k = 1/64 cycles per cell
    amp = 0.5 * 4096 * math.exp(-0.5 * (80 / 64) ** 2)  # two modes (+-1) of this amplitude
    expected = 2 * amp + (4096 - 2) * math.sqrt(1e-5)
    torch.testing.assert_close(frequency_loss(wave), torch.tensor([expected], dtype=F64))
    torch.testing.assert_close(frequency_loss(wave + 3.0), frequency_loss(wave))  # ignore_mean
    x = wave.clone().requires_grad_(True)
    frequency_loss(x, n=2).sum().backward()
    assert bool(torch.isfinite(x.grad).all())


# ----------------------------------------------------------------------------- errors


def test_bad_inputs_raise_value_errors_naming_the_value() -> None:
    d = Domain(8, 8)
    sim = FluidSimulator(d, steps=1)
    m = torch.rand(1, 8, 8)
    v = torch.randn(1, 2, 8, 8)
    with pytest.raises(ValueError, match="marker0"):
        sim(torch.rand(1, 8, 9), v)
    with pytest.raises(ValueError, match="v0"):
        sim(m, torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="v0"):
        sim(m, torch.randn(8, 8))
    with pytest.raises(ValueError, match="batch sizes differ"):
        sim(torch.rand(2, 8, 8), v)
    bad = v.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="v0 contains 1 non-finite"):
        sim(m, bad)
    with pytest.raises(ValueError, match="marker0 contains"):
        sim(torch.full((1, 8, 8), float("inf")), v)
    with pytest.raises(ValueError, match="dt must be > 0, got -0.25"):
        FluidSimulator(d, dt=-0.25)
    with pytest.raises(ValueError, match="dt must be finite"):
        advect_centered(m, v, float("nan"), d)
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        FluidSimulator(d, steps=0)
    with pytest.raises(ValueError, match="Domain.nx must be >= 2, got 0"):
        Domain(0, 8)
    with pytest.raises(ValueError, match="Domain.size_x must be finite and > 0, got -1"):
        Domain(8, 8, -1.0, 8.0)
    with pytest.raises(ValueError, match="unknown pressure 'lu'"):
        FluidSimulator(d, pressure="lu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="velocity"):
        make_incompressible(torch.randn(1, 2, 4, 4), d)
    with pytest.raises(ValueError, match="CGOptions.rtol"):
        CGOptions(rtol=-1.0)
    with pytest.raises(ValueError, match="batch must be >= 1, got 0"):
        generate_example(0, _gen())
    with pytest.raises(TypeError, match="generator"):
        phiflow_noise(1, d, 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="floating-point"):
        sim(m, torch.zeros(1, 2, 8, 8, dtype=torch.int64))
