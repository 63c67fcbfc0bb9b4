"""PhiFlow interop: the adapter, and agreement of our Poisson/fluid numerics with PhiFlow's.

Everything except the missing-dependency test is skipped when phiflow is not installed
(``pip install physgrad[phiflow]``). All comparisons run in float64 (``math.precision(64)``).

Agreement found with phiflow 3.4.0 / phiml 1.16.1 (max abs differences, relative to field
magnitudes ~1-10):

* Poisson ``∇⁻² x`` with zero Dirichlet boundary, unit cells: our DST-I solve and PhiFlow's
  ``math.solve_linear(field.laplace, ...)`` on a ``CenteredGrid`` with ``extrapolation.ZERO``
  agree to ~1e-13 (CG at tolerance 1e-12; same 5-point stencil, same ghost cells).
* Periodic staggered pressure projection: ``fluid.make_incompressible`` vs our FFT projection,
  velocity and (mean-free) pressure to ~1e-13.
* Semi-Lagrangian advection of a marker by a staggered velocity, semi-Lagrangian
  self-advection of a staggered velocity, and MacCormack advection of a marker: round-off
  (~1e-15). Same Euler back-trace, velocity sampled at the advected field's own points
  (staggered -> centres by face averaging, the other component at a face by a four-sample
  mean), periodic bilinear interpolation, and for MacCormack the same correction and limiter.
* MacCormack self-advection of a *staggered* velocity agrees before the limiter (round-off)
  but not after it: PhiFlow 3.4.0's ``Field.closest_values`` returns early with the
  centred-grid formula for every grid (its staggered branch is unreachable), so the 2x2
  clamping window of each face component is taken half a cell too far toward negative
  coordinates along the component's own axis. Ours takes the four samples around the
  back-traced point on the component's own grid (Selle et al. 2008). The test checks that
  PhiFlow's result is exactly ours with PhiFlow's shifted window.
* One full fluid step (advect velocity, project, per-component energy rescale, advect the
  marker) with semi-Lagrangian advection: ~5e-13 (velocity magnitude ~6).
"""

import importlib.util
import sys
import warnings
from pathlib import Path

import pytest
import torch
from helpers import load_script

from physgrad.physics.fluid import (
    Domain,
    FluidSimulator,
    advect_centered,
    advect_staggered,
    make_incompressible,
)
from physgrad.physics.fluid.advection import sample_periodic
from physgrad.physics.fluid.grid import staggered_at_faces
from physgrad.physics.poisson import poisson_solve

HAS_PHIFLOW = importlib.util.find_spec("phi") is not None
if HAS_PHIFLOW:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # phiml warns at import (experimental extrapolation)
        import phi.torch.flow  # noqa: F401
needs_phiflow = pytest.mark.skipif(not HAS_PHIFLOW, reason="phiflow not installed")

F64 = torch.float64
DOMAIN = Domain(16, 12, 32.0, 24.0)  # dx = dy = 2, non-square to catch x/y mix-ups


@pytest.fixture(autouse=True)
def _float64_phiflow():
    if not HAS_PHIFLOW:
        yield
        return
    from phiml import math

    with warnings.catch_warnings(), math.precision(64):
        warnings.simplefilter("ignore")  # PhiFlow's deprecation / rank-deficiency notices
        yield


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _velocity(seed: int, scale: float = 3.0) -> torch.Tensor:
    """A divergence-free random staggered velocity on DOMAIN, (2, 2, ny, nx)."""
    v = torch.randn(2, 2, DOMAIN.ny, DOMAIN.nx, generator=_gen(seed), dtype=F64)
    return scale * make_incompressible(v, DOMAIN)[0]


def _smooth_marker(batch: int = 2) -> torch.Tensor:
    """Gaussian blobs (batch, ny, nx) at different centres, periodic-ish."""
    c = DOMAIN.cell_centers(F64)
    blobs = []
    for b in range(batch):
        cx, cy = 10.0 + 7.0 * b, 9.0 + 3.0 * b
        blobs.append(torch.exp(-((c[0] - cx) ** 2 + (c[1] - cy) ** 2) / 30.0))
    return torch.stack(blobs)


