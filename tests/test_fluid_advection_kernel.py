"""The fused CPU advection kernel against the torch fast path (bitwise) and the gather path,
its gradients, NaN propagation and its fallbacks (PHYSGRAD_NO_KERNEL, no compiler, other
dtypes/devices)."""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

import pytest
import torch

from physgrad.physics.fluid import Domain, FluidSimulator, kernel
from physgrad.physics.fluid.advection import (
    _advect_fast,
    _advect_own_grid,
    _advect_own_grid_gather,
    _displacement,
)

F32, F64 = torch.float32, torch.float64
SCHEMES = ("mac_cormack", "semi_lagrangian")


@pytest.fixture
def fused() -> None:
    """The kernel is built (CI has a C compiler); elsewhere these tests are skipped."""
    os.environ.pop(kernel.DISABLE_VARIABLE, None)
    if kernel.library() is None:
        pytest.skip(kernel.kernel_status())


def _bits(t: torch.Tensor) -> torch.Tensor:
    """Integer view of the bits; every NaN mapped to one pattern (payloads may differ)."""
    t = t.detach().contiguous()
    bits = t.view(torch.int32 if t.dtype == F32 else torch.int64).clone()
    bits[torch.isnan(t)] = -1
    return bits


def assert_bitwise(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    different = _bits(a) != _bits(b)
    assert not bool(different.any()), (
        f"{int(different.sum())} of {a.numel()} differ, max abs "
        f"{float((a - b).abs().nan_to_num(0).max()):.3g}"
    )


def _inputs(
    batch: int, ny: int, nx: int, dtype: torch.dtype, seed: int, binary: bool = False,
    on_grid: bool = True,
) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(batch, ny, nx, generator=g, dtype=dtype)
    if binary:  # limiter ties: many equal corner values
        values = (values > 0.5).to(dtype)
    wx = 8 * torch.randn(batch, ny, nx, generator=g, dtype=dtype)
    wy = 8 * torch.randn(batch, ny, nx, generator=g, dtype=dtype)
    if on_grid:
        wx[: (batch + 1) // 2] = 0.0  # back-traced points exactly on grid columns
        wy[0, 0] = 0.0  # and a row of them on grid rows
    weights = torch.randn(batch, ny, nx, generator=g, dtype=dtype)
    return values, wx, wy, weights


def _run(
    values: torch.Tensor, wx: torch.Tensor, wy: torch.Tensor, weights: torch.Tensor,
    domain: Domain, scheme: str, needs: tuple[bool, bool, bool], advect=_advect_own_grid,
) -> list[torch.Tensor]:
    """Plain values, values with a graph, and the gradients of ``(out * weights).sum()``."""
    with torch.no_grad():
        plain = advect(values, wx, wy, 0.25, domain, scheme)
    inputs = [t.clone().requires_grad_(n) for t, n in zip((values, wx, wy), needs, strict=True)]
    out = advect(*inputs, 0.25, domain, scheme)
    grads = torch.autograd.grad((out * weights).sum(), [t for t in inputs if t.requires_grad])
    return [plain, out.detach(), *grads]


def _torch_path(monkeypatch: pytest.MonkeyPatch, *args, **kwargs) -> list[torch.Tensor]:
    with monkeypatch.context() as m:
        m.setenv(kernel.DISABLE_VARIABLE, "1")
        return _run(*args, **kwargs)


def _counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts the kernel's forward and backward calls."""
    calls = {"advect": 0, "advect_backward": 0}
    for name in calls:
        original = getattr(kernel, name)

        def wrapper(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(kernel, name, wrapper)
    return calls


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize(
    ("batch", "ny", "nx", "binary"),
    [(6, 12, 16, False), (6, 12, 16, True), (1, 13, 11, False), (3, 2, 5, True), (2, 9, 7, False)],
)
def test_kernel_is_bitwise_the_torch_fast_path(
    fused: None, monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype, scheme: str,
    batch: int, ny: int, nx: int, binary: bool,
) -> None:
    """Values (with and without a graph) and gradients, odd grids, batch 1 and more, the
    limiter's ties, back-traces exactly on grid lines, inputs of which only some need
    gradients: bit for bit the torch fast path."""
    values, wx, wy, weights = _inputs(batch, ny, nx, dtype, seed=ny * nx + batch, binary=binary)
    domain = Domain(nx, ny, 2.0 * nx, 1.5 * ny)
    calls = _counted(monkeypatch)
    for needs in ((True, True, True), (False, True, False), (True, False, False)):
        fused_results = _run(values, wx, wy, weights, domain, scheme, needs)
        reference = _torch_path(monkeypatch, values, wx, wy, weights, domain, scheme, needs)
        for got, expected in zip(fused_results, reference, strict=True):
            assert_bitwise(got, expected)
    assert calls["advect"] == 6 and calls["advect_backward"] == 3  # the kernel did run


@pytest.mark.parametrize("dtype", [F32, F64])
def test_kept_decisions_are_the_torch_paths_limiter(fused: None, dtype: torch.dtype) -> None:
    """What the graph's forward keeps for its backward: bit 0 of each byte is the torch
    path's ``keep`` (the limiter left the point alone), bits 1 and 2 the block corner that a
    clamped result equals first (order 00 01 10 11); the result is that of a plain call."""
    values, wx, wy, _ = _inputs(3, 9, 11, dtype, seed=2, binary=True)
    domain = Domain(11, 9, 22.0, 13.5)
    cx, cy = 0.25 / domain.dx, 0.25 / domain.dy
    plain, nothing = kernel.advect(values, wx, wy, cx, cy, True)
    out, decisions = kernel.advect(values, wx, wy, cx, cy, True, keep_decisions=True)
    assert nothing is None and decisions is not None and decisions.dtype == torch.uint8
    assert_bitwise(out, plain)
    shift = _displacement(wx, wy, 0.25, domain)
    torch_out, state = _advect_fast(values, shift, True, keep_state=True)
    assert_bitwise(out, torch_out)
    kept = (decisions & 1).bool()
    assert torch.equal(kept, state["keep"]) and 0 < int(kept.sum()) < kept.numel()
    # a clamped value is the block's corner named by (dx, dy)
    padded = state["padded"][:, 0]
    corner = state["corner_index"].round().long()  # (N, 2, ny, nx): x, y of the 00 corner
    x = corner[:, 0] + ((decisions >> 1) & 1).long()
    y = corner[:, 1] + ((decisions >> 2) & 1).long()
    n = torch.arange(len(values))[:, None, None].expand_as(x)
    assert torch.equal(padded[n, y, x][~kept], out[~kept])
    assert kernel.advect(values, wx, wy, cx, cy, False, keep_decisions=True)[1] is None


def test_kernel_backward_refuses_missing_or_foreign_decisions(fused: None) -> None:
    """The MacCormack backward reads a byte per point of the forward's decisions: without
    them, or with another shape or dtype, it stops with one line instead of reading past."""
    values, wx, wy, grad = _inputs(2, 6, 7, F32, seed=4)
    out, decisions = kernel.advect(values, wx, wy, 0.1, 0.1, True, keep_decisions=True)
    scales, needs = (0.05, 0.05), (True, True, True)
    for wrong in (None, decisions[:1], decisions.float(), decisions.transpose(1, 2)):
        with pytest.raises(ValueError, match="keep_decisions=True"):
            kernel.advect_backward(values, wx, wy, 0.1, 0.1, True, wrong, grad, scales, needs)
    grads = kernel.advect_backward(values, wx, wy, 0.1, 0.1, True, decisions, grad, scales, needs)
    assert all(bool(torch.isfinite(g).all()) for g in grads)
    # the semi-Lagrangian backward needs nothing kept
    grads = kernel.advect_backward(values, wx, wy, 0.1, 0.1, False, None, grad, scales, needs)
    assert all(bool(torch.isfinite(g).all()) for g in grads)
    # the same for the advection that makes its velocity from a staggered carrier
    carrier = torch.randn(2, 2, 6, 7, generator=torch.Generator().manual_seed(5))
    out, decisions = kernel.carried_advect(carrier, carrier, True, 0.1, 0.1, True)
    for wrong in (None, decisions[:1], decisions.float()):
        with pytest.raises(ValueError, match="carried_advect"):
            kernel.carried_advect_backward(carrier, carrier, True, 0.1, 0.1, True, wrong,
                                           torch.ones_like(out), scales, True)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_kernel_matches_the_gather_implementation(fused: None, scheme: str) -> None:
    """An independent implementation (four gathers per sample, torch.where limiter). Off
    grid lines: exactly on one, the velocity derivative is one-sided and the grid_sample
    round trip p -> p (2 / n) - 1 -> (g + 1) n / 2 may land just below the line, so the
    fast paths may take the other side's (equally valid) derivative."""
    values, wx, wy, weights = _inputs(4, 10, 14, F64, seed=5, binary=False, on_grid=False)
    domain = Domain(14, 10, 28.0, 20.0)
    needs = (True, True, True)
    fused_results = _run(values, wx, wy, weights, domain, scheme, needs)
    gather = _run(values, wx, wy, weights, domain, scheme, needs, _advect_own_grid_gather)
    for got, expected in zip(fused_results, gather, strict=True):
        torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_kernel_gradcheck(fused: None, monkeypatch: pytest.MonkeyPatch, scheme: str) -> None:
    calls = _counted(monkeypatch)
    domain = Domain(6, 5, 12.0, 10.0)
    g = torch.Generator().manual_seed(7)
    inputs = [torch.randn(2, 5, 6, generator=g, dtype=F64, requires_grad=True) for _ in range(3)]

    def advect(values: torch.Tensor, wx: torch.Tensor, wy: torch.Tensor) -> torch.Tensor:
        return _advect_own_grid(values, 2 * wx, 2 * wy, 0.25, domain, scheme)

    assert torch.autograd.gradcheck(advect, inputs, atol=1e-6)
    assert calls["advect_backward"] > 0


def test_kernel_propagates_nan_like_the_torch_path(
    fused: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    values, wx, wy, weights = _inputs(2, 8, 9, F32, seed=3)
    wx[0, 3, 4] = float("nan")
    values[1, 5, 5] = float("nan")
    domain = Domain(9, 8)
    for scheme in SCHEMES:
        fused_results = _run(values, wx, wy, weights, domain, scheme, (True, True, True))
        reference = _torch_path(monkeypatch, values, wx, wy, weights, domain, scheme,
                                (True, True, True))
        assert bool(torch.isnan(fused_results[0]).any())
        assert any(bool(torch.isnan(g).any()) for g in fused_results[2:])
        for got, expected in zip(fused_results, reference, strict=True):
            assert_bitwise(got, expected)  # the same NaNs, the same bits elsewhere


def test_simulator_runs_are_bitwise_equal_with_and_without_kernel(
    fused: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two full training-simulator steps (staggered self-advection, marker advection, FFT
    projection) in float32 and their gradient: a run resumed on the other path continues
    exactly."""
    d = Domain(12, 10, 24.0, 20.0)
    g = torch.Generator().manual_seed(11)
    m0 = torch.rand(3, 10, 12, generator=g)
    v0 = 2 * torch.randn(3, 2, 10, 12, generator=g)
    sim = FluidSimulator(d, steps=2)
    results = []
    for switch in ("1", "0"):
        monkeypatch.setenv(kernel.DISABLE_VARIABLE, switch)
        v = v0.clone().requires_grad_(True)
        out = sim(m0, v)
        (grad,) = torch.autograd.grad((out**2).sum(), v)
        results.append((out.detach(), grad))
    for got, expected in zip(results[1], results[0], strict=True):
        assert_bitwise(got, expected)


def test_no_kernel_variable_selects_the_torch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(kernel.DISABLE_VARIABLE, "1")
    assert kernel.library() is None
    assert kernel.DISABLE_VARIABLE in kernel.kernel_status()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the kernel ran although it is disabled")

    monkeypatch.setattr(kernel, "advect", refuse)
    monkeypatch.setattr(kernel, "advect_backward", refuse)
    values, wx, wy, weights = _inputs(2, 6, 7, F64, seed=1)
    results = _run(values, wx, wy, weights, Domain(7, 6), "mac_cormack", (True, True, True))
    assert all(bool(torch.isfinite(r).all()) for r in results)


def test_unsupported_tensors_use_the_torch_path(fused: None) -> None:
    cpu = torch.zeros(1, 3, 3)
    assert kernel.usable(cpu, cpu, cpu)
    assert kernel.usable(cpu.double(), cpu.double(), cpu.double())
    assert not kernel.usable(cpu.half(), cpu.half(), cpu.half())  # dtype
    assert not kernel.usable(cpu, cpu.double(), cpu)  # mixed dtypes
    meta = torch.zeros(1, 3, 3, device="meta")  # stands in for a GPU tensor: not on the CPU
    assert not kernel.usable(meta, meta, meta)


def test_compiler_failure_falls_back_silently(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A compiler that fails leaves a one-line reason in kernel_status, no library file,
    no temporary file, and advection still works."""
    monkeypatch.delenv(kernel.DISABLE_VARIABLE, raising=False)
    monkeypatch.setenv("PHYSGRAD_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "false")  # exits 1
    monkeypatch.setattr(kernel, "_library", None)
    monkeypatch.setattr(kernel, "_load_error", None)
    monkeypatch.setattr(kernel, "_loaded", False)
    assert kernel.library() is None
    status = kernel.kernel_status()
    assert status.startswith("torch path: kernel unavailable") and "false" in status
    assert list(tmp_path.iterdir()) == []
    values, wx, wy, weights = _inputs(1, 5, 4, F32, seed=2)
    results = _run(values, wx, wy, weights, Domain(4, 5), "mac_cormack", (True, True, True))
    assert all(bool(torch.isfinite(r).all()) for r in results)


def test_concurrent_first_builds_leave_one_library(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two builds at once into an empty cache (threads here; each writes its own temporary
    file and renames it): both give a loadable library, one file, no leftovers."""
    compiler = kernel._compiler()
    if compiler is None:
        pytest.skip("no C compiler")
    monkeypatch.setenv("PHYSGRAD_KERNEL_CACHE", str(tmp_path))
    start = threading.Barrier(2)
    built: list[Path] = []

    def build() -> None:
        start.wait()
        built.append(kernel._build(compiler))

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert len(built) == 2 and built[0] == built[1]
    assert list(tmp_path.iterdir()) == [built[0]]
    kernel._declare(ctypes.CDLL(str(built[0])))


def test_fluid_training_steps_are_bitwise_equal_with_and_without_kernel(
    fused: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A training iteration of the fluid experiment (data generation, simulator or
    reverse-simulation estimator, metrics, Adam) per method: the same network weights bit
    for bit on either path."""
    from physgrad.experiments import get_experiment
    from physgrad.training.trainer import Trainer

    exp = get_experiment("fluid")
    weights = {}
    for switch in ("1", "0"):
        monkeypatch.setenv(kernel.DISABLE_VARIABLE, switch)
        for method, spec in exp.methods.items():
            torch.manual_seed(0)
            net = exp.network()
            trainer = Trainer(exp.problem(), net, spec.method(), spec.optimizer, batch_size=2,
                              seed=0, progress=False)
            trainer.step()
            weights[switch, method] = torch.cat([p.detach().flatten() for p in net.parameters()])
    for method in exp.methods:
        assert_bitwise(weights["0", method], weights["1", method])


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("shape", [(3, 2, 12, 16), (2, 2, 13, 11), (1, 2, 2, 5), (2, 2, 2, 2)])
def test_kernel_stencils_are_bitwise_the_torch_code(
    fused: None, monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype, shape: tuple[int, ...]
) -> None:
    """Face means, centring, both divergences and both projections (FFT and CG, staggered and
    centred) without autograd (compiled stencils) and with it (torch ops, unchanged): the same
    bits as the torch code, on cells that are not squares, NaN and infinities included."""
    from physgrad.physics.fluid import grid, pressure

    domain = Domain(shape[3], shape[2], 1.5 * shape[3], 0.7 * shape[2])
    velocity = torch.randn(*shape, generator=torch.Generator().manual_seed(7), dtype=dtype)

    def stencils(v: torch.Tensor) -> list[torch.Tensor]:
        return [
            *grid._face_components(v), grid.staggered_to_centered(v),
            grid.divergence(v, domain), grid.divergence_centered(v, domain),
            *pressure._make_incompressible(v, domain, "fft", None, None),
            *pressure._make_incompressible(v, domain, "cg", None, pressure.CGOptions()),
            *pressure._make_incompressible_centered(v, domain),
        ]

    finite = stencils(velocity)
    graph = stencils(velocity.clone().requires_grad_(True))
    assert all(t.grad_fn is not None for t in graph)  # the graph path is the torch code
    special = velocity.clone()
    special[0, 0, 0, 0], special[-1, 1, -1, -1] = float("nan"), float("inf")
    special_results = [*grid._face_components(special), grid.staggered_to_centered(special),
                       grid.divergence(special, domain), grid.divergence_centered(special, domain)]
    monkeypatch.setenv(kernel.DISABLE_VARIABLE, "1")
    for got, graph_result, expected in zip(finite, graph, stencils(velocity), strict=True):
        assert_bitwise(got, expected)
        assert_bitwise(graph_result, expected)
    special_reference = [
        *grid._face_components(special), grid.staggered_to_centered(special),
        grid.divergence(special, domain), grid.divergence_centered(special, domain),
    ]
    for got, expected in zip(special_results, special_reference, strict=True):
        assert_bitwise(got, expected)
