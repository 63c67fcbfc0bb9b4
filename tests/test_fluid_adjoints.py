"""The staggered stencils as single autograd nodes (physgrad.physics.fluid.adjoints) give
autograd's own gradients through the torch ops, bit for bit, and correct ones (gradcheck)."""

from __future__ import annotations

import importlib

import pytest
import torch

from physgrad.experiments import get_experiment
from physgrad.physics.fluid import Domain, adjoints, kernel
from physgrad.physics.fluid import grid as grid_module
from physgrad.physics.fluid import pressure as pressure_module
from physgrad.physics.fluid.grid import (
    _face_components,
    divergence,
    gradient_to_faces,
    staggered_to_centered,
)

simulate_module = importlib.import_module("physgrad.physics.fluid.simulate")
advection_module = importlib.import_module("physgrad.physics.fluid.advection")
pytestmark = pytest.mark.skipif(
    kernel.library() is None, reason=f"no compiled kernel: {kernel.kernel_status()}"
)
DTYPES = [torch.float32, torch.float64]


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().view(torch.int32 if t.dtype == torch.float32 else torch.int64)


def assert_bitwise(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    assert torch.equal(_bits(a), _bits(b)), f"{int((_bits(a) != _bits(b)).sum())} differ"


def _torch_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    """Record the stencils and the energy rescale as torch ops (the reference), and the
    advections as their own nodes (not together with the stencil that makes their velocity)."""
    for module in (grid_module, pressure_module, simulate_module, advection_module):
        monkeypatch.setattr(module, "_recorded", lambda *tensors: False)


def _velocity(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=dtype)


def _stencil_loss(v: torch.Tensor, p: torch.Tensor, domain: Domain,
                  weights: list[torch.Tensor]) -> torch.Tensor:
    """All four stencils of ``v``, which also feeds other ops: its gradient is a sum of
    several terms, whose order matters in floating point."""
    wx, wy = _face_components(v)
    c = staggered_to_centered(v * 1.5)
    d = divergence(v, domain)
    s = pressure_module._make_incompressible(v, domain, "fft", None, None)[0]
    target = simulate_module.energy(v * 0.5 + 1.0)
    # the rescaled velocity feeds nothing else (as in a simulation step: see adjoints.py)
    r = simulate_module.rescale_energy(s * 1.0, target, "component")
    r_total = simulate_module.rescale_energy(s * 2.0, target.mean(1, keepdim=True), "total")
    return (
        (wx * weights[0]).sum() + (wy * weights[1]).sum() + (c * weights[2]).sum()
        + (d * d).sum() + (s * weights[3]).sum() + (v * v).sum() + (p * s[:, 0]).sum()
        + (r * weights[1]).sum() + (r_total * weights[2]).sum()
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 2, 8, 8), (2, 2, 5, 7), (1, 2, 3, 2)])
def test_gradients_are_bitwise_autograd_through_the_torch_ops(
    monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype, shape: tuple[int, ...]
) -> None:
    domain = Domain(nx=shape[3], ny=shape[2], size_x=1.7, size_y=0.9)
    v0 = _velocity(shape, dtype)
    p0 = _velocity((shape[0], *shape[2:]), dtype, seed=1)
    weights = [_velocity(shape, dtype, seed=s) for s in range(2, 6)]

    def gradients() -> tuple[torch.Tensor, ...]:
        v = v0.clone().requires_grad_(True)
        p = p0.clone().requires_grad_(True)
        loss = _stencil_loss(v, p, domain, weights)
        g_v, g_p = torch.autograd.grad(loss, (v, p))
        # the subtraction with a pressure that feeds nothing else (as in the projection)
        q = p0.clone().requires_grad_(True)
        w = v0.clone().requires_grad_(True)
        if grid_module._recorded(w):
            s = adjoints.SubtractGradient.apply(w, q * 1.0, domain.dx, domain.dy)
        else:
            s = w - gradient_to_faces(q * 1.0, domain)
        g_w, g_q = torch.autograd.grad((s * weights[1]).sum() + (w * w).sum(), (w, q))
        return loss, g_v, g_p, g_w, g_q

    fused = gradients()
    with monkeypatch.context() as patch:
        _torch_ops(patch)
        reference = gradients()
    for a, b in zip(fused, reference, strict=True):
        assert_bitwise(a, b)


