import pytest
import torch

# The tests use small tensors, for which extra intra-op threads only add synchronisation
# (and stall badly when the CPU is shared). One thread keeps the suite fast and predictable.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


def nonlinear_physics(x: torch.Tensor) -> torch.Tensor:
    """A nonlinear batched map R^3 -> R^4 used across the solver tests."""
    return torch.stack(
        [torch.sin(x[:, 0]) * x[:, 1], x[:, 1] ** 3 - x[:, 2], torch.exp(0.3 * x[:, 2]), x.sum(1)],
        dim=1,
    )
