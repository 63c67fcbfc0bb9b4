"""Shared by the tests: load a script that is not part of the package (examples/, benchmarks/,
the docs hooks) as a module."""

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(path: Path | str, name: str | None = None) -> ModuleType:
    """The module of the Python file ``path`` (relative to the repository root, or absolute),
    executed afresh on every call; ``name`` defaults to the file's stem."""
    path = ROOT / path
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
