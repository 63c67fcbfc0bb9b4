"""The README's quickstart example runs and learns (small iteration count)."""

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_learns_with_and_without_physical_gradients():
    quickstart = _load("quickstart")
    for use_pg in (False, True):
        untrained = quickstart.train(use_pg, 1)
        trained = quickstart.train(use_pg, 150)
        assert trained < 0.7 * untrained, (use_pg, untrained, trained)