def test_missing_phiflow_gives_install_hint(monkeypatch):
    """Without phiflow, the adapter fails with a one-line ImportError naming the extra."""
    import physgrad.interop as interop  # importing never needs phiflow

    for name in ("phi", "phi.torch", "phiml"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install physgrad\[phiflow\]"):
        interop.phiflow_physics(lambda x: x, "y:s,x:s")


# --------------------------------------------------------------------------- the adapter


@needs_phiflow
def test_adapter_values_and_gradients_match_direct_phiflow():
    """Through the adapter == PhiFlow called directly, for values and for gradients."""
    from phi.torch.flow import CenteredGrid, advect, extrapolation, math

    from physgrad.interop import phiflow_physics, staggered_grid

    velocity = staggered_grid(torch.cat([_velocity(1), _velocity(11)[:1]]), DOMAIN)  # batch 3

    def fn(m):  # marker (batch, y, x) -> squared MacCormack-advected marker
        grid = CenteredGrid(m, extrapolation.PERIODIC, bounds=velocity.bounds)
        return advect.mac_cormack(grid, velocity, 0.8) ** 2

    physics = phiflow_physics(fn, "y:s,x:s")
    x = torch.rand(3, DOMAIN.ny, DOMAIN.nx, generator=_gen(2), dtype=F64)
    weights = torch.rand(3, DOMAIN.ny, DOMAIN.nx, generator=_gen(3), dtype=F64)
    x_torch = x.clone().requires_grad_(True)
    y = physics(x_torch)
    assert y.shape == x.shape and y.dtype == F64
    (grad,) = torch.autograd.grad((y * weights).sum(), x_torch)

    # PhiFlow alone: phiml tensors in PhiFlow's (x, y) order, PhiFlow's own gradient function
    x_phi = math.tensor(x.transpose(1, 2), math.batch("batch"), math.spatial("x,y"))
    w_phi = math.tensor(weights.transpose(1, 2), math.batch("batch"), math.spatial("x,y"))
    y_phi = fn(x_phi).values.native("batch,y,x")
    torch.testing.assert_close(y, y_phi, rtol=0, atol=1e-14)

    def loss(m):
        return math.sum(fn(m).values * w_phi, "batch,x,y")

    grad_phi = math.gradient(loss, "m", get_output=False)(x_phi).native("batch,y,x")
    torch.testing.assert_close(grad, grad_phi, rtol=0, atol=1e-13)


@needs_phiflow
def test_adapter_gradcheck_and_float32():
    """gradcheck in float64 through PhiFlow's MacCormack; float32 in -> float32 out."""
    from phi.torch.flow import Box, CenteredGrid, advect, extrapolation, math

    from physgrad.interop import phiflow_physics

    def fn(m):
        grid = CenteredGrid(m, extrapolation.PERIODIC, bounds=Box(x=8, y=6))
        wind = CenteredGrid(
            math.vec(x=0.7, y=-0.4), extrapolation.PERIODIC, bounds=grid.bounds, x=4, y=3
        )
        return advect.mac_cormack(grid, wind, 1.3)

    physics = phiflow_physics(fn, "y:s,x:s")
    x = torch.rand(2, 3, 4, generator=_gen(4), dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(physics, (x,))
    assert physics(x.detach().float()).dtype == torch.float32


@needs_phiflow
def test_adapter_parameters_to_field_and_errors():
    """Channel parameters -> a field, gradcheck w.r.t. a velocity parameter; bad shapes."""
    from phi.torch.flow import Box, CenteredGrid, advect, extrapolation

    from physgrad.interop import phiflow_physics

    marker = CenteredGrid(
        lambda p: (p.vector["x"] - 4) ** 2 * 0.1 + p.vector["y"] * 0.2,
        extrapolation.PERIODIC, bounds=Box(x=8, y=6), x=4, y=3,
    )

    def fn(wind):  # wind (batch, vector) -> marker moved by it, (batch, y, x)
        grid = CenteredGrid(wind, extrapolation.PERIODIC, bounds=marker.bounds, x=4, y=3)
        return advect.semi_lagrangian(marker, grid, 1.0)

    physics = phiflow_physics(fn, "vector:c=(x,y)", "y,x")
    wind = torch.tensor([[0.3, 0.2], [-0.6, 0.45]], dtype=F64, requires_grad=True)
    assert physics(wind).shape == (2, 3, 4)
    assert torch.autograd.gradcheck(physics, (wind,))
    with pytest.raises(ValueError, match="size 3 along 'vector'"):
        physics(torch.zeros(2, 3, dtype=F64))
    with pytest.raises(ValueError, match="shape"):
        physics(torch.zeros(2, 2, 1, dtype=F64))
    with pytest.raises(ValueError, match="batch"):
        phiflow_physics(fn, "b:b,y:s")
    with pytest.raises(ValueError, match="lacks"):
        phiflow_physics(fn, "vector:c=(x,y)", "z")(wind)


@needs_phiflow
def test_adapter_backpropagates_through_phiflow_projection_in_a_numpy_context():
    """make_incompressible through the adapter: values and gradients equal ours (FFT solve).

    The forward pass runs inside phiml's NumPy backend context (the default after
    ``from phi.flow import *``): the adapter must still give PhiFlow's own tensors (the
    solve's initial guess) the torch backend, or torch cannot save them for backward.
    """
    from phi.physics import fluid
    from phiml.backend import NUMPY
    from phiml.math import Solve

    from physgrad.interop import phiflow_physics, staggered_grid

    small = Domain(4, 3, 8.0, 6.0)

    def project(v):
        grid = staggered_grid(v.native("batch,~vector,y,x"), small)
        return fluid.make_incompressible(grid, (), Solve("CG", 1e-13, 1e-13))[0]

    physics = phiflow_physics(project, "~vector:d=(x,y),y:s,x:s", "~vector,y,x")
    v = torch.randn(2, 2, 3, 4, generator=_gen(12), dtype=F64, requires_grad=True)
    weights = torch.randn(2, 2, 3, 4, generator=_gen(13), dtype=F64)
    with NUMPY:
        y = physics(v)
    (grad,) = torch.autograd.grad((y * weights).sum(), v)  # PhiFlow's adjoint solve
    ours_y = make_incompressible(v, small)[0]
    torch.testing.assert_close(y, ours_y, rtol=0, atol=1e-11)
    (ours,) = torch.autograd.grad((ours_y * weights).sum(), v)
    torch.testing.assert_close(grad, ours, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- Poisson


@needs_phiflow
def test_poisson_dst_matches_phiflow_dirichlet_solve():
    """Our DST-I ∇⁻² (zero Dirichlet, unit cells) == PhiFlow's CG solve of field.laplace."""
    from phi.torch.flow import Box, CenteredGrid, Solve, extrapolation, field, math

    from physgrad.interop import to_phiml

    x = torch.randn(3, 12, 10, generator=_gen(5), dtype=F64)  # (batch, ny, nx)
    ours = poisson_solve(x)
    rhs = CenteredGrid(to_phiml(x, "y:s,x:s"), extrapolation.ZERO, bounds=Box(x=10, y=12))
    solve = Solve("CG", 1e-12, 1e-12, x0=rhs * 0)
    y = math.solve_linear(math.jit_compile_linear(field.laplace), rhs, solve)
    torch.testing.assert_close(y.values.native("batch,y,x"), ours, rtol=0, atol=1e-11)


# --------------------------------------------------------------------------- fluid


@needs_phiflow
def test_periodic_projection_matches_phiflow_make_incompressible():
    """Staggered periodic projection: same velocity and (mean-free) pressure to ~1e-13."""
    from phi.torch.flow import Solve, fluid

    from physgrad.interop import staggered_grid

    v = torch.randn(2, 2, DOMAIN.ny, DOMAIN.nx, generator=_gen(6), dtype=F64)
    ours, p_ours = make_incompressible(v, DOMAIN)
    projected, pressure = fluid.make_incompressible(
        staggered_grid(v, DOMAIN), (), Solve("CG", 1e-12, 1e-12, max_iterations=5000)
    )
    torch.testing.assert_close(
        projected.values.native("batch,~vector,y,x"), ours, rtol=0, atol=1e-10
    )
    p = pressure.values.native("batch,y,x")
    torch.testing.assert_close(p - p.mean(dim=(1, 2), keepdim=True), p_ours, rtol=0, atol=1e-10)


@needs_phiflow
@pytest.mark.parametrize("dt", [0.7, -1.9])
def test_advection_matches_phiflow(dt):
    """Marker (SL, MacCormack) and staggered velocity (SL) advection agree to round-off."""
    from phi.torch.flow import advect

    from physgrad.interop import centered_grid, staggered_grid

    v = _velocity(7)
    m = torch.rand(2, DOMAIN.ny, DOMAIN.nx, generator=_gen(8), dtype=F64)
    vg, mg = staggered_grid(v, DOMAIN), centered_grid(m, DOMAIN)
    for scheme, phi_advect in (
        ("semi_lagrangian", advect.semi_lagrangian),
        ("mac_cormack", advect.mac_cormack),
    ):
        ours = advect_centered(m, v, dt, DOMAIN, scheme)
        theirs = phi_advect(mg, vg, dt).values.native("batch,y,x")
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-13, msg=scheme)
    ours = advect_staggered(v, v, dt, DOMAIN, "semi_lagrangian")
    theirs = advect.semi_lagrangian(vg, vg, dt).values.native("batch,~vector,y,x")
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)


@needs_phiflow
def test_staggered_maccormack_differs_from_phiflow_only_by_its_limiter_window():
    """PhiFlow 3.4.0 clamps a staggered component to a window shifted by half a cell.

    Same back-trace, same correction ``sl + (f - inv) / 2``; PhiFlow's clamp uses the 2x2
    samples around ``(i - 1/2 - dt u / dx, j - dt v / dy)`` for ``u`` (``x`` shifted) and
    around ``(i - dt u / dx, j - 1/2 - dt v / dy)`` for ``v``; ours around the true back-traced
    point. Rebuilding PhiFlow's result from our pieces with that window matches to round-off.
    """
    from phi.torch.flow import advect

    from physgrad.interop import staggered_grid

    dt = 0.7
    v = _velocity(9)
    vg = staggered_grid(v, DOMAIN)
    theirs = advect.mac_cormack(vg, vg, dt).values.native("batch,~vector,y,x")
    ours = advect_staggered(v, v, dt, DOMAIN, "mac_cormack")

    n, shape = 4, DOMAIN.shape
    values = v.reshape(n, *shape)
    w = staggered_at_faces(v)
    sx = (dt / DOMAIN.dx) * w[:, :, 0].reshape(n, *shape)
    sy = (dt / DOMAIN.dy) * w[:, :, 1].reshape(n, *shape)
    ii = torch.arange(shape[1], dtype=F64)
    jj = torch.arange(shape[0], dtype=F64)[:, None]
    sl = sample_periodic(values, ii - sx, jj - sy)[0]
    unclamped = sl + 0.5 * (values - sample_periodic(sl, ii + sx, jj + sy)[0])
    half = torch.tensor([0.5, 0.0] * 2, dtype=F64)[:, None, None]  # u: x shifted, v: y
    _, lo, hi = sample_periodic(values, ii - sx - half, jj - sy - half.roll(1, 0), limits=True)
    rebuilt = torch.minimum(torch.maximum(unclamped, lo), hi).reshape_as(v)
    torch.testing.assert_close(theirs, rebuilt, rtol=0, atol=1e-13)
    # our own limiter is the unshifted one, so the two results differ where either clamps
    assert (ours - theirs).abs().max() > 1e-3


@needs_phiflow
def test_full_semi_lagrangian_fluid_step_matches_phiflow():
    """One FluidSimulator step (SL) == advect, make_incompressible, rescale, advect in PhiFlow."""
    from phi.torch.flow import Solve

    from physgrad.interop import centered_grid, phiflow_fluid_step, staggered_grid

    sim = FluidSimulator(DOMAIN, scheme="semi_lagrangian")
    v = _velocity(10)
    m = _smooth_marker()
    m1, v1, _ = sim.step(m, v)
    pm, pv, _ = phiflow_fluid_step(
        centered_grid(m, DOMAIN),
        staggered_grid(v, DOMAIN),
        sim.dt,
        scheme="semi_lagrangian",
        solve=Solve("CG", 1e-12, 1e-12, max_iterations=5000),
    )
    torch.testing.assert_close(pv.values.native("batch,~vector,y,x"), v1, rtol=0, atol=1e-10)
    torch.testing.assert_close(pm.values.native("batch,y,x"), m1, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- the example


def test_phiflow_smoke_example_runs(tmp_path, capsys):
    """examples/phiflow_smoke.py in smoke mode: both methods train, table and curves written."""
    pytest.importorskip("phi", reason="phiflow not installed")
    path = Path(__file__).resolve().parents[1] / "examples" / "phiflow_smoke.py"
    example = load_script(path)
    result = example.main(smoke=True, out=str(tmp_path))
    assert (tmp_path / "curves.png").is_file()
    assert len(result.histories) == 2 and all(len(h) == 3 for h in result.histories.values())
    assert "| method |" in capsys.readouterr().out
