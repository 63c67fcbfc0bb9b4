"""Tests for physgrad.nets: parameter counts, shapes, odd sizes and input validation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import load_script

from physgrad.nets import MLP, DoubleConv, UNet, WavePacketNet
from physgrad.nets.circular import circular_pad
from physgrad.nets.conv1d import XI_MAX, XI_MIN

ReferenceUNet = load_script("benchmarks/reference_unet.py").ReferenceUNet


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


# ---------------------------------------------------------------- MLP


def test_mlp_parameter_count_matches_paper() -> None:
    assert n_params(MLP(1, 1, (10, 20, 10))) == 461


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_mlp_shape_and_activation_placement(activation: str) -> None:
    net = MLP(3, 2, (5, 7), activation=activation)
    assert net(torch.randn(4, 3)).shape == (4, 2)
    layers = list(net.layers)
    kinds = [type(m).__name__ for m in layers]
    act = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh"}[activation]
    assert kinds == ["Linear", act, "Linear", act, "Linear"]  # none after the last layer


def test_mlp_no_hidden_is_linear() -> None:
    net = MLP(2, 3, ())
    assert n_params(net) == 9
    assert len(net.layers) == 1


def test_mlp_validation() -> None:
    with pytest.raises(ValueError, match="activation"):
        MLP(1, 1, activation="gelu")
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        MLP(2, 1)(torch.randn(4, 3))
    with pytest.raises(TypeError, match="hidden"):
        MLP(1, 1, hidden=10)  # type: ignore[arg-type]


# ---------------------------------------------------------------- UNet


def test_unet_parameter_counts_match_phiflow() -> None:
    assert n_params(UNet(1, 1, levels=4)) == 37_697
    assert n_params(UNet(2, 2, levels=5)) == 49_570


@pytest.mark.parametrize("padding_mode", ["zeros", "circular"])
@pytest.mark.parametrize("size", [(64, 64), (80, 60), (33, 17)])
def test_unet_output_shape_equals_input(size: tuple[int, int], padding_mode: str) -> None:
    net = UNet(1, 1, levels=4, padding_mode=padding_mode)
    x = torch.randn(2, 1, *size)
    out = net(x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def test_unet_multichannel_levels5() -> None:
    net = UNet(2, 3, levels=5)
    assert net(torch.randn(2, 2, 64, 64)).shape == (2, 3, 64, 64)


def test_unet_backward_reaches_every_parameter() -> None:
    net = UNet(1, 1, levels=3)
    net(torch.randn(2, 1, 30, 22)).square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_unet_levels1_is_doubleconv_plus_1x1() -> None:
    net = UNet(1, 1, levels=1, batch_norm=False)
    assert n_params(net) == 160 + 2320 + 17
    assert net(torch.randn(1, 1, 5, 7)).shape == (1, 1, 5, 7)


def test_unet_upsampling_to_skip_size_equals_factor_two_when_even() -> None:
    x = torch.randn(2, 16, 8, 8)
    by_size = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
    by_factor = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(by_size, by_factor)


def test_unet_circular_padding_wraps_around() -> None:
    # levels=1 has no pooling/upsampling, so circular padding makes it exactly shift-equivariant
    # (deeper nets are not: bilinear upsampling clamps at the border, as in PhiFlow/torch).
    torch.manual_seed(0)
    net = UNet(1, 1, levels=1, padding_mode="circular").eval()
    x = torch.randn(1, 1, 16, 12)
    out = net(x)
    out_shifted = net(torch.roll(x, shifts=(5, 3), dims=(-2, -1)))
    torch.testing.assert_close(torch.roll(out, shifts=(5, 3), dims=(-2, -1)), out_shifted)
    zeros = UNet(1, 1, levels=1, padding_mode="zeros").eval()
    zeros.load_state_dict(net.state_dict())
    assert not torch.allclose(zeros(x), out)


@pytest.mark.parametrize("padding_mode", ["circular", "zeros"])
@pytest.mark.parametrize("size", [(64, 64), (60, 80), (15, 9)])
def test_unet_matches_the_plain_torch_unet(padding_mode: str, size: tuple[int, int]) -> None:
    # the fast layout (channels-last, own periodic padding) changes nothing but speed:
    # same state dict, same outputs, same gradients (float64: round-off only)
    torch.manual_seed(0)
    fast = UNet(1, 2, levels=3, filters=8, padding_mode=padding_mode).double()
    plain = ReferenceUNet(1, 2, levels=3, filters=8, padding_mode=padding_mode).double()
    plain.load_state_dict(fast.state_dict())
    x = torch.randn(3, 1, *size, dtype=torch.float64)
    y_fast, y_plain = fast(x), plain(x)
    torch.testing.assert_close(y_fast, y_plain, rtol=1e-12, atol=1e-12)
    assert y_fast.is_contiguous()
    (y_fast.sin().sum()).backward()
    (y_plain.sin().sum()).backward()
    for (name, p), q in zip(fast.named_parameters(), plain.parameters(), strict=True):
        # atol: conv biases before BatchNorm get gradients that are zero up to round-off
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-10, msg=name)


@pytest.mark.parametrize("pad", [(1, 1, 1, 1), (2, 0, 1, 3), (7, 7, 5, 5)])
def test_circular_pad_equals_torch_and_is_differentiable(pad: tuple[int, int, int, int]) -> None:
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(circular_pad(x, pad), F.pad(x, pad, mode="circular"), rtol=0, atol=0)
    assert torch.autograd.gradcheck(lambda z: circular_pad(z, pad), (x,))
    assert torch.autograd.gradgradcheck(lambda z: circular_pad(z, pad), (x,))
    channels_last = x.detach().contiguous(memory_format=torch.channels_last)
    assert circular_pad(channels_last, pad).is_contiguous(memory_format=torch.channels_last)


def test_circular_pad_under_torch_func_and_bad_sizes() -> None:
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64)

    def per_sample(pad_fn):
        return torch.func.vmap(torch.func.jacrev(lambda v: pad_fn(v[None]).sum(0)))(x)

    ours = per_sample(lambda v: circular_pad(v, (1, 1, 1, 1)))
    torch.testing.assert_close(ours, per_sample(lambda v: F.pad(v, (1, 1, 1, 1), mode="circular")))
    with pytest.raises(ValueError, match=r"\(8, 1, 1, 1\) does not fit"):
        circular_pad(x, (8, 1, 1, 1))


def test_unet_input_validation() -> None:
    net = UNet(2, 1)
    with pytest.raises(ValueError, match="4 dimensions|got \\(2, 64, 64\\)"):
        net(torch.randn(2, 64, 64))
    with pytest.raises(ValueError, match="2 input channel"):
        net(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match="H and W >= 8"):
        net(torch.randn(1, 2, 4, 64))
    with pytest.raises(ValueError, match="padding_mode"):
        UNet(1, 1, padding_mode="reflect")


def test_doubleconv_structure() -> None:
    block = DoubleConv(32, 16, 16)
    kinds = [type(m) for m in block.net]
    conv, bn, relu = torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.ReLU
    assert all(issubclass(k, t) for k, t in zip(kinds, [conv, bn, relu] * 2, strict=True))
    assert n_params(block) == 7008


# ---------------------------------------------------------------- WavePacketNet


def test_wavepacket_output_shape_and_ranges() -> None:
    torch.manual_seed(0)
    net = WavePacketNet()
    y = 10 * torch.randn(8, 256)
    out = net(y)
    assert out.shape == (8, 2)
    xi0 = out[:, 0]
    assert bool(((xi0 >= XI_MIN) & (xi0 <= XI_MAX)).all())
    assert net(torch.randn(3, 1, 256)).shape == (3, 2)


def test_wavepacket_offsets_match_initial_guess() -> None:
    net = WavePacketNet()
    last = net.head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    out = net(torch.randn(2, 256))
    torch.testing.assert_close(out, torch.tensor([[128.0, 2.0], [128.0, 2.0]]))


def test_wavepacket_architecture() -> None:
    net = WavePacketNet()
    kinds = [type(m).__name__ for m in net.features]
    assert kinds == ["MaxPool1d", "Conv1d", "ReLU", "Conv1d", "ReLU"] * 5
    linears = [m for m in net.head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(128, 64), (64, 32), (32, 2)]


def test_wavepacket_validation() -> None:
    with pytest.raises(ValueError, match=r"\(B, 256\)"):
        WavePacketNet()(torch.randn(2, 128))
    with pytest.raises(ValueError, match="multiple of 32"):
        WavePacketNet(length=100)
