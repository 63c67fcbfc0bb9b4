"""The periodic 2D domain and the staggered (marker-and-cell) grid operators on it.

Conventions (used throughout :mod:`physgrad.physics.fluid`):

* Arrays are batch first, then ``y`` (rows, ``ny``), then ``x`` (columns, ``nx``): a scalar
  field is ``(B, ny, nx)``; a vector field is ``(B, 2, ny, nx)`` with the vector channel in the
  order ``(x, y)``.
* The domain is ``[0, size_x) x [0, size_y)`` in physical length units, periodic in both axes,
  with cell sizes ``dx = size_x / nx`` and ``dy = size_y / ny``.
* Cell ``(j, i)`` has its centre at ``((i + 1/2) dx, (j + 1/2) dy)``. Scalars (marker density,
  pressure, divergence) and *centred* velocities live there.
* A *staggered* velocity ``(B, 2, ny, nx)`` stores the x-component ``u[j, i]`` on the left
  face of cell ``(j, i)``, at ``(i dx, (j + 1/2) dy)``, and the y-component ``v[j, i]`` on its
  bottom face, at ``((i + 1/2) dx, j dy)``. Periodicity makes both components ``ny x nx``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.autograd.forward_ad as forward_ad

from physgrad._validation import check_finite, check_tensor
from physgrad.physics.fluid import adjoints, kernel
from physgrad.physics.fluid.adjoints import _xm, _xp, _ym, _yp


@dataclass(frozen=True)
class Domain:
    """A periodic rectangular domain discretised into ``ny x nx`` square-or-not cells.

    Attributes:
        nx: number of cells along x (array columns).
        ny: number of cells along y (array rows).
        size_x: physical extent along x (length units). Default 128, so ``dx = 2``.
        size_y: physical extent along y (length units). Default 128, so ``dy = 2``.
    """

    nx: int = 64
    ny: int = 64
    size_x: float = 128.0
    size_y: float = 128.0

    def __post_init__(self) -> None:
        for name in ("nx", "ny"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Domain.{name} must be an int, got {value!r}")
            if value < 2:
                raise ValueError(f"Domain.{name} must be >= 2, got {value}")
        for name in ("size_x", "size_y"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"Domain.{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"Domain.{name} must be finite and > 0, got {value}")
            object.__setattr__(self, name, float(value))

    @property
    def dx(self) -> float:
        """Cell width along x (length units)."""
        return self.size_x / self.nx

    @property
    def dy(self) -> float:
        """Cell height along y (length units)."""
        return self.size_y / self.ny

    @property
    def shape(self) -> tuple[int, int]:
        """Spatial array shape ``(ny, nx)``."""
        return (self.ny, self.nx)

    @property
    def center(self) -> tuple[float, float]:
        """Physical centre of the domain ``(x, y)``."""
        return (0.5 * self.size_x, 0.5 * self.size_y)

    def cell_centers(
        self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """Physical coordinates of the cell centres, ``(2, ny, nx)`` in the order ``(x, y)``."""
        x = (torch.arange(self.nx, dtype=dtype, device=device) + 0.5) * self.dx
        y = (torch.arange(self.ny, dtype=dtype, device=device) + 0.5) * self.dy
        yy, xx = torch.meshgrid(y, x, indexing="ij")
        return torch.stack([xx, yy])

    def face_centers(
        self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """Physical face positions of the staggered components, ``(2, 2, ny, nx)``.

        ``[0]`` are the ``(x, y)`` coordinates of the x-faces (where ``u`` lives), ``[1]``
        those of the y-faces (where ``v`` lives).
        """
        c = self.cell_centers(dtype, device)
        xface = torch.stack([c[0] - 0.5 * self.dx, c[1]])
        yface = torch.stack([c[0], c[1] - 0.5 * self.dy])
        return torch.stack([xface, yface])


_CELL_CENTERS: dict[tuple[Domain, torch.dtype, torch.device], torch.Tensor] = {}


def _cell_centers(domain: Domain, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """:meth:`Domain.cell_centers`, kept per domain, dtype and device for the data generator
    and the estimator's centres of mass (several calls per training step; read it, do not
    change it in place). Only plain tensors are kept."""
    key = (domain, dtype, device)
    centres = _CELL_CENTERS.get(key)
    if centres is None:
        centres = domain.cell_centers(dtype, device)
        if type(centres) is torch.Tensor and not centres.is_inference() and len(
            _CELL_CENTERS
        ) < 64:
            _CELL_CENTERS[key] = centres
    return centres


DEFAULT_DOMAIN = Domain()
"""64 x 64 cells on a 128 x 128 periodic box (``dx = dy = 2``), as in the paper's fluid task."""


# --------------------------------------------------------------------------- validation


def check_scalar_field(name: str, value: object, domain: Domain) -> torch.Tensor:
    """Check a finite float scalar field of shape ``(B, ny, nx)``."""
    t = check_tensor(name, value)
    if t.is_complex():
        raise TypeError(f"{name} must be a real floating-point tensor, got dtype {t.dtype}")
    if t.dim() != 3 or tuple(t.shape[1:]) != domain.shape:
        raise ValueError(
            f"{name} must have shape (B, {domain.ny}, {domain.nx}) (batch, ny, nx), "
            f"got {tuple(t.shape)}"
        )
    return check_finite(name, t)


