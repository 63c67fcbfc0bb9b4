"""Every public entry point, driven with bad input: each case must raise the stated exception
type with a one-line message naming the offending value, and leave no files behind.

The cases are listed, with their messages, in docs/bad-input.md.
"""

import pytest
import torch
from torch import nn

import physgrad
from physgrad.cli import main
from physgrad.experiments import compare, get_experiment
from physgrad.problems import Batch, HeatProblem, PoissonProblem, SineProblem
from physgrad.solvers import LBFGS, Analytic, GaussNewton, GradientDescent, Newton, ScipyLBFGSB
from physgrad.training import (
    CheckpointError,
    Physical,
    Supervised,
    Trainer,
    Unsupervised,
    load_checkpoint,
)


def phys(x):
    return x**2


X, Y = torch.zeros(3, 2), torch.zeros(3, 2)
GD = GradientDescent(0.1)


def _pg(**kw):
    args = {"x": X, "y_target": Y, "physics": phys, "solver": GD, **kw}
    return physgrad.physical_gradient_loss(
        args["x"], args["y_target"], args["physics"], args["solver"], **{
            k: v for k, v in args.items() if k not in ("x", "y_target", "physics", "solver")
        }
    )


def _trainer(**kw):
    args = {"problem": SineProblem(), "network": nn.Linear(1, 1), "method": Unsupervised(),
            "optimizer": lambda p: torch.optim.Adam(p), "batch_size": 4, **kw}
    return Trainer(args.pop("problem"), args.pop("network"), args.pop("method"),
                   args.pop("optimizer"), **args)


def _bad_checkpoint(tmp_path, payload):
    path = tmp_path / "c.pt"
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        torch.save(payload, path)
    return lambda: load_checkpoint(path)


