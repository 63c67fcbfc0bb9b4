"""Experiments from other packages, found through the ``physgrad.experiments`` entry points.

The example package examples/experiment_package is "installed" by putting its source folder
and a ``.dist-info`` with its ``entry_points.txt`` on ``sys.path``: exactly what pip's
editable install leaves behind, without running pip in the test.
"""

import sys
from pathlib import Path

import pytest

from physgrad.cli import main
from physgrad.experiments import base

PACKAGE = Path(__file__).parents[1] / "examples" / "experiment_package"


@pytest.fixture
def installed(tmp_path, monkeypatch):
    def install(entry: str) -> None:
        info = tmp_path / "cubelab-0.1.0.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cubelab\nVersion: 0.1.0\n")
        (info / "entry_points.txt").write_text(f"[physgrad.experiments]\ncubelab = {entry}\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.syspath_prepend(str(PACKAGE / "src"))

    base.list_experiments()  # load the built-ins first: they register once, on import
    registry = dict(base.REGISTRY)
    yield install
    base.REGISTRY.clear()
    base.REGISTRY.update(registry)
    for name in [m for m in sys.modules if m.startswith("cubelab")]:
        del sys.modules[name]


def test_an_installed_package_adds_its_experiment(installed, tmp_path, capsys):
    installed("cubelab.experiments")
    assert main(["list"]) == 0
    assert "cube  (example package (not in the paper))" in capsys.readouterr().out
    out = tmp_path / "run"
    assert main(["compare", "cube", "--scale", "smoke", "--out", str(out), "--quiet"]) == 0
    assert (out / "adam" / "heldout.csv").exists()
    assert (out / "pg-gauss-newton" / "metrics.csv").exists()


def test_a_broken_entry_point_is_named(installed, capsys):
    installed("cubelab.no_such_module")
    assert main(["list"]) == 2
    err = capsys.readouterr().err.strip()
    assert "experiments entry point 'cubelab' (cubelab.no_such_module) failed to load" in err
    assert len(err.splitlines()) == 1
