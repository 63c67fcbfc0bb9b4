"""Network adapters: the network factory, not the Problem, maps a Batch to the network input
and the raw output to x; checkpoints keep the bare network's keys."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from torch import nn

from physgrad.config import configurable_parameters
from physgrad.experiments import get_experiment
from physgrad.experiments.sine import sine_network
from physgrad.nets import MLP, UNet, adapt, single_channel, takes_batch
from physgrad.nets.adapters import condition, network_input, observations
from physgrad.problems import Batch, Problem
from physgrad.training import Trainer, Unsupervised


def _batch() -> Batch:
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    return Batch(y_target=y, condition=torch.randn(4, 2, generator=gen, dtype=torch.float64))


def _linear(n_in: int = 3) -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(n_in, 3)


def test_an_adapted_network_maps_the_batch_and_keeps_the_bare_network() -> None:
    batch = _batch()
    bare = _linear(2)
    shift = lambda raw, b: raw.double() + b.y_target  # noqa: E731
    net = adapt(_linear(2), inputs=condition, output=shift)
    assert takes_batch(net) and not takes_batch(bare)
    assert list(net.state_dict()) == list(bare.state_dict())  # checkpoints unchanged
    with torch.no_grad():
        expected = bare(batch.condition.float()).double() + batch.y_target
        assert torch.equal(net(batch), expected)
        assert torch.equal(net(batch.condition.float()), bare(batch.condition.float()))  # as is
    copied = copy.deepcopy(net)  # precise batch norm evaluates a deep copy
    with torch.no_grad():
        assert torch.equal(copied(batch), expected)
    with pytest.raises(ValueError, match="Linear is already adapted to take a batch"):
        adapt(net)


def test_the_default_adapter_feeds_the_observations_as_float32() -> None:
    batch = _batch()
    assert observations(batch).dtype == torch.float32
    net = adapt(_linear())
    with torch.no_grad():
        assert torch.equal(net(batch), _linear()(batch.y_target.float()))
    assert torch.equal(network_input(net, batch), batch.y_target.float())
    assert torch.equal(network_input(_linear(), batch), batch.y_target.float())  # not adapted
    fed_a = adapt(_linear(2), inputs=condition)
    assert torch.equal(network_input(fed_a, batch), batch.condition.float())


@pytest.mark.parametrize("adapt_last", [True, False])
def test_single_channel_nests_inside_adapt_in_either_order(adapt_last: bool) -> None:
    torch.manual_seed(0)
    unet = UNet(1, 1, levels=2, filters=4)
    bare = copy.deepcopy(unet)
    double = lambda raw, b: 2 * raw  # noqa: E731  (needs the (B, X, Y) output)
    net = adapt(single_channel(unet), output=double) if adapt_last else single_channel(
        adapt(unet, output=double)
    )
    y = torch.randn(2, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(net(Batch(y)), 2 * bare(y.float().unsqueeze(1))[:, 0])


def test_the_trainer_predicts_with_the_adapted_network_and_adapts_a_plain_one() -> None:
    class Square(Problem):
        def physics(self, batch):
            return lambda x: x**2

        def sample(self, batch_size, generator):
            x = torch.rand(batch_size, 3, generator=generator)
            return Batch(y_target=x**2, x_true=x)

    plain = _linear()
    trainer = Trainer(Square(), plain, Unsupervised(), lambda p: torch.optim.SGD(p, lr=0.1),
                      batch_size=4, progress=False)
    assert trainer.network is plain and takes_batch(plain)  # adapted in place, defaults
    batch = Square().sample(4, torch.Generator().manual_seed(1))
    assert torch.equal(trainer.predict(batch), _linear()(batch.y_target.float()))
    own = adapt(_linear(), output=lambda raw, b: -raw)
    trainer = Trainer(Square(), own, Unsupervised(), lambda p: torch.optim.SGD(p, lr=0.1),
                      batch_size=4, progress=False)
    assert torch.equal(trainer.predict(batch), -_linear()(batch.y_target.float()))


def test_a_problem_that_maps_the_network_gets_a_one_line_migration_error() -> None:
    for name in ("network_input", "network_output"):
        with pytest.raises(TypeError) as info:
            type("OldStyle", (Problem,), {name: lambda self, *args: None})
        message = str(info.value)
        assert "\n" not in message
        assert f"OldStyle.{name} is no longer a Problem method" in message
        assert "physgrad.nets.adapt(net, inputs=..., output=...)" in message


def test_the_sine_network_is_fed_a_and_keeps_its_config_keys() -> None:
    problem = get_experiment("sine").problem()
    batch = problem.sample(5, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    net = sine_network()
    torch.manual_seed(0)
    bare = MLP(1, 1, hidden=(10, 20, 10))
    assert list(net.state_dict()) == list(bare.state_dict())
    with torch.no_grad():
        assert torch.equal(net(batch), bare(batch.condition.float()))
    before = configurable_parameters(functools.partial(MLP, 1, 1, hidden=(10, 20, 10)))
    assert configurable_parameters(sine_network) == before


def test_the_heat_network_pins_the_mean_of_its_prediction() -> None:
    experiment = get_experiment("heat")
    problem, net = experiment.problem(), experiment.network()
    batch = problem.sample(2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        x = net(batch)
    assert x.dtype == problem.dtype and x.shape == batch.y_target.shape
    torch.testing.assert_close(x.mean(dim=(1, 2)), batch.y_target.mean(dim=(1, 2)))


def test_a_problem_whose_physics_is_the_same_for_every_batch_needs_only_forward() -> None:
    class Cube(Problem):
        def forward(self, x):
            return x**3

    physics = Cube().physics(_batch())
    assert torch.equal(physics(torch.tensor([[2.0]])), torch.tensor([[8.0]]))
    with pytest.raises(NotImplementedError, match="Bare defines neither physics nor forward"):
        type("Bare", (Problem,), {})().physics(_batch())