API_CASES = [
    # physical_gradient_loss / unsupervised_loss
    ("x not a tensor", lambda: _pg(x=[[0.0]]), TypeError, "x must be a torch.Tensor"),
    ("x integer dtype", lambda: _pg(x=torch.zeros(3, 2, dtype=torch.long)), TypeError,
     "floating-point"),
    ("x scalar", lambda: _pg(x=torch.tensor(1.0)), ValueError, "at least 1 dimension"),
    ("batch mismatch", lambda: _pg(y_target=torch.zeros(4, 2)), ValueError,
     "batch sizes differ: x has 3 samples, y_target has 4"),
    ("empty batch", lambda: _pg(x=torch.zeros(0, 2), y_target=torch.zeros(0, 2)), ValueError,
     "empty batch"),
    ("NaN target", lambda: _pg(y_target=torch.full((3, 2), float("nan"))), ValueError,
     "y_target contains 6 non-finite"),
    ("inf prediction", lambda: _pg(x=torch.full((3, 2), float("inf"))), ValueError,
     "x0 contains 6 non-finite"),
    ("unknown reduction", lambda: _pg(reduction="avg"), ValueError, "unknown reduction 'avg'"),
    ("solver not callable", lambda: _pg(solver=3), TypeError, "solver must be callable"),
    ("solver wrong shape", lambda: _pg(solver=Analytic(lambda x0, y: x0[:, :1])), ValueError,
     "expected shape (3, 2)"),
    ("physics wrong shape", lambda: _pg(physics=lambda x: x[:, :1]), ValueError,
     "physics output shape (3, 1) does not match y_target shape (3, 2)"),
    ("physics not a tensor", lambda: _pg(physics=lambda x: 1.0), TypeError,
     "physics must return a torch.Tensor, got float"),
    ("unsupervised batch mismatch",
     lambda: physgrad.unsupervised_loss(X, torch.zeros(2, 2), phys), ValueError,
     "batch sizes differ"),
    # solvers
    ("GD lr zero", lambda: GradientDescent(lr=0.0), ValueError, "lr must be > 0, got 0.0"),
    ("GD lr negative", lambda: GradientDescent(lr=-1), ValueError, "lr must be > 0, got -1.0"),
    ("GD lr NaN", lambda: GradientDescent(lr=float("nan")), ValueError, "lr must be finite"),
    ("GD lr string", lambda: GradientDescent(lr="1"), TypeError, "lr must be a number"),
    ("GD steps zero", lambda: GradientDescent(steps=0), ValueError, "steps must be >= 1, got 0"),
    ("GD steps float", lambda: GradientDescent(steps=1.5), TypeError, "steps must be an int"),
    ("Newton damping negative", lambda: Newton(damping=-0.1), ValueError,
     "damping must be >= 0, got -0.1"),
    ("GaussNewton steps negative", lambda: GaussNewton(steps=-1), ValueError,
     "steps must be >= 1, got -1"),
    ("LBFGS history zero", lambda: LBFGS(history=0), ValueError, "history must be >= 1"),
    ("LBFGS gtol negative", lambda: LBFGS(gtol=-1.0), ValueError, "gtol must be >= 0"),
    ("ScipyLBFGSB steps zero", lambda: ScipyLBFGSB(steps=0), ValueError, "steps must be >= 1"),
    ("Analytic not callable", lambda: Analytic(5), TypeError, "needs a callable"),
    ("solver physics not callable", lambda: GD(X, Y, "physics"), TypeError,
     "physics must be a callable"),
    # methods
    ("Physical solver int", lambda: Physical(3), TypeError, "inverse solver or a solver name"),
    ("Unsupervised clip zero", lambda: Unsupervised(clip=0.0), ValueError, "clip must be > 0"),
    ("method reduction none", lambda: Unsupervised(reduction="none"), ValueError,
     "unknown reduction 'none'"),
    ("supervised without labels",
     lambda: Supervised().loss(X, Batch(y_target=Y), SineProblem()), ValueError,
     "needs x_true labels or a label_solver"),
    ("unknown domain solver",
     lambda: Physical("magic").loss(torch.ones(3, 1), SineProblem().sample(
         3, torch.Generator()), SineProblem()), ValueError,
     "unknown solver 'magic' for problem 'sine'"),
    # trainer
    ("trainer batch zero", lambda: _trainer(batch_size=0), ValueError, "batch_size must be >= 1"),
    ("trainer network", lambda: _trainer(network=lambda x: x), TypeError,
     "network must be a torch.nn.Module"),
    ("trainer problem", lambda: _trainer(problem="sine"), TypeError,
     "problem must be a physgrad Problem"),
    ("trainer method", lambda: _trainer(method="adam"), TypeError,
     "method must be a physgrad Method"),
    ("trainer checkpoint_every", lambda: _trainer(checkpoint_every=-1), ValueError,
     "checkpoint_every must be >= 0"),
    ("train zero iterations", lambda: _trainer().train(0), ValueError,
     "iterations must be >= 1, got 0"),
    # experiments and problems
    ("unknown experiment", lambda: get_experiment("nope"), ValueError,
     "unknown experiment 'nope'"),
    ("unknown scale", lambda: get_experiment("sine").scale("huge"), ValueError,
     "unknown scale 'huge'"),
    ("compare unknown method", lambda: compare(get_experiment("sine"), ["adam", "bogus"]),
     ValueError, "'bogus'"),
    ("compare toy", lambda: compare(get_experiment("toy")), ValueError,
     "has no training methods"),
    ("poisson negative shape", lambda: PoissonProblem(shape=(-3, 4)), ValueError,
     "shape must be non-empty with entries >= 1, got (-3, 4)"),
    ("poisson unknown method", lambda: PoissonProblem(method="lu"), ValueError,
     "unknown method 'lu'"),
    ("heat zero size", lambda: HeatProblem(shape=(0, 4)), ValueError, "got (0, 4)"),
    ("heat negative time", lambda: HeatProblem(amount=-1.0), ValueError, "amount must be > 0"),
    ("heat zero time", lambda: HeatProblem(amount=0.0), ValueError, "amount must be > 0, got 0.0"),
    ("sample zero batch", lambda: PoissonProblem().sample(0, torch.Generator()), ValueError,
     "batch_size must be >= 1, got 0"),
]


@pytest.mark.parametrize(
    ("func", "error", "message"), [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES]
)
def test_api_bad_input(func, error, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error) as info:
        func()
    text = str(info.value)
    assert message in text and "\n" not in text
    assert not any(tmp_path.iterdir()), "bad input left files behind"


