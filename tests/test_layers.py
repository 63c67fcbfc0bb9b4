"""The layering of docs/architecture.md, checked on the source: no module imports from a layer
above its own (at module level or inside a function), and only the report draws."""

from __future__ import annotations

import ast
from pathlib import Path

import physgrad

PACKAGE = Path(physgrad.__file__).parent

RANKS = {
    "core": 0, "_validation": 0, "io": 0, "table": 0, "stats": 0,
    "solvers": 1, "physics": 1, "nets": 1, "interop": 1,
    "problems": 2, "diagnose": 2,  # diagnose: a problem's physics and solvers checked
    "training": 3,
    "experiments": 4,
    "report": 5,
    "cli": 6, "config": 6, "__main__": 6,
}
"""Top-level module or subpackage of physgrad -> its layer (higher imports lower)."""

DRAWING = ("matplotlib", "PIL")
"""Imported only by the report."""


def _module(path: Path) -> str:
    """``physgrad.a.b`` for ``PACKAGE/a/b.py`` (a package's ``__init__`` is the package)."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(("physgrad", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, imported module)`` of every import in ``path``, wherever it stands; ``from
    physgrad import x`` names ``physgrad.x``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = {f"{node.module}.{a.name}" if node.module == "physgrad" else node.module
                     for a in node.names}
            found += [(node.lineno, name) for name in sorted(names)]
    return found


def _rank(module: str) -> int | None:
    """The layer of ``physgrad.<top>...``; None for the package itself (its version and
    public names) and for modules outside physgrad."""
    parts = module.split(".")
    if parts[0] != "physgrad" or len(parts) < 2 or parts[1] not in RANKS:
        return None
    return RANKS[parts[1]]


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_has_a_layer() -> None:
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in _sources()}
    assert tops - {"__init__"} <= set(RANKS), sorted(tops - {"__init__"} - set(RANKS))


def test_no_import_goes_up_a_layer() -> None:
    upward = []
    for path in _sources():
        own = _rank(_module(path))
        if own is None:  # physgrad/__init__.py: the public facade
            continue
        for line, target in _imports(path):
            rank = _rank(target)
            if rank is not None and rank > own:
                upward.append(f"{path.relative_to(PACKAGE)}:{line} imports {target}")
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_only_the_report_draws() -> None:
    drawing = [
        f"{path.relative_to(PACKAGE)}:{line} imports {target}"
        for path in _sources() if _rank(_module(path)) != RANKS["report"]
        for line, target in _imports(path) if target.split(".")[0] in DRAWING
    ]
    assert not drawing, "\n".join(drawing)


def test_the_scan_sees_function_level_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from physgrad.report import plots\n    import matplotlib\n")
    assert _imports(source) == [(2, "physgrad.report"), (3, "matplotlib")]
    assert _rank("physgrad.report.plots") == 5 and _rank("physgrad") is None
