"""Training: methods of forming the network gradient, the Trainer loop, checkpoints."""

from physgrad.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from physgrad.training.hig import HalfInverse
from physgrad.training.methods import Method, Physical, Supervised, Unsupervised
from physgrad.training.trainer import History, Trainer, TrainingDiverged

__all__ = [
    "CheckpointError",
    "HalfInverse",
    "History",
    "Method",
    "Physical",
    "Supervised",
    "Trainer",
    "TrainingDiverged",
    "Unsupervised",
    "load_checkpoint",
    "save_checkpoint",
]