CHECKPOINT_CASES = [
    ("missing file", None, "does not exist"),
    ("garbage bytes", b"\x00garbage", "unreadable"),
    ("truncated", b"PK\x03\x04", "unreadable"),
    ("foreign payload", {"weights": torch.zeros(2)}, "not a physgrad checkpoint"),
    ("future version", {"format": "physgrad-checkpoint", "version": 7}, "version 7"),
]


@pytest.mark.parametrize(("payload", "message"), [c[1:] for c in CHECKPOINT_CASES],
                         ids=[c[0] for c in CHECKPOINT_CASES])
def test_bad_checkpoints(payload, message, tmp_path):
    func = (lambda: load_checkpoint(tmp_path / "missing.pt")) if payload is None else \
        _bad_checkpoint(tmp_path, payload)
    with pytest.raises(CheckpointError, match=message):
        func()


CLI_CASES = [
    (["run", "nope"], "unknown experiment 'nope'"),
    (["run", "sine", "--method", "magic"], "unknown method for experiment 'sine' 'magic'"),
    (["run", "sine", "--iters", "0"], "iterations must be >= 1, got 0"),
    (["run", "sine", "--iters", "-5"], "iterations must be >= 1, got -5"),
    (["run", "sine", "--batch-size", "0"], "batch_size must be >= 1, got 0"),
    (["run", "sine", "--lr", "-1"], "lr must be > 0, got -1.0"),
    (["run", "sine", "--lr", "nan"], "lr must be finite"),
    (["run", "sine", "--seed", "-1"], "seed must be >= 0, got -1"),
    (["run", "sine", "--config", "missing.yaml"], "config file 'missing.yaml' does not exist"),
    (["run", "sine", "--config", "bad.yaml"], "unknown config key 'itrs'"),
    (["run", "sine", "--config", "type.yaml"],
     "config key 'training.iterations' must be int | None, got 'ten'"),
    (["run", "sine", "--config", "old.yaml"], "unknown config key 'iters'"),
    (["run", "sine", "--config", "broken.toml"], "is not valid YAML/TOML/JSON"),
    (["run", "sine", "--set", "training.iterations"], "--set needs key=value"),
    (["run", "sine", "--set", "training.iterations=0"], "training.iterations must be >= 1"),
    (["run", "sine", "--set", "optimizer.lr=fast"], "config key 'optimizer.lr' must be"),
    (["run", "sine", "--set", "problem.bogus=1"], "unknown config key problem.bogus"),
    (["run", "heat", "--set", "network.filters=wide"], "config key 'network.filters' must be"),
    (["run", "heat", "--set", "problem.shape=[64]"], "problem config"),
    (["run", "wavepacket", "--set", "problem.length=-4"], "problem config"),
    (["run", "sine", "--config", "list.yaml"], "must hold a mapping"),
    (["run"], "no experiment given"),
    (["compare", "sine", "--methods", "adam,bogus"], "'bogus'"),
    (["compare", "sine", "--seeds", "5,x"], "--seeds must be comma-separated integers"),
    (["compare", "sine", "--iters", "0"], "iterations must be >= 1"),
    (["compare", "toy"], "experiment 'toy' makes a figure and has no methods"),
    (["reproduce", "--only", "sine,nope"], "unknown experiment(s) nope"),
    (["--threads", "0", "list"], "--threads must be >= 1, got 0"),
]


@pytest.mark.parametrize(("args", "message"), CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_cli_bad_input(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("itrs: 5\n")
    (tmp_path / "type.yaml").write_text("training:\n  iterations: ten\n")
    (tmp_path / "old.yaml").write_text("iters: 5\n")
    (tmp_path / "broken.toml").write_text("training = [\n")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    before = set(tmp_path.iterdir())
    out = ["--out", str(tmp_path / "out")] if args and args[0] in ("run", "compare") else []
    assert main([*args, *out, "--quiet"] if args[0] != "--threads" else args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert set(tmp_path.iterdir()) == before, "bad input left files behind"


def test_there_are_at_least_forty_cases():
    assert len(API_CASES) + len(CHECKPOINT_CASES) + len(CLI_CASES) >= 40
