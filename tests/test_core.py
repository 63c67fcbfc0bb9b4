"""physical_gradient_loss: Theorem 1, gradient routing, reductions, bad input."""

import pytest
import torch
from conftest import nonlinear_physics
from torch import nn

import physgrad
from physgrad.solvers import Analytic, GradientDescent

DT = torch.float64


def _net():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3)).to(DT)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_theorem1_gd_step_with_unit_lr_equals_backprop_through_physics(reduction):
    """Appendix A.1: PG with one GD step of lr 1 has exactly the unsupervised gradient."""
    net = _net()
    inputs = torch.randn(8, 4, dtype=DT)
    y_target = torch.randn(8, 4, dtype=DT)

    loss_u = physgrad.unsupervised_loss(
        net(inputs), y_target, nonlinear_physics, reduction=reduction
    )
    grads_u = torch.autograd.grad(loss_u, list(net.parameters()))
    loss_pg = physgrad.physical_gradient_loss(
        net(inputs), y_target, nonlinear_physics, GradientDescent(lr=1.0), reduction=reduction
    )
    grads_pg = torch.autograd.grad(loss_pg, list(net.parameters()))
    for gu, gp in zip(grads_u, grads_pg, strict=True):
        torch.testing.assert_close(gp, gu, rtol=1e-12, atol=1e-14)


def test_gradient_w_r_t_x_is_the_physical_gradient_and_solver_is_not_differentiated():
    x = torch.randn(5, 3, dtype=DT, requires_grad=True)
    target = torch.randn(5, 3, dtype=DT)
    solver = Analytic(lambda x0, y: target)
    loss = physgrad.physical_gradient_loss(x, torch.zeros(5, 4, dtype=DT), nonlinear_physics,
                                           solver, reduction="sum")
    (g,) = torch.autograd.grad(loss, x)
    torch.testing.assert_close(g, x.detach() - target)
    assert loss.grad_fn is not None


def test_reduction_none_and_mean_are_consistent():
    x = torch.randn(6, 3, dtype=DT)
    y = torch.randn(6, 4, dtype=DT)
    per = physgrad.physical_gradient_loss(x, y, nonlinear_physics, GradientDescent(0.1), "none")
    assert per.shape == (6,)
    mean = physgrad.physical_gradient_loss(x, y, nonlinear_physics, GradientDescent(0.1), "mean")
    torch.testing.assert_close(per.mean(), mean)


def test_float32_network_with_float64_physics():
    """The solver runs in y_target's dtype; the loss and its gradient stay in x's dtype."""
    x = torch.randn(4, 3, requires_grad=True)
    y = torch.randn(4, 4, dtype=DT)
    seen = {}

    def physics(z):
        seen["dtype"] = z.dtype
        return nonlinear_physics(z)

    loss = physgrad.physical_gradient_loss(x, y, physics, GradientDescent(0.1))
    loss.backward()
    assert seen["dtype"] == DT and x.grad.dtype == torch.float32


def test_clip_bounds_each_component_of_the_physical_gradient():
    x = torch.zeros(2, 3, requires_grad=True)
    solver = Analytic(lambda x0, y: torch.full_like(x0, 10.0))
    loss = physgrad.physical_gradient_loss(x, torch.zeros(2, 4), nonlinear_physics, solver,
                                           "sum", clip=1.0)
    loss.backward()
    assert torch.equal(x.grad, -torch.ones(2, 3))


@pytest.mark.parametrize(
    ("x", "y", "error", "match"),
    [
        (torch.zeros(3, 3), torch.zeros(4, 4), ValueError, "batch sizes differ"),
        (torch.zeros(0, 3), torch.zeros(0, 4), ValueError, "empty batch"),
        (torch.zeros(3, 3, dtype=torch.long), torch.zeros(3, 4), TypeError, "floating-point"),
        ([[0.0]], torch.zeros(1, 4), TypeError, "torch.Tensor"),
        (torch.zeros(3, 3), torch.full((3, 4), float("nan")), ValueError, "non-finite"),
    ],
)
def test_bad_input_is_named(x, y, error, match):
    with pytest.raises(error, match=match):
        physgrad.physical_gradient_loss(x, y, nonlinear_physics, GradientDescent(1.0))


def test_unknown_reduction_and_wrong_physics_shape():
    x, y = torch.zeros(3, 3), torch.zeros(3, 4)
    with pytest.raises(ValueError, match="unknown reduction 'avg'"):
        physgrad.physical_gradient_loss(x, y, nonlinear_physics, GradientDescent(1.0), "avg")
    with pytest.raises(ValueError, match=r"physics output shape \(3, 3\)"):
        physgrad.unsupervised_loss(x, y, lambda z: z)