def check_vector_field(name: str, value: object, domain: Domain) -> torch.Tensor:
    """Check a finite float vector field of shape ``(B, 2, ny, nx)``."""
    t = check_tensor(name, value)
    if t.is_complex():
        raise TypeError(f"{name} must be a real floating-point tensor, got dtype {t.dtype}")
    if t.dim() != 4 or t.shape[1] != 2 or tuple(t.shape[2:]) != domain.shape:
        raise ValueError(
            f"{name} must have shape (B, 2, {domain.ny}, {domain.nx}) (batch, (x, y), ny, nx), "
            f"got {tuple(t.shape)}"
        )
    return check_finite(name, t)


def check_dt(dt: object) -> float:
    """A finite time step; negative values are allowed here (time-reversed advection)."""
    if isinstance(dt, bool) or not isinstance(dt, int | float):
        raise TypeError(f"dt must be a number, got {dt!r}")
    dt = float(dt)
    if not math.isfinite(dt):
        raise ValueError(f"dt must be finite, got {dt}")
    return dt


# --------------------------------------------------------------------------- operators
# Shifts _xm, _xp, _ym, _yp (the periodic neighbours i - 1, i + 1, j - 1, j + 1) come from
# adjoints, whose gradients are written with them.


def centered_to_staggered(velocity: torch.Tensor) -> torch.Tensor:
    """Resample a centred vector field to the faces (linear interpolation, periodic).

    ``u[j, i] = (c_x[j, i-1] + c_x[j, i]) / 2`` and ``v[j, i] = (c_y[j-1, i] + c_y[j, i]) / 2``.

    Args:
        velocity: ``(B, 2, ny, nx)`` centred ``(x, y)`` components (any units).

    Returns:
        ``(B, 2, ny, nx)`` staggered field.
    """
    cx, cy = velocity.unbind(1)  # unbind: its backward is a stack, no zero-filled copies
    return torch.stack([0.5 * (_xm(cx) + cx), 0.5 * (_ym(cy) + cy)], dim=1)


def _plain(velocity: torch.Tensor, *others: torch.Tensor) -> bool:
    """Whether ``velocity (B, 2, ny, nx)`` (and ``others``) are tensors the compiled kernel
    takes: no ``torch.func`` transform or forward-mode tangent, plain float32/float64 CPU
    tensors (:func:`physgrad.physics.fluid.kernel.usable`)."""
    if velocity.dim() != 4 or velocity.shape[1] != 2:
        return False
    tensors = (velocity, *others)
    return not _transformed(tensors) and kernel.usable(*tensors)


def _transformed(tensors: tuple[torch.Tensor, ...]) -> bool:
    """Whether any of ``tensors`` is wrapped by a ``torch.func`` transform or carries a
    forward-mode tangent. Neither can exist outside an active transform or dual level, so
    the per-tensor checks (a few hundred per training step) run only inside one."""
    if torch._C._are_functorch_transforms_active() and any(
        torch._C._functorch.is_functorch_wrapped_tensor(t) for t in tensors
    ):
        return True
    # (unpack_dual's own shortcut: no tangents while no dual level is open)
    return forward_ad._current_level >= 0 and any(
        forward_ad.unpack_dual(t).tangent is not None for t in tensors
    )


def _fused(velocity: torch.Tensor) -> bool:
    """Whether a stencil of ``velocity (B, 2, ny, nx)`` runs the compiled kernel without
    autograd: no graph to record and a tensor the kernel takes (:func:`_plain`). The kernel
    does the torch code's operations in its order: the same bits."""
    return not (torch.is_grad_enabled() and velocity.requires_grad) and _plain(velocity)


def _recorded(velocity: torch.Tensor, *others: torch.Tensor) -> bool:
    """Whether a stencil of ``velocity`` (and ``others``) records a graph and runs as one
    ``torch.autograd.Function`` (the kernel's forward, the backward of
    :mod:`~physgrad.physics.fluid.adjoints`) instead of its torch ops."""
    tensors = (velocity, *others)
    return (
        torch.is_grad_enabled()
        and any(t.requires_grad for t in tensors)
        and _plain(velocity, *others)
    )


def staggered_to_centered(velocity: torch.Tensor) -> torch.Tensor:
    """Average a staggered field to the cell centres: ``(B, 2, ny, nx) -> (B, 2, ny, nx)``."""
    if _fused(velocity):
        return kernel.staggered_to_centered(velocity.contiguous())
    if _recorded(velocity):
        return torch.stack(adjoints.CentredComponents.apply(velocity), dim=1)
    u, v = velocity.unbind(1)
    return torch.stack([0.5 * (u + _xp(u)), 0.5 * (v + _yp(v))], dim=1)


