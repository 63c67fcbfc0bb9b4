"""Optimizers as data (issue 13 item 6): OptimizerSpec validation, the experiments' optimizers
unchanged, config overrides, records in the run's files, and resuming runs written before
optimizers were recorded."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from physgrad.cli import main
from physgrad.experiments.base import get_experiment, list_experiments
from physgrad.training import CheckpointError, load_checkpoint
from physgrad.training.optimizers import DecayingAdam, OptimizerSpec, configure

DATA = Path(__file__).parent / "data"
BEFORE = json.loads((DATA / "optimizer_hparams_before.json").read_text())
"""Class and param-group hyper-parameters of every experiment's optimizer as the hand-written
``_adam``/``_sgd`` closures built them (dumped from the code before OptimizerSpec)."""


def _built(optimizer) -> dict:
    built = optimizer([nn.Parameter(torch.zeros(3))])
    (group,) = built.param_groups
    values = {k: list(v) if isinstance(v, tuple) else v for k, v in group.items()}
    return {"class": type(built).__name__, **values}


def _all_methods(tmp_path) -> dict:
    from physgrad.experiments.custom import custom_experiment
    from physgrad.experiments.sine2d import make_experiment

    (tmp_path / "p.py").write_text(
        "import torch\nfrom physgrad.problems import FunctionProblem\n"
        "def make():\n    return FunctionProblem(lambda x: x**3, lambda n, g: "
        "(torch.rand(n, 2, generator=g), torch.rand(n, 2, generator=g) ** 3))\n")
    experiments = [*list_experiments(), make_experiment(xi=1.0), make_experiment(xi=100.0)]
    found = {f"{e.name}/{m}": s.optimizer for e in experiments
             for m, s in getattr(e, "methods", {}).items()}
    custom = custom_experiment(f"{tmp_path / 'p.py'}:make")
    found.update({f"custom/{m}": s.optimizer for m, s in custom.methods.items()})
    return found


def test_every_experiment_builds_the_optimizer_it_built_before(tmp_path):
    """Same optimizer class, lr, betas, momentum, eps, schedule state for every method."""
    found = _all_methods(tmp_path)
    assert set(found) == set(BEFORE)
    for key, optimizer in found.items():
        assert isinstance(optimizer, OptimizerSpec), key
        built = _built(optimizer)
        assert {k: built.get(k) for k in BEFORE[key]} == BEFORE[key], key


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "adamm", "lr": 1e-3}, "unknown optimizer 'adamm'; choose one of"),
        ({"name": "adam", "lr": -0.1}, "optimizer lr must be a finite number > 0, got -0.1"),
        ({"name": "adam", "lr": 0.0}, "got 0.0"),
        ({"name": "adam", "lr": float("nan")}, "got nan"),
        ({"name": "sgd", "lr": "fast"}, "optimizer lr must be a number, got 'fast'"),
        ({"name": "adam", "lr": 1e-3, "kwargs": {"momentum": 0.9}},
         "optimizer 'adam' takes no keyword 'momentum'"),
        ({"name": "sgd", "lr": 1e-3, "kwargs": {"momentum": -1}}, "momentum"),
        ({"name": "adam", "lr": 1e-3, "tenfold_steps": 0},
         "optimizer tenfold_steps must be an int >= 1, got 0"),
    ],
)
def test_bad_specs_raise_one_line_naming_the_value(kwargs, message):
    with pytest.raises(ValueError, match=None) as info:
        OptimizerSpec(**kwargs)
    text = str(info.value)
    assert message in text and len(text.splitlines()) == 1, text


def test_record_reads_back_and_overrides_merge():
    spec = OptimizerSpec("adam", 2e-3, {"betas": [0.5, 0.9]}, tenfold_steps=100)
    assert spec.kwargs == {"betas": (0.5, 0.9)}  # lists as tuples: config == code
    record = spec.record()
    assert json.loads(json.dumps(record)) == record
    assert OptimizerSpec(**record) == spec
    sgd = OptimizerSpec("sgd", 1e-2, {"momentum": 0.9})
    assert sgd.override({"lr": "1e-3"}) == OptimizerSpec("sgd", 1e-3, {"momentum": 0.9})
    assert sgd.override({"kwargs": {"nesterov": True}}).kwargs == {"momentum": 0.9,
                                                                   "nesterov": True}
    assert sgd.override({"name": "adam"}) == OptimizerSpec("adam", 1e-2)  # kwargs start empty
    assert sgd.override({"lr": None, "kwargs": {}}) is sgd
    with pytest.raises(ValueError, match=r"unknown key optimizer\.methods\.sgd\.momentum"):
        sgd.override({"momentum": 0.5}, "optimizer.methods.sgd")
    with pytest.raises(ValueError, match="optimizer.methods.sgd: optimizer lr must be"):
        sgd.override({"lr": -1}, "optimizer.methods.sgd")


def test_configure_applies_the_section_then_the_method_entry():
    spec = OptimizerSpec("adam", 1e-3)
    section = {"lr": 5e-3, "methods": {"pg": {"lr": 7e-3}, "other": {"lr": 1.0}}}
    assert configure(spec, section, "pg").lr == 7e-3
    assert configure(spec, section, "adam").lr == 5e-3
    assert configure(spec, None, "adam") is spec

    def factory(params):
        return torch.optim.Adam(params, lr=1e-3)

    assert configure(factory, {"lr": None, "kwargs": {}}, "m") is factory
    assert _built(configure(factory, {"lr": 0.5}, "m"))["lr"] == 0.5
    with pytest.raises(ValueError, match="only its lr can be overridden, not name"):
        configure(factory, {"name": "sgd"}, "m")


def test_the_tenfold_decay_follows_its_formula_and_resumes_exactly():
    torch.manual_seed(0)
    spec = OptimizerSpec("sgd", 0.1, {"momentum": 0.5}, tenfold_steps=4)
    weights = nn.Parameter(torch.randn(5))

    def steps(optimizer, n):
        lrs = []
        for _ in range(n):
            optimizer.zero_grad()
            (weights**2).sum().backward()
            optimizer.step()
            lrs.append(optimizer.param_groups[0]["lr"])
        return lrs

    first = spec([weights])
    assert steps(first, 6) == [0.1 * 0.1 ** (t / 4) for t in range(6)]
    saved, at = copy.deepcopy(first.state_dict()), weights.detach().clone()
    later = steps(first, 3), weights.detach().clone()
    with torch.no_grad():
        weights.copy_(at)
    again = spec([weights])
    again.load_state_dict(saved)
    assert (steps(again, 3), weights.detach().clone())[0] == later[0]
    assert torch.equal(weights, later[1])
    assert isinstance(OptimizerSpec("adam", 1e-3, tenfold_steps=2)([weights]), DecayingAdam)


def _losses(run_dir: Path) -> list[list[str]]:
    """metrics.csv without the timing columns."""
    rows = [r.split(",") for r in (run_dir / "metrics.csv").read_text().splitlines()]
    keep = [i for i, name in enumerate(rows[0]) if not name.endswith("_time")]
    return [[r[i] for i in keep] for r in rows]


def test_runs_written_before_optimizers_were_recorded_resume_bit_exactly(tmp_path, capsys):
    """tests/data/legacy-sine-run was written by physgrad before this change (4 iterations:
    ``compare sine --methods adam,adam-lr-decay`` and ``run --method pg-analytic --lr
    0.01``); resumed to 7 iterations it matches a run trained for 7 in one go."""
    old, fresh = tmp_path / "old", tmp_path / "fresh"
    shutil.copytree(DATA / "legacy-sine-run", old)
    smoke = ["--scale", "smoke", "--iters", "7", "--quiet"]
    compare = ["compare", "sine", "--methods", "adam,adam-lr-decay", *smoke]
    run = ["run", "sine", "--method", "pg-analytic", *smoke]
    assert main([*compare, "--out", str(old), "--resume"]) == 0
    assert main([*run, "--out", str(old), "--resume"]) == 0  # lr 0.01 from its config.yaml
    assert main([*compare, "--out", str(fresh)]) == 0
    assert main([*run, "--out", str(fresh), "--lr", "0.01"]) == 0
    for method in ("adam", "adam-lr-decay", "pg-analytic"):
        assert _losses(old / method) == _losses(fresh / method), method
        summary = json.loads((old / method / "summary.json").read_text())
        checkpoint = load_checkpoint(old / method / "checkpoint.pt")
        assert summary["optimizer_spec"] == checkpoint["optimizer_spec"]
        assert summary["optimizer_spec"] == json.loads(
            (fresh / method / "summary.json").read_text())["optimizer_spec"]
    assert load_checkpoint(old / "adam-lr-decay" / "checkpoint.pt")["optimizer_spec"] == {
        "name": "adam", "lr": 0.002, "kwargs": {}, "tenfold_steps": 5000}
    assert json.loads((old / "pg-analytic" / "summary.json").read_text())["lr"] == 0.01


def test_an_old_checkpoint_refuses_another_optimizer(tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(DATA / "legacy-sine-run", old)
    args = ["compare", "sine", "--methods", "adam", "--scale", "smoke", "--iters", "6",
            "--quiet", "--out", str(old), "--resume"]
    before = (old / "adam" / "checkpoint.pt").read_bytes()
    capsys.readouterr()
    assert main([*args, "--set", "optimizer.kwargs.amsgrad=true"]) == 2
    assert "is for optimizer_spec=" in capsys.readouterr().err
    assert (old / "adam" / "checkpoint.pt").read_bytes() == before
    with pytest.raises(CheckpointError, match="optimizer_spec"):  # the API checks it too
        from physgrad.experiments.runner import run_method

        run_method(get_experiment("sine"), "adam", old, iterations=6, batch_size=100,
                   resume=True, progress=False, optimizer={"kwargs": {"amsgrad": True}})


def test_per_method_config_is_applied_recorded_and_repeatable(tmp_path, capsys):
    out = tmp_path / "o"
    args = ["compare", "sine", "--methods", "adam,pg-analytic", "--scale", "smoke",
            "--iters", "3", "--quiet", "--out", str(out)]
    assert main([*args, "--set", "optimizer.methods.adam.lr=0.01",
                 "--set", "optimizer.methods.adam.kwargs={amsgrad: true}"]) == 0
    summary = json.loads((out / "adam" / "summary.json").read_text())
    assert summary["lr"] == 0.01
    assert summary["optimizer_spec"] == {"name": "adam", "lr": 0.01,
                                         "kwargs": {"amsgrad": True}, "tenfold_steps": None}
    other = json.loads((out / "pg-analytic" / "summary.json").read_text())
    assert "lr" not in other and other["optimizer_spec"]["lr"] == 0.002
    config = yaml.safe_load((out / "adam" / "config.yaml").read_text())["optimizer"]
    assert config == {"lr": 0.01, "name": "adam", "kwargs": {"amsgrad": True},
                      "tenfold_steps": None, "methods": {}}
    assert (out / "adam" / "config.yaml").read_text().startswith(
        "# repeat with: physgrad run --config")
    assert (out / "config.yaml").read_text().startswith("# repeat with: physgrad compare --config")
    capsys.readouterr()  # compare with one method's config would give adam's optimizer to all
    assert main(["compare", "--config", str(out / "adam" / "config.yaml"), "--out",
                 str(tmp_path / "refused"), "--quiet"]) == 2
    assert "method 'adam' is for `physgrad run`" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()
    again = tmp_path / "again"  # the run's config.yaml repeats it exactly
    assert main(["run", "--config", str(out / "adam" / "config.yaml"), "--out", str(again),
                 "--quiet"]) == 0
    assert _losses(out / "adam") == _losses(again / "adam")
    capsys.readouterr()
    assert main([*args, "--force", "--set", "optimizer.methods.bogus.lr=1"]) == 2
    assert "unknown method 'bogus' in optimizer.methods" in capsys.readouterr().err
    # `run` too (it resolves its one method's optimizer: the name was dropped unchecked)
    run = ["run", "sine", "--method", "adam", "--scale", "smoke", "--iters", "3", "--quiet",
           "--out", str(tmp_path / "r")]
    assert main([*run, "--set", "optimizer.methods.bogus.lr=1"]) == 2
    assert "unknown method 'bogus' in optimizer.methods" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert main([*args, "--force", "--set", "optimizer.name=adamm"]) == 2
    assert "unknown optimizer 'adamm'" in capsys.readouterr().err
