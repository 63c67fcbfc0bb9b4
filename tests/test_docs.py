"""The documentation cannot silently rot: docstrings exist, the generated CLI reference is complete.

The API reference (mkdocstrings) shows only what has a docstring, and the CLI reference is
generated from the argparse parser by ``docs/hooks/cli_reference.py``. These tests need no
mkdocs; the one that loads ``mkdocs.yml`` through mkdocs is skipped where it is not installed
(``pip install -e ".[docs]"``). CI also runs ``mkdocs build --strict``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

PACKAGES = [
    "physgrad",
    "physgrad.solvers",
    "physgrad.problems",
    "physgrad.training",
    "physgrad.experiments",
    "physgrad.physics",
    "physgrad.physics.fluid",
    "physgrad.nets",
    "physgrad.report",
    "physgrad.config",
    "physgrad.interop",
]
SUBCOMMANDS = {"list", "run", "compare", "reproduce", "demo"}


def _public_objects(module: ModuleType) -> dict[str, object]:
    """``__all__`` if the module has one, else the public names defined in it (not imported)."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            n
            for n, obj in vars(module).items()
            if not n.startswith("_") and getattr(obj, "__module__", None) == module.__name__
        ]
    return {n: getattr(module, n) for n in names}


def _modules() -> list[ModuleType]:
    mods = [importlib.import_module(p) for p in PACKAGES]
    report = importlib.import_module("physgrad.report")  # no __all__: document its modules
    for info in pkgutil.iter_modules(report.__path__):
        if not info.name.startswith("_"):
            mods.append(importlib.import_module(f"physgrad.report.{info.name}"))
    return mods


def _undocumented() -> list[str]:
    missing = []
    for module in _modules():
        for name, obj in _public_objects(module).items():
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue  # constants, type aliases, submodules
            where = f"{module.__name__}.{name}"
            own = obj.__doc__ if inspect.isfunction(obj) else vars(obj).get("__doc__")
            if not (own or "").strip():
                missing.append(where)
            if not inspect.isclass(obj):
                continue
            for attr, value in vars(obj).items():
                if attr.startswith("_"):
                    continue
                func = value.fget if isinstance(value, property) else value
                func = getattr(func, "__func__", func)  # classmethod / staticmethod
                if not inspect.isfunction(func):
                    continue
                # An override of a documented base-class method inherits its documentation.
                if not (inspect.getdoc(getattr(obj, attr)) or "").strip():
                    missing.append(f"{where}.{attr}")
    return missing


def test_every_public_callable_has_a_docstring():
    assert _undocumented() == []


def _load_hook(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"_docs_hook_{name}", DOCS / "hooks" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_lists_every_subcommand_without_mkdocs(monkeypatch):
    monkeypatch.setitem(sys.modules, "mkdocs", None)  # any `import mkdocs` now fails
    hook = _load_hook("cli_reference")
    from physgrad.cli import build_parser

    names = set(hook.subcommands(build_parser()))
    assert names >= SUBCOMMANDS
    text = hook.cli_reference_markdown()
    assert "usage: physgrad [-h]" in text and "--version" in text
    for name in names:
        assert f"## `physgrad {name}`" in text
        assert f"usage: physgrad {name}" in text
    assert "--checkpoint-every" in text  # options of the subcommands, not only their names


def test_cli_page_holds_the_placeholder_and_the_hook_fills_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "mkdocs", None)
    hook = _load_hook("cli_reference")
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert hook.PLACEHOLDER in page
    out = hook.on_page_markdown(page, page=None, config=None, files=None)
    assert hook.PLACEHOLDER not in out
    assert all(f"## `physgrad {name}`" in out for name in SUBCOMMANDS)
    assert hook.on_page_markdown("# other page", page=None, config=None, files=None) == (
        "# other page"
    )


def test_examples_page_covers_every_script_and_example_links_resolve(monkeypatch):
    monkeypatch.setitem(sys.modules, "mkdocs", None)
    hook = _load_hook("repo_files")
    assert hook.PLACEHOLDER in (DOCS / "examples.md").read_text(encoding="utf-8")
    text = hook.examples_markdown(ROOT)
    for script in sorted((ROOT / "examples").glob("*.py")):
        assert f"## {script.name} {{ #{hook.example_anchor(script.stem)} }}" in text
    guide = hook.relink_examples((DOCS / "own-physics.md").read_text(encoding="utf-8"), "x.md")
    assert "../examples/" not in guide
    for anchor in re.findall(r"\]\(examples\.md#([a-z0-9-]+)\)", guide):
        assert f"{{ #{anchor} }}" in text
    assert "](docs/" not in hook.benchmarks_markdown(ROOT)


def test_mkdocs_config_loads_with_the_hooks():
    config_mod = pytest.importorskip("mkdocs.config")
    cfg = config_mod.load_config(str(ROOT / "mkdocs.yml"))
    hooks = {Path(p).name for p in cfg["hooks"]}
    assert {"cli_reference.py", "repo_files.py"} <= hooks
    assert cfg["strict"] is True
