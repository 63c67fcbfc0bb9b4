"""Network architectures of the paper: MLP (toy problems), PhiFlow's U-Net, wave-packet CNN."""

from physgrad.nets.adapters import adapt, single_channel, takes_batch
from physgrad.nets.conv1d import WavePacketNet
from physgrad.nets.mlp import MLP
from physgrad.nets.unet import DoubleConv, UNet

__all__ = ["MLP", "DoubleConv", "UNet", "WavePacketNet", "adapt", "single_channel", "takes_batch"]
