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
from helpers import load_script

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


# A docstring "states shapes" if it holds a parenthesised shape such as ``(B, X, Y)``,
# ``(B,)``, ``(*, F)``, ``(*batch, X, Y)``, ``(..., 2)``, ``(ny, nx)``, ``(B·dy, nθ)``,
# ``(2, ny, nx)`` or the word "shape(s)" / a "Shapes:" section. A heuristic, not a parser.
SHAPE = re.compile(
    r"\((?:\*|\.\.\.|[A-Z]\b|[A-Za-z]\w{0,3}\s*[,)·×]|\d+\s*,)|\b[Ss]hapes?\b"
)
TENSOR_METHODS_OF_CLASS = ("__init__", "__call__", "forward")

# Genuine exceptions: tensor-annotated public callables whose docstring need not state shapes.
# Keep this short and say why for each entry.
SHAPES_ALLOWLIST: set[str] = set()


def _mentions_tensor(func: object) -> bool:
    """Whether a parameter or return annotation of ``func`` names ``torch.Tensor``."""
    try:
        sig = inspect.signature(func)  # annotations stay strings (``from __future__``)
    except (TypeError, ValueError):
        return False
    annotations = [p.annotation for p in sig.parameters.values()] + [sig.return_annotation]
    return any(
        "Tensor" in (a if isinstance(a, str) else repr(a))
        for a in annotations
        if a is not inspect.Parameter.empty
    )


def _own_members(cls: type) -> dict[str, object]:
    """Public methods/properties (plus ``__init__``/``__call__``/``forward``) that physgrad
    defines on ``cls`` or its physgrad base classes; torch's own ``nn.Module`` API is not ours."""
    members: dict[str, object] = {}
    for base in reversed(cls.__mro__):
        if not base.__module__.startswith("physgrad"):
            continue
        for attr, value in vars(base).items():
            if attr.startswith("_") and attr not in TENSOR_METHODS_OF_CLASS:
                continue
            func = value.fget if isinstance(value, property) else value
            func = getattr(func, "__func__", func)  # classmethod / staticmethod
            if inspect.isfunction(func):
                members[attr] = func
    return members


def _tensor_callables_without_shapes() -> tuple[list[str], list[str]]:
    """(every tensor-annotated public callable checked, those whose docstrings state no shape)."""
    checked, missing, seen = [], [], set()
    for module in _modules():
        for obj in _public_objects(module).values():
            if id(obj) in seen or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            seen.add(id(obj))
            where = f"{obj.__module__}.{obj.__qualname__}"
            if inspect.isfunction(obj):
                targets = {where: (obj, inspect.getdoc(obj) or "")}
            else:
                class_doc = inspect.getdoc(obj) or ""
                targets = {}
                for attr, func in _own_members(obj).items():
                    doc = inspect.getdoc(getattr(obj, attr)) or ""  # own or inherited
                    if attr in TENSOR_METHODS_OF_CLASS:
                        doc = f"{doc}\n{class_doc}"  # merged into the class page by the docs
                    targets[f"{where}.{attr}"] = (func, doc)
            for label, (func, doc) in targets.items():
                if not _mentions_tensor(func):
                    continue
                checked.append(label)
                if not SHAPE.search(doc) and label not in SHAPES_ALLOWLIST:
                    missing.append(label)
    return checked, missing


def test_shape_heuristic():
    for text in ["``(B, X, Y)``", "``(B,)``", "(*, F)", "``(*batch, X, Y)``", "(..., 2)",
                 "``(ny, nx//2+1)``", "``(B·dy, nθ)``", "``(2, ny, nx)``", "the shape of x",
                 "Shapes:"]:
        assert SHAPE.search(text), text
    for text in ["The network input.", "(default 8)", "(e.g. a marker)", "(a Physics)",
                 "Ratio (dimensionless)."]:
        assert not SHAPE.search(text), text


def test_every_tensor_callable_documents_its_shapes():
    """Issue 8: every public function taking or returning tensors says what shapes they have."""
    checked, missing = _tensor_callables_without_shapes()
    assert "physgrad.core.physical_gradient_loss" in checked  # the scan does see tensors
    assert "physgrad.solvers.base.Solver.__call__" in checked
    assert "physgrad.physics.fluid.simulate.FluidSimulator.step" in checked
    assert missing == []
    assert not SHAPES_ALLOWLIST - set(checked), "stale allowlist entries"


def _load_hook(name: str) -> ModuleType:
    module = load_script(DOCS / "hooks" / f"{name}.py", f"_docs_hook_{name}")
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