def _centred_components(velocity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``staggered_to_centered(velocity).unbind(1)``: the centred ``x`` and ``y`` components,
    each ``(B, ny, nx)``; where the kernel runs, as two contiguous tensors (no copies for the
    advection that reads them)."""
    if _fused(velocity):
        return kernel.centred_components(velocity.contiguous())
    if _recorded(velocity):
        return adjoints.CentredComponents.apply(velocity)
    return staggered_to_centered(velocity).unbind(1)


def staggered_at_faces(velocity: torch.Tensor) -> torch.Tensor:
    """The full velocity vector at both face families, by linear interpolation.

    Args:
        velocity: staggered ``(B, 2, ny, nx)``.

    Returns:
        ``(B, 2, 2, ny, nx)``: ``[:, 0]`` is ``(u, v)`` at the x-faces, ``[:, 1]`` is ``(u, v)``
        at the y-faces. The component that lives on a face is taken as is; the other one is
        the mean of its four nearest samples.
    """
    wx, wy = _face_components(velocity)
    return torch.stack([wx, wy], dim=2)


def _face_components(velocity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(wx, wy)``, each ``(B, 2, ny, nx)``: the x and y velocity component at the x-faces
    (``[:, 0]``) and at the y-faces (``[:, 1]``); see :func:`staggered_at_faces`."""
    if _fused(velocity):
        return kernel.face_components(velocity.contiguous())
    if _recorded(velocity):
        return adjoints.FaceComponents.apply(velocity)
    u, v = velocity.unbind(1)
    # the four-point means as two pair sums (two rolls instead of four)
    v_pairs = v + _xm(v)
    u_pairs = u + _xp(u)
    v_at_x = 0.25 * (v_pairs + _yp(v_pairs))
    u_at_y = 0.25 * (u_pairs + _ym(u_pairs))
    return torch.stack([u, u_at_y], dim=1), torch.stack([v_at_x, v], dim=1)


def divergence(velocity: torch.Tensor, domain: Domain) -> torch.Tensor:
    """Cell-centred divergence of a staggered field (exact face differences).

    Args:
        velocity: staggered ``(B, 2, ny, nx)`` (length / time).
        domain: grid spacing source.

    Returns:
        ``(B, ny, nx)`` (1 / time).
    """
    if _fused(velocity):
        return kernel.divergence(velocity.contiguous(), domain.dx, domain.dy, False)
    if _recorded(velocity):
        return adjoints.Divergence.apply(velocity, domain.dx, domain.dy)
    u, v = velocity.unbind(1)
    return (_xp(u) - u) / domain.dx + (_yp(v) - v) / domain.dy


def gradient_to_faces(pressure: torch.Tensor, domain: Domain) -> torch.Tensor:
    """Gradient of a centred scalar on the faces: ``(B, ny, nx) -> (B, 2, ny, nx)`` staggered.

    Backward differences ``(p[j, i] - p[j, i-1]) / dx`` and ``(p[j, i] - p[j-1, i]) / dy``
    (units of ``pressure`` per length).
    """
    return torch.stack(
        [(pressure - _xm(pressure)) / domain.dx, (pressure - _ym(pressure)) / domain.dy], dim=1
    )


def laplace(field: torch.Tensor, domain: Domain) -> torch.Tensor:
    """Periodic 5-point Laplacian ``divergence(gradient_to_faces(p))``, ``(..., ny, nx)``.

    Same shape as ``field``, in units of ``field`` per length² (``dx``, ``dy`` from ``domain``).
    """
    return (_xp(field) - 2 * field + _xm(field)) / domain.dx**2 + (
        _yp(field) - 2 * field + _ym(field)
    ) / domain.dy**2


def divergence_centered(velocity: torch.Tensor, domain: Domain) -> torch.Tensor:
    """Central-difference divergence of a *centred* field (stencil width ``2 dx``).

    ``(B, 2, ny, nx) -> (B, ny, nx)`` (1 / time for a velocity in length / time); this is
    what PhiFlow uses for a ``CenteredGrid``.
    """
    if _fused(velocity):
        return kernel.divergence(velocity.contiguous(), 2 * domain.dx, 2 * domain.dy, True)
    cx, cy = velocity.unbind(1)
    return (_xp(cx) - _xm(cx)) / (2 * domain.dx) + (_yp(cy) - _ym(cy)) / (2 * domain.dy)


def gradient_centered(pressure: torch.Tensor, domain: Domain) -> torch.Tensor:
    """Central-difference gradient on the cell centres, ``(B, ny, nx) -> (B, 2, ny, nx)``.

    Channels ``(x, y)``, units of ``pressure`` per length (stencil width ``2 dx``, ``2 dy``).
    """
    return torch.stack(
        [
            (_xp(pressure) - _xm(pressure)) / (2 * domain.dx),
            (_yp(pressure) - _ym(pressure)) / (2 * domain.dy),
        ],
        dim=1,
    )


def vorticity(velocity: torch.Tensor, domain: Domain) -> torch.Tensor:
    """Curl ``dv/dx - du/dy`` of a staggered field at the cell corners ``(i dx, j dy)``.

    ``(B, 2, ny, nx) -> (B, ny, nx)`` (1 / time).
    """
    u, v = velocity.unbind(1)
    return (v - _xm(v)) / domain.dx - (u - _ym(u)) / domain.dy
