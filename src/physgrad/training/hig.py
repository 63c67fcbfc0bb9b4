"""Half-inverse gradients (HIG; Schnell, Holl & Thuerey, ICLR 2022) as a training method.

With the thin SVD ``J = U diag(S) Vᵀ`` of the per-sample Jacobians of physics ∘ network,
``J = ∂y/∂θ`` stacked over the batch (shape ``(B·dy, nθ)``, rows sample-major), the update is

    Δθ = −η · V diag(S^{-1/2}) Uᵀ · g,     g = ∂L/∂y  (flattened, length B·dy),

with singular values ``S_i <= τ · max(S)`` dropped: the authors' ``gpinv(J, rcond=τ,
kappa=0.5)`` then plain SGD (``tum-pbs/half-inverse-gradients``; their η = 1, τ = 1e-6 for
the oscillators, η = 0.5, τ = 1e-5 for the quantum dipole, η = 0.01, τ = 1e-5 for Poisson).
:class:`HalfInverse` needs the network itself (the Trainer hands it over through
:meth:`Method.setup <physgrad.training.methods.Method.setup>`); its loss is a surrogate whose
parameter gradient is ``-Δθ`` and whose value is the reduced objective, so SGD at lr 1 makes
exactly the HIG step. By default the step is *limited*, scale-free: the output change it
predicts, ``‖J Δθ‖``, may not exceed ``limit`` times the residual ``‖∂L_sum/∂y‖``, which keeps
``η = 1`` stable without tuning (docs/own-physics.md, BENCHMARKS.md "half-inverse gradients").

Cost: J takes O(B·dy·nθ) memory in the network's dtype (the SVD runs in it too, as the
authors' float32 code) and its SVD dominates the time, so HIG suits small networks and
outputs. Requirements: no BatchNorm (:meth:`HalfInverse.bind` raises ``ValueError``); the
physics and the (adapted) network traceable by ``torch.func.vmap`` one sample at a time (no
data-dependent control flow, ``.item()`` or randomness); real outputs; one process.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from physgrad._validation import check_nonnegative_float, check_positive_int, short_text
from physgrad.core import NonFiniteError, Reduction, reduce_batch, run_physics
from physgrad.nets.adapters import adapt, takes_batch
from physgrad.problems.base import Batch, Problem
from physgrad.training.distributed import rank_and_world
from physgrad.training.methods import Method
from physgrad.training.optimizers import OptimizerSpec


def half_inverse_direction(
    jacobian: torch.Tensor, grad_y: torch.Tensor, truncation: float = 1e-6
) -> tuple[torch.Tensor, dict[str, float]]:
    """``V diag(S^{-1/2}) Uᵀ g`` for the thin SVD ``J = U diag(S) Vᵀ``, truncated at ``τ``.

    Singular values ``S_i <= truncation · max(S)`` are dropped (with ``truncation = 0`` only
    exact zeros are). The HIG update is ``-η`` times the result.

    Args:
        jacobian: ``J``, shape ``(m, n)`` = ``(B·dy, nθ)``, units of y per unit of θ.
        grad_y: ``g = ∂L/∂y``, shape ``(m,)``, units of L per unit of y.
        truncation: relative cut-off ``τ`` in ``[0, 1)``.

    Returns:
        The direction, shape ``(n,)``, in ``jacobian``'s dtype (the SVD runs in it too), and
        diagnostics ``{"rank", "s_max", "s_min_kept", "norm"}`` (kept singular values, the
        largest and smallest kept one, and the direction's 2-norm).
    """
    if jacobian.dim() != 2:
        raise ValueError(f"jacobian must be a matrix (m, n), got shape {tuple(jacobian.shape)}")
    if grad_y.shape != (jacobian.shape[0],):
        raise ValueError(
            f"grad_y must have shape ({jacobian.shape[0]},) to match the jacobian, "
            f"got {tuple(grad_y.shape)}"
        )
    truncation = _check_truncation(truncation)
    dtype = jacobian.dtype
    for name, value in (("jacobian dy/dtheta", jacobian), ("objective gradient dL/dy", grad_y)):
        if not bool(torch.isfinite(value).all()):  # svd would fail with a raw LinAlgError
            bad = int((~torch.isfinite(value)).sum())
            raise NonFiniteError(f"HalfInverse: {name} contains {bad} non-finite value(s)")
    try:
        u, s, vh = torch.linalg.svd(jacobian, full_matrices=False)
    except torch.linalg.LinAlgError as exc:
        raise NonFiniteError(f"HalfInverse: SVD of the jacobian failed: {short_text(exc)}") \
            from None
    s_max = s.max() if s.numel() else s.new_zeros(())
    keep = s > truncation * s_max
    inv_sqrt = torch.where(keep, s.clamp_min(torch.finfo(dtype).tiny).rsqrt(), 0.0)
    direction = vh.mT @ (inv_sqrt * (u.mT @ grad_y.to(dtype)))
    kept = s[keep]
    info = {
        "rank": float(keep.sum()),
        "s_max": float(s_max),
        "s_min_kept": float(kept.min()) if kept.numel() else 0.0,
        "norm": float(direction.norm()),
    }
    return direction, info


class HalfInverse(Method):
    """Half-inverse gradients: ``Δθ = −η · V diag(S^{-1/2}) Uᵀ ∂L/∂y`` (see the module doc).

    Use with plain SGD at lr 1 (:attr:`optimizer`), which then makes exactly the HIG step::

        Trainer(problem, net, HalfInverse(), HalfInverse.optimizer, batch_size=...)

    Args:
        eta: HIG step size ``η`` > 0 (dimensionless; the update scales with ``η``).
        truncation: relative singular-value cut-off ``τ`` in ``[0, 1)``; singular values
            ``<= τ · max(S)`` are dropped.
        limit: the step is shortened so that ``‖J Δθ‖ <= limit · ‖∂L_sum/∂y‖`` (the predicted
            change of the outputs at most ``limit`` times the residual; scale-free, see the
            module doc); ``None`` takes the full ``η`` step (the authors' update).
        network: the network that produces ``x`` (may also be given later with :meth:`bind`);
            must not contain BatchNorm.
        reduction: ``"mean"`` or ``"sum"`` over the batch of ``problem.objective``; sets
            ``g = ∂L/∂y`` (``"mean"`` divides it by B).
        chunk_size: if given, the per-sample Jacobians are computed ``chunk_size`` samples at a
            time (``torch.func.vmap(chunk_size=...)``), bounding intermediate memory; J itself
            is always materialised.
        name: label for plots and run folders.

    Attributes:
        last_info: diagnostics of the latest update: ``rank`` (kept singular values),
            ``s_max``, ``s_min_kept``, ``norm`` (of ``η · V S^{-1/2} Uᵀ g``), ``rows`` (B·dy)
            and ``params`` (nθ).
    """

    def __init__(
        self,
        eta: float = 1.0,
        truncation: float = 1e-6,
        network: nn.Module | None = None,
        limit: float | None = 1.0,
        *,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        name: str = "hig",
    ):
        super().__init__(reduction)
        self.eta = check_nonnegative_float("eta", eta, positive=True)
        self.truncation = _check_truncation(truncation)
        self.limit = None if limit is None else check_nonnegative_float(
            "limit", limit, positive=True
        )
        self.chunk_size = None if chunk_size is None else check_positive_int(
            "chunk_size", chunk_size
        )
        self.name = name
        self.network: nn.Module | None = None
        self.last_info: dict[str, float] = {}
        if network is not None:
            self.bind(network)

    optimizer = OptimizerSpec("sgd", 1.0)
    """Plain SGD at lr 1: with it one optimizer step is exactly the HIG update."""

    def bind(self, network: nn.Module) -> HalfInverse:
        """Attach the network whose parameters HIG updates (adapted with the defaults in place
        unless it takes a batch already, as the Trainer does); returns ``self`` for chaining."""
        if not isinstance(network, nn.Module):
            raise TypeError(f"network must be a torch.nn.Module, got {type(network).__name__}")
        for name, module in network.named_modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                raise ValueError(
                    f"HalfInverse does not support BatchNorm (layer {name or '<root>'!r}, "
                    f"{type(module).__name__}): its batch statistics couple the samples, so "
                    "per-sample Jacobians are undefined. Use a network without BatchNorm "
                    "(e.g. GroupNorm/LayerNorm or none)."
                )
        if not any(p.requires_grad for p in network.parameters()):
            raise ValueError("network has no trainable parameters")
        self.network = network if takes_batch(network) else adapt(network)
        return self

    setup = bind  # the Trainer's hook: bind the network it trains

    # -- the update ----------------------------------------------------------------------
    def jacobian(self, batch: Batch, problem: Problem) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacked per-sample Jacobian ``J = ∂y/∂θ`` and the physics output ``y``.

        Args:
            batch: the mini-batch (``y_target`` ``(B, *y_shape)``).
            problem: supplies the physics.

        Returns:
            ``J`` of shape ``(B·dy, nθ)`` (rows sample-major, columns in the order of
            ``network.named_parameters()`` with each parameter flattened; the network's
            dtype) and ``y`` of shape ``(B, *y_shape)`` (the physics dtype), both without
            autograd history.
        """
        network = self._bound()
        params = {k: p.detach() for k, p in network.named_parameters() if p.requires_grad}
        fixed = {k: p.detach() for k, p in network.named_parameters() if not p.requires_grad}
        fixed.update(dict(network.named_buffers()))
        condition = batch.condition

        def per_sample(
            theta: dict[str, torch.Tensor], y_target: torch.Tensor, cond: torch.Tensor | None
        ) -> tuple[torch.Tensor, torch.Tensor]:
            one = Batch(y_target.unsqueeze(0), None, None if cond is None else cond.unsqueeze(0))
            x = functional_call(network, {**theta, **fixed}, (one,))
            y = run_physics(x, one.y_target, problem.physics(one)).squeeze(0)
            return y, y

        in_dims = (None, 0, None if condition is None else 0)
        jac_fn = vmap(
            jacrev(per_sample, has_aux=True), in_dims=in_dims, chunk_size=self.chunk_size
        )
        with torch.enable_grad():
            try:
                jac, y = jac_fn(params, batch.y_target, condition)
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc)
                raise RuntimeError(
                    "HalfInverse could not form per-sample Jacobians with torch.func.vmap/"
                    f"jacrev ({first}); the network, its adapter and the physics must run on "
                    "one sample at a time without data-dependent control flow or .item()"
                ) from exc
        if y.is_complex():
            raise TypeError("HalfInverse needs real-valued physics outputs, got complex y")
        rows = y.numel()
        flat = torch.cat([jac[k].reshape(rows, -1) for k in params], dim=1)
        return flat.detach(), y.detach()

    def direction(
        self, batch: Batch, problem: Problem
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """``-Δθ = η · V S^{-1/2} Uᵀ g`` per trainable parameter, and the reduced objective L.

        ``J`` is :meth:`jacobian`'s ``(B·dy, nθ)`` matrix and ``g = ∂L/∂y`` flattened to
        ``(B·dy,)``; the arguments are :meth:`jacobian`'s (``problem`` also supplies the
        objective).

        Returns:
            ``({name: tensor shaped like the parameter}, L)`` with ``L`` a detached scalar
            in the physics dtype.
        """
        network = self._bound()
        jac, y = self.jacobian(batch, problem)
        y = y.requires_grad_(True)
        with torch.enable_grad():
            objective = reduce_batch(problem.objective(y, batch.y_target), self.reduction)
            (grad_y,) = torch.autograd.grad(objective, y)
        direction, info = half_inverse_direction(jac, grad_y.reshape(-1), self.truncation)
        factor = self.eta
        if self.limit is not None:
            # residual of the batch-summed objective: y - y* for the default objective
            residual = grad_y.norm() * (y.shape[0] if self.reduction == "mean" else 1)
            change = (jac @ direction).norm() * self.eta
            if float(change) > self.limit * float(residual):
                factor = self.eta * self.limit * float(residual) / float(change)
        direction = factor * direction
        info["norm"] *= factor
        info["factor"] = factor
        self.last_info = {**info, "rows": float(jac.shape[0]), "params": float(jac.shape[1])}
        trained = [(name, p) for name, p in network.named_parameters() if p.requires_grad]
        parts = direction.split([p.numel() for _, p in trained])
        out = {name: d.reshape(p.shape).to(p.dtype)
               for (name, p), d in zip(trained, parts, strict=True)}
        return out, objective.detach()

    def loss(self, x: torch.Tensor, batch: Batch, problem: Problem) -> torch.Tensor:
        """Surrogate with value L and parameter gradient ``η · V S^{-1/2} Uᵀ g`` (= ``-Δθ``).

        ``x`` (the Trainer's prediction, ``(B, *x_shape)``) is not differentiated: the network
        is re-evaluated per sample inside :meth:`jacobian`.

        Args:
            x: the prediction ``(B, *x_shape)`` (unused apart from the interface).
            batch: the mini-batch.
            problem: the problem being trained.

        Returns:
            A scalar (0-dim) tensor in the physics dtype.
        """
        if rank_and_world()[1] > 1:
            raise NotImplementedError(
                "HalfInverse does not support multi-process (DistributedDataParallel) training"
            )
        network = self._bound()
        direction, objective = self.direction(batch, problem)
        surrogate = sum(
            (p * direction[name].detach()).sum()
            for name, p in network.named_parameters()
            if p.requires_grad
        )
        assert isinstance(surrogate, torch.Tensor)
        return objective + (surrogate - surrogate.detach()).to(objective.dtype)

    def _bound(self) -> nn.Module:
        if self.network is None:
            raise RuntimeError(
                "HalfInverse needs the network: pass network=... or call .bind(network) "
                "before training"
            )
        return self.network

    def __repr__(self) -> str:
        return (
            f"HalfInverse(eta={self.eta}, truncation={self.truncation}, limit={self.limit}, "
            f"reduction={self.reduction!r}, name={self.name!r})"
        )


def _check_truncation(truncation: object) -> float:
    value = check_nonnegative_float("truncation", truncation)
    if value >= 1:
        raise ValueError(f"truncation must be in [0, 1), got {value}")
    return value
