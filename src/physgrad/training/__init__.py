"""Training: methods of forming the network gradient, the Trainer loop, checkpoints."""

from physgrad.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from physgrad.training.evaluation import HELDOUT_SEED, evaluate, heldout_batch
from physgrad.training.hig import HalfInverse
from physgrad.training.methods import Method, Physical, Supervised, Unsupervised
from physgrad.training.optimizers import OptimizerSpec
from physgrad.training.trainer import History, Trainer, TrainingDiverged

__all__ = [
    "HELDOUT_SEED",
    "CheckpointError",
    "HalfInverse",
    "History",
    "Method",
    "OptimizerSpec",
    "Physical",
    "Supervised",
    "Trainer",
    "TrainingDiverged",
    "Unsupervised",
    "evaluate",
    "heldout_batch",
    "load_checkpoint",
    "save_checkpoint",
]