def test_a_pressure_with_other_uses_gets_the_same_gradient_to_rounding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The subtraction's node adds the pressure's four stencil terms before they meet the
    pressure's other gradient terms (autograd through the torch ops interleaves them): the
    same gradient up to the order of a floating-point sum. The projection's own pressure
    feeds only the subtraction, so there the bits are the same (test above)."""
    domain = Domain(nx=7, ny=6, size_x=1.7, size_y=0.9)
    w0 = _velocity((2, 2, 6, 7), torch.float64)
    q0 = _velocity((2, 6, 7), torch.float64, seed=1)

    def gradient() -> torch.Tensor:
        w, q = w0.clone().requires_grad_(True), q0.clone().requires_grad_(True)
        s, _ = pressure_module._make_incompressible(w, domain, "fft", None, None)
        s = adjoints.SubtractGradient.apply(s, q, domain.dx, domain.dy) if grid_module._recorded(
            w
        ) else s - gradient_to_faces(q, domain)
        return torch.autograd.grad((s**2).sum() + (q**3).sum(), q)[0]

    fused = gradient()
    with monkeypatch.context() as patch:
        _torch_ops(patch)
        reference = gradient()
    torch.testing.assert_close(fused, reference, rtol=1e-13, atol=1e-13)


def test_second_derivatives_through_the_torch_adjoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """``create_graph=True`` differentiates the torch-op adjoints: Hessian-vector products
    equal those through the torch ops (float64, to rounding)."""
    domain = Domain(nx=6, ny=5, size_x=1.7, size_y=0.9)
    v0 = _velocity((2, 2, 5, 6), torch.float64)
    p0 = _velocity((2, 5, 6), torch.float64, seed=1)
    weights = [_velocity((2, 2, 5, 6), torch.float64, seed=s) for s in range(2, 6)]
    direction = _velocity((2, 2, 5, 6), torch.float64, seed=9)

    def hvp() -> torch.Tensor:
        v = v0.clone().requires_grad_(True)
        loss = _stencil_loss(v, p0, domain, weights) + (_face_components(v)[1] ** 3).sum()
        (g,) = torch.autograd.grad(loss, v, create_graph=True)
        return torch.autograd.grad((g * direction).sum(), v)[0]

    fused = hvp()
    with monkeypatch.context() as patch:
        _torch_ops(patch)
        reference = hvp()
    torch.testing.assert_close(fused, reference, rtol=1e-12, atol=1e-12)
    assert fused.abs().max() > 1.0  # a real second derivative, not zeros


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["component", "total"])
def test_rescale_energy_node(monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype,
                             mode: str) -> None:
    """The rescale's compiled backward equals its torch form and autograd through the torch
    ops bit for bit, including a sample with zero energy (factor 0, finite gradient), and
    passes gradcheck (float64)."""
    v0 = _velocity((3, 2, 5, 4), dtype)
    v0[1] = 0.0
    target0 = simulate_module.energy(_velocity((3, 2, 5, 4), dtype, seed=1), mode)
    weights = _velocity((3, 2, 5, 4), dtype, seed=2)

    def gradients(compiled: bool = True) -> tuple[torch.Tensor, ...]:
        v, target = v0.clone().requires_grad_(True), target0.clone().requires_grad_(True)
        out = simulate_module.rescale_energy(v * 1.0, target * 1.0, mode)
        return (out, *torch.autograd.grad((out * weights).sum() + (v * v).sum(), (v, target)))

    fused = gradients()
    with monkeypatch.context() as patch:
        patch.setattr(kernel, "usable", lambda *tensors: False)
        patch.setattr(simulate_module, "_recorded", lambda *tensors: True)
        torch_form = gradients()
    with monkeypatch.context() as patch:
        _torch_ops(patch)
        reference = gradients()
    for a, b, c in zip(fused, torch_form, reference, strict=True):
        assert torch.isfinite(a).all()
        assert_bitwise(a, c)
        assert_bitwise(b, c)
    if dtype == torch.float64:
        v = _velocity((2, 2, 3, 4), dtype).requires_grad_(True)
        target = simulate_module.energy(_velocity((2, 2, 3, 4), dtype, seed=1), mode)
        assert torch.autograd.gradcheck(
            lambda a, b: adjoints.RescaleEnergy.apply(a, b, mode), (v, target.requires_grad_())
        )


@pytest.mark.parametrize("dtype", DTYPES)
def test_compiled_backward_equals_the_torch_adjoints(dtype: torch.dtype) -> None:
    g = [_velocity((4, 2, 6, 9), dtype, seed=s) for s in range(3)]
    scalar = _velocity((4, 6, 9), dtype, seed=7)
    dx, dy = 0.37, 1.9
    pairs = [
        (kernel.stencil_backward("face_components", torch.empty_like(g[0]), g[0], g[1]),
         adjoints.face_components_adjoint(g[0], g[1])),
        (kernel.stencil_backward("staggered_to_centered", torch.empty_like(g[2]),
                                 g[2][:, 0].contiguous(), g[2][:, 1].contiguous(), 6 * 9),
         adjoints.centred_components_adjoint(g[2][:, 0], g[2][:, 1])),
        (kernel.stencil_backward("staggered_to_centered", torch.empty_like(g[2]),  # strided
                                 g[2][:, 0], g[2][:, 1], 2 * 6 * 9),
         adjoints.centred_components_adjoint(g[2][:, 0], g[2][:, 1])),
        (kernel.stencil_backward("divergence", torch.empty_like(g[0]), scalar, dx, dy),
         adjoints.divergence_adjoint(scalar, dx, dy)),
        (kernel.stencil_backward("subtract_gradient", torch.empty_like(scalar), g[1], dx, dy),
         adjoints.subtract_gradient_adjoint(g[1], dx, dy)),
    ]
    for compiled, reference in pairs:
        assert_bitwise(compiled, reference)


def test_gradcheck_of_the_single_nodes() -> None:
    """Against finite differences (float64): an independent check of the adjoints."""
    v = _velocity((2, 2, 4, 5), torch.float64).requires_grad_(True)
    p = _velocity((2, 4, 5), torch.float64, seed=1).requires_grad_(True)
    assert torch.autograd.gradcheck(adjoints.FaceComponents.apply, (v,))
    assert torch.autograd.gradcheck(
        lambda t: torch.stack(adjoints.CentredComponents.apply(t), 1), (v,)
    )
    assert torch.autograd.gradcheck(lambda t: adjoints.Divergence.apply(t, 0.5, 2.0), (v,))
    assert torch.autograd.gradcheck(
        lambda a, b: adjoints.SubtractGradient.apply(a, b, 0.5, 2.0), (v, p)
    )


@pytest.mark.parametrize("method", ["adam", "pg-reverse-sim"])
def test_training_iteration_is_bitwise_autograd_through_the_torch_ops(
    monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """A fluid training iteration (the 8-step simulator with its gradient) gives the same
    weights whether the stencils are single nodes or torch ops."""
    from physgrad.training.trainer import Trainer

    def weights_after_step() -> torch.Tensor:
        exp = get_experiment("fluid")
        spec = exp.methods[method]
        torch.manual_seed(0)
        net = exp.network()
        trainer = Trainer(exp.problem(), net, spec.method(), spec.optimizer, batch_size=3,
                          seed=5, progress=False)
        trainer.step()
        return torch.cat([q.detach().flatten() for q in net.parameters()])

    fused = weights_after_step()
    with monkeypatch.context() as patch:
        _torch_ops(patch)
        reference = weights_after_step()
    assert_bitwise(fused, reference)


def test_energy_factor_backward_is_autograds_on_edge_values() -> None:
    """The written-out gradient of the rescale factor equals autograd's bit for bit, with
    zero, negative, subnormal, huge, infinite and NaN energies and targets and incoming
    gradients of either zero sign or NaN."""
    values = [0.0, -0.0, 1e-30, 3e-39, 1.0, 2.5, -1.0, 1e30, float("nan"), float("inf")]
    grid = torch.tensor(values, dtype=torch.float64)
    e0, t0 = (a.reshape(-1, 1, 1, 1) for a in torch.meshgrid(grid, grid, indexing="ij"))
    for dtype in DTYPES:
        e, target = e0.to(dtype), t0.to(dtype)
        for grad in (_velocity(e.shape, dtype), torch.full_like(e, float("nan")),
                     torch.zeros_like(e), -torch.zeros_like(e)):
            e_, t_ = e.clone().requires_grad_(True), target.clone().requires_grad_(True)
            reference = torch.autograd.grad(adjoints.energy_factor(e_, t_), (e_, t_), grad)
            written = adjoints._energy_factor_backward(e, target, grad)
            for a, b in zip(written, reference, strict=True):
                assert_bitwise(a, b)


def _edge_energies(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    values = [0.0, -0.0, 1e-30, 3e-39, 1.0, 2.5, -1.0, 1e30, float("nan"), float("inf")]
    grid = torch.tensor(values, dtype=torch.float64)
    e, t = (a.reshape(-1, 1, 1, 1).to(dtype) for a in torch.meshgrid(grid, grid, indexing="ij"))
    return e, t


@pytest.mark.parametrize("dtype", DTYPES)
def test_energy_factor_is_its_formula_on_edge_values(dtype: torch.dtype) -> None:
    """``sqrt(t / e)`` where ``e > 0`` and ``t / e > 0``, else 0: the same bits as the formula
    written out op by op (zero, negative, subnormal, huge, infinite and NaN values)."""
    e, t = _edge_energies(dtype)
    ratio = t / torch.where(e > 0, e, torch.ones_like(e))
    safe = torch.where(ratio > 0, ratio, torch.ones_like(ratio))
    formula = torch.where((e > 0) & (ratio > 0), torch.sqrt(safe), torch.zeros_like(ratio))
    assert_bitwise(adjoints.energy_factor(e, t), formula)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("factors", [1, 2])
def test_compiled_energy_factor_backward_is_the_torch_one(dtype: torch.dtype, factors: int
                                                          ) -> None:
    """The compiled gradient of the rescale factor (which takes the factor instead of taking
    torch's square root again) equals :func:`adjoints._energy_factor_backward` and the mean's
    gradient per cell bit for bit on edge values, for one factor per sample or per
    component."""
    e, t = (a.reshape(-1, factors, 1, 1) for a in _edge_energies(dtype))
    velocity = torch.empty(e.shape[0], 2, 3, 5, dtype=dtype)
    factor = adjoints.energy_factor(e, t)
    for grad in (_velocity(e.shape, dtype), torch.full_like(e, float("nan")),
                 torch.zeros_like(e), -torch.zeros_like(e)):
        g_e, g_t = adjoints._energy_factor_backward(e, t, grad)
        q, g_target = kernel.energy_factor_backward(velocity, e, t, factor, grad)
        assert_bitwise(q, g_e / (velocity.numel() // e.numel()))
        assert_bitwise(g_target, g_t)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scheme", ["mac_cormack", "semi_lagrangian"])
def test_carried_advection_is_bitwise_the_two_nodes_it_replaces(
    monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype, scheme: str
) -> None:
    """Two simulator steps (self-advection with the face means, marker advection with the
    centring, each one node): the loss and the gradients of the initial velocity and marker
    are those of the stencil and advection as separate nodes, bit for bit; second derivatives
    agree to rounding."""
    from physgrad.physics.fluid import FluidSimulator

    sim = FluidSimulator(Domain(nx=9, ny=7, size_x=1.7, size_y=0.9), dt=0.05, steps=2,
                         scheme=scheme)  # type: ignore[arg-type]
    v0 = _velocity((3, 2, 7, 9), dtype)
    m0 = _velocity((3, 1, 7, 9), dtype, seed=1).abs()
    weights = _velocity((3, 1, 7, 9), dtype, seed=2)

    def gradients() -> tuple[torch.Tensor, ...]:
        v, m = v0.clone().requires_grad_(True), m0.clone().requires_grad_(True)
        out = m
        velocity = v * 1.0
        for _ in range(sim.steps):
            out, velocity, _ = sim._step(out, velocity, None)
        loss = (out * weights).sum() + (velocity**2).sum()
        return (loss, *torch.autograd.grad(loss, (v, m)))

    fused = gradients()
    with monkeypatch.context() as patch:
        patch.setattr(advection_module, "_recorded", lambda *tensors: False)
        separate = gradients()
    for a, b in zip(fused, separate, strict=True):
        assert_bitwise(a, b)

    def hvp() -> torch.Tensor:
        v = v0.to(torch.float64).requires_grad_(True)
        out, velocity, _ = sim._step(m0.to(torch.float64), v * 1.0, None)
        loss = (out * weights.to(torch.float64)).sum() + (velocity**3).sum()
        (g,) = torch.autograd.grad(loss, v, create_graph=True)
        return torch.autograd.grad(g.sum(), v)[0]

    fused_hvp = hvp()
    with monkeypatch.context() as patch:
        patch.setattr(advection_module, "_recorded", lambda *tensors: False)
        torch.testing.assert_close(fused_hvp, hvp(), rtol=1e-12, atol=1e-12)


def test_gradcheck_of_the_carried_advection() -> None:
    """Against finite differences (float64, no limiter kink nearby at these values)."""
    domain = Domain(nx=5, ny=4, size_x=1.0, size_y=1.0)
    carrier = (0.3 * _velocity((2, 2, 4, 5), torch.float64)).requires_grad_(True)
    marker = _velocity((2, 1, 4, 5), torch.float64, seed=3).requires_grad_(True)
    carried = advection_module._CarriedAdvection
    assert torch.autograd.gradcheck(
        lambda c: carried.apply(c, c, 0.1, domain, False, True), (carrier,)
    )
    assert torch.autograd.gradcheck(
        lambda m, c: carried.apply(m, c, 0.1, domain, False, False), (marker, carrier)
    )
