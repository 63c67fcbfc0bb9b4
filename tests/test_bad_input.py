"""Every public entry point, driven with bad input: each case must raise the stated exception
type with a one-line message naming the offending value, and leave no files behind.

The cases are listed, with their messages, in docs/bad-input.md. The second half covers
faults (issue 16): physics that is NaN or not differentiable, refused commands that must not
change a run folder, concurrent runs, killed writers, full disks, unreachable trackers.
"""

import hashlib
import importlib.util
import json
import os
import resource
import runpy
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

import physgrad
from physgrad.cli import _locked, main
from physgrad.config import RunConfig, load_config_file
from physgrad.core import NonDifferentiableError, NonFiniteError
from physgrad.experiments import compare, compare_methods, get_experiment
from physgrad.experiments.runner import compare_seeds, run_method
from physgrad.nets import adapt
from physgrad.problems import (
    Batch,
    FunctionProblem,
    HeatProblem,
    ObservationsProblem,
    PoissonProblem,
    SineProblem,
)
from physgrad.solvers import LBFGS, Analytic, GaussNewton, GradientDescent, Newton, ScipyLBFGSB
from physgrad.solvers.base import symmetric_eigh
from physgrad.training import (
    CheckpointError,
    Physical,
    Supervised,
    Trainer,
    TrainingDiverged,
    Unsupervised,
    load_checkpoint,
)
from physgrad.training.checkpoint import WriteError, atomic_write
from physgrad.training.hig import half_inverse_direction
from physgrad.training.tracking import TrackerError, check_mlflow_server


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


XP, YP = torch.rand(4, 2, dtype=torch.float64) + 0.5, torch.rand(4, 2, dtype=torch.float64)
NAN = float("nan")


def _cube(x):
    return torch.stack([x[:, 0] ** 3, torch.exp(x[:, 1])], dim=1)


def _detached(x):
    return _cube(x).detach()


def _via_numpy(x):
    return torch.from_numpy(x.detach().numpy() ** 2)


def _no_grad(x):
    with torch.no_grad():
        return x**2


def _nan(x):
    return _cube(x) * NAN


def _sqrt_at_zero(x):  # finite value, infinite derivative
    return torch.sqrt(x - x.detach())


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
    ("physics int dtype (was a RuntimeError from autograd)",
     lambda: _pg(physics=lambda x: x.long()), TypeError,
     "physics must return a floating-point tensor, got dtype torch.int64"),
    ("solver objective summed over the batch (was a RuntimeError from a reshape)",
     lambda: _pg(solver=Newton(objective=lambda y, t: ((y - t) ** 2).sum())), ValueError,
     "objective must return one value per sample, shape (3,), got ()"),
    ("unsupervised objective per element (was silently averaged)",
     lambda: physgrad.unsupervised_loss(X, Y, phys, objective=lambda y, t: (y - t) ** 2),
     ValueError, "objective must return one value per sample, shape (3,), got (3, 2)"),
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
    # physical_gradient_loss clip
    ("clip zero", lambda: _pg(clip=0.0), ValueError, "clip must be > 0, got 0.0"),
    ("clip negative", lambda: _pg(clip=-1.0), ValueError, "clip must be > 0, got -1.0"),
    ("clip NaN", lambda: _pg(clip=NAN), ValueError, "clip must be finite, got nan"),
    # physics that is not differentiable: no silent zero gradient
    ("GaussNewton detached physics", lambda: GaussNewton()(XP, YP, _detached),
     NonDifferentiableError, "physics Jacobian dy/dx is exactly zero for all 4 samples"),
    ("GaussNewton numpy physics", lambda: GaussNewton()(XP, YP, _via_numpy),
     NonDifferentiableError, "cannot differentiate the physics with forward-mode AD"),
    ("Newton .data physics", lambda: Newton()(XP, YP, lambda x: x.data**2),
     NonDifferentiableError, "physics output does not require grad although x does"),
    ("LBFGS no_grad physics", lambda: LBFGS()(XP, YP, _no_grad), NonDifferentiableError,
     "physics output does not require grad"),
    ("ScipyLBFGSB numpy physics", lambda: ScipyLBFGSB()(XP, YP, _via_numpy),
     NonDifferentiableError, "physics output does not require grad"),
    ("backprop through detached physics",
     lambda: physgrad.unsupervised_loss(XP.clone().requires_grad_(True), YP, _detached),
     NonDifferentiableError, "physics output does not require grad"),
    # NaN/inf physics: every solver names the quantity
    ("ScipyLBFGSB NaN physics", lambda: ScipyLBFGSB()(XP, YP, _nan), NonFiniteError,
     "physics output contains 2 non-finite value(s) (NaN or inf) in ScipyLBFGSB"),
    ("LBFGS NaN physics", lambda: LBFGS()(XP, YP, _nan), NonFiniteError,
     "physics output contains 8 non-finite value(s) (NaN or inf) in LBFGS"),
    ("GaussNewton NaN physics", lambda: GaussNewton()(XP, YP, _nan), NonFiniteError,
     "physics output contains 8 non-finite value(s) (NaN or inf) in GaussNewton"),
    ("Newton NaN physics", lambda: Newton()(XP, YP, _nan), NonFiniteError,
     "physics output contains 8 non-finite value(s) (NaN or inf) in Newton"),
    ("GD NaN physics", lambda: GD(XP, YP, _nan), NonFiniteError, "physics output contains 8"),
    ("Newton infinite derivative", lambda: Newton()(XP, YP, _sqrt_at_zero), NonFiniteError,
     "objective gradient dL/dx contains 8 non-finite value(s)"),
    ("GaussNewton infinite derivative", lambda: GaussNewton()(XP, YP, _sqrt_at_zero),
     NonFiniteError, "physics Jacobian dy/dx contains 16 non-finite value(s)"),
    ("eigh of NaN curvature", lambda: symmetric_eigh(torch.full((1, 2, 2), NAN)),
     NonFiniteError, "curvature (Hessian or J^T J) contains 4 non-finite value(s)"),
    ("HalfInverse NaN jacobian",
     lambda: half_inverse_direction(torch.full((4, 3), NAN), torch.zeros(4)), NonFiniteError,
     "HalfInverse: jacobian dy/dtheta contains 12 non-finite value(s)"),
    # devices, learning rates, seeds, config values
    ("trainer device meta", lambda: _trainer(device="meta"), ValueError,
     "device 'meta' holds no data"),
    ("trainer device tpu", lambda: _trainer(device="tpu"), ValueError,
     "device 'tpu' is not a torch device"),
    ("run_method absent GPU", lambda: run_method(get_experiment("sine"), "adam", Path("o"),
     iterations=1, batch_size=2, device="cuda:99"), ValueError,
     "device 'cuda:99' is not available here"),
    ("run_method lr overflows float32", lambda: run_method(get_experiment("sine"), "adam",
     Path("o"), iterations=1, batch_size=2, lr=1e300), ValueError,
     "lr 1e+300 does not fit the network's torch.float32"),
    ("config seed overflow", lambda: RunConfig.from_dict({"training": {"seed": 2**64}}),
     ValueError, "training.seed must be in [0, 2**64 - 1], got 18446744073709551616"),
    ("config seeds negative", lambda: RunConfig.from_dict({"seeds": [1, -2]}), ValueError,
     "seeds[1] must be in [0, 2**64 - 1], got -2"),
    ("config empty out", lambda: RunConfig.from_dict({"out": ""}), ValueError,
     "out must name a folder, got ''"),
    ("config huge value",
     lambda: RunConfig.from_dict({"training": {"iterations": [[[["x"] * 9] * 9] * 9] * 9}}),
     ValueError, "got [[[[...], [...], [...], [...], [...], [...], ...]"),
    ("missing observations file", lambda: ObservationsProblem(_cube, "missing.npy"),
     FileNotFoundError, "observations file 'missing.npy' does not exist"),
    ("observations file a folder (was 'does not exist')",
     lambda: ObservationsProblem(_cube, Path(__file__).parent), ValueError,
     "is a folder, not a file"),
    ("FunctionProblem negative batch (was a RuntimeError from the user's sampler)",
     lambda: _cube_problem().sample(-1, torch.Generator()), ValueError,
     "batch_size must be >= 1, got -1"),
    ("diagnose negative seed", lambda: physgrad.diagnose(_cube_problem(), seed=-1), ValueError,
     "seed must be an integer in [0, 2**64 - 1], got -1"),
    ("diagnose NaN x (was diagnosed)",
     lambda: physgrad.diagnose(_cube_problem(), x=torch.full((4, 2), NAN)), ValueError,
     "x contains 8 non-finite value(s)"),
    ("diagnose x of the wrong shape (was diagnosed)",
     lambda: physgrad.diagnose(_cube_problem(), x=torch.rand(4, 3)), ValueError,
     "x has shape (4, 3), but problem 'cube' samples x of shape (4, 2)"),
    ("compare no methods (was 'all of them')",
     lambda: compare(get_experiment("sine"), [], "unused"), ValueError, "no methods given"),
    ("compare a method twice (trained twice into one folder)",
     lambda: compare(get_experiment("sine"), ["adam", "adam"], "unused"), ValueError,
     "method 'adam' is listed twice"),
    ("compare_seeds a seed twice",
     lambda: compare_seeds(get_experiment("sine"), ["adam"], "unused", [1, 1]), ValueError,
     "seed 1 is listed twice"),
    ("compare_methods given a network, not its factory (was a forward() TypeError)",
     lambda: compare_methods(_cube_problem(), nn.Linear(2, 2), {"Adam": Unsupervised}, "unused",
                             iterations=2, batch_size=4), TypeError,
     "network must be a factory () -> torch.nn.Module (e.g. lambda: MLP(...)), got a Linear"),
    ("compare_methods problem not a Problem (was an AttributeError)",
     lambda: compare_methods(3, lambda: nn.Linear(2, 2), {"Adam": Unsupervised}, "unused",
                             iterations=2, batch_size=4), TypeError,
     "problem must be a physgrad Problem, got int"),
    ("adapt a non-module (was an AttributeError)", lambda: adapt(3), TypeError,
     "adapt needs a torch.nn.Module, got int"),
    ("trainer negative seed (the config refuses it too)", lambda: _trainer(seed=-1), ValueError,
     "seed must be an integer in [0, 2**64 - 1], got -1"),
    ("trainer float seed (was truncated)", lambda: _trainer(seed=1.5), TypeError,
     "seed must be an int, got 1.5"),
    ("trainer network of the wrong output size",
     lambda: _trainer(problem=_cube_problem(), network=nn.Linear(2, 5)).train(1), ValueError,
     "network output shape (4, 5) does not match the problem's x_true shape (4, 2)"),
    ("trainer optimizer factory returns junk (was an AttributeError when training)",
     lambda: _trainer(optimizer=lambda params: 0.1), TypeError,
     "optimizer must be a factory params -> torch.optim.Optimizer; it returned float"),
]


def _every_builtin_problem():
    from physgrad.problems.exp import ExpProblem
    from physgrad.problems.fluid import FluidProblem
    from physgrad.problems.sine2d import Sine2DProblem
    from physgrad.problems.wavepacket import WavePacketProblem

    return [ExpProblem, FluidProblem, HeatProblem, PoissonProblem, SineProblem, Sine2DProblem,
            WavePacketProblem]


@pytest.mark.parametrize("problem", _every_builtin_problem(), ids=lambda c: c.__name__)
@pytest.mark.parametrize(("size", "error"), [(0, ValueError), (-1, ValueError),
                                             (2.5, TypeError)])
def test_every_builtin_problem_checks_its_batch_size(problem, size, error):
    # sine, sine2d, exp and fluid returned empty batches for 0 and raised torch's own
    # RuntimeError/multi-line TypeError for -1 and 2.5
    with pytest.raises(error, match=r"^batch_size must be (>= 1|an int), got (0|-1|2\.5)$"):
        problem().sample(size, torch.Generator())


def test_an_unlogged_headline_metric_is_named_after_the_first_method(tmp_path):
    with pytest.raises(ValueError) as info:  # was a KeyError after every method had trained
        compare_methods(_cube_problem(), lambda: nn.Linear(2, 2),
                        {"Adam": Unsupervised, "Adam + PG": lambda: Physical(GaussNewton())},
                        tmp_path, iterations=2, batch_size=4, metrics=("nope",),
                        progress=False)
    assert str(info.value).startswith(
        "metric 'nope' (the table's headline, metrics[0]) was not logged by 'adam'; it logged: "
        "iteration, loss,"
    )
    assert not (tmp_path / "adam-pg").exists()  # stopped before the second method


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [({"y_target": [1.0]}, TypeError, "Batch y_target must be a tensor (B, *y_shape), got list"),
     ({"x_true": torch.zeros(4, 2)}, ValueError,
      "Batch x_true has shape (4, 2), but y_target has 3 samples"),
     ({"condition": 0.5}, TypeError, "Batch condition must be a tensor or None, got float")],
)
def test_a_batch_checks_its_fields(fields, error, message):
    with pytest.raises(error) as info:
        Batch(**{"y_target": torch.zeros(3, 2), **fields})
    assert str(info.value) == message


def _cube_problem():
    def sampler(batch_size, gen):
        x = torch.rand(batch_size, 2, generator=gen, dtype=torch.float64)
        return x, _cube(x)

    return FunctionProblem(_cube, sampler, name="cube")


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
    (["run", "sine", "--out", ""], "out must name a folder, got ''"),
    (["run", "sine", "--out", "afile"], "--out 'afile' is a file, not a folder"),
    (["run", "sine", "--out", "afile/sub"],
     "--out 'afile/sub' lies under 'afile', which is a file"),
    (["compare", "sine", "--out", "afile"], "--out 'afile' is a file, not a folder"),
    (["run", "sine", "--device", "cuda:99"], "device 'cuda:99' is not available here"),
    (["run", "sine", "--device", "tpu"], "device 'tpu' is not a torch device"),
    (["run", "sine", "--device", "meta"], "device 'meta' holds no data"),
    (["compare", "sine", "--device", "meta"], "device 'meta' holds no data"),
    (["run", "sine", "--lr", "1e300"], "lr 1e+300 does not fit the network's torch.float32"),
    (["run", "sine", "--seed", "99999999999999999999"],
     "training.seed must be in [0, 2**64 - 1], got 99999999999999999999"),
    (["compare", "sine", "--seeds", "1,99999999999999999999"],
     "seeds[1] must be in [0, 2**64 - 1], got 99999999999999999999"),
    (["run", "sine", "--config", "bomb.yaml"], "YAML aliases (*a) are not allowed"),
    (["run", "sine", "--set", "training.iterations=[[[[1, 2]]], 2, 3, 4, 5, 6, 7, 8, 9]"],
     "got [[[[...]]], 2, 3, 4, 5, 6, ...]"),
    (["run", "sine", "--set", "training.seed=" + "9" * 5000], "config key 'training.seed' must"),
    (["run", "sine", "--resume", "--force"], "--resume continues runs and --force starts"),
    (["run", "--problem", "obs.py:make"], "observations file 'missing.npy' does not exist"),
    # argparse's own refusals: one line too, not the usage block
    (["run", "sine", "--iters", "1.5"], "argument --iters: invalid int value: '1.5'"),
    (["run", "sine", "--bogus"], "unrecognized arguments: --bogus"),
    (["diagnose"], "the following arguments are required: --problem"),
    (["nope"], "invalid choice: 'nope'"),
    # empty or repeated lists were read as "the default" (a full cpu-scale run) or ran a
    # method twice into one folder
    (["compare", "sine", "--seeds", ""], "--seeds must be comma-separated integers, got ''"),
    (["compare", "sine", "--seeds", ",,"], "--seeds must be comma-separated integers, got ',,'"),
    (["compare", "sine", "--methods", ""], "methods must name at least one method, got []"),
    (["compare", "sine", "--methods", "adam,adam"], "methods lists 'adam' twice"),
    (["compare", "sine", "--seeds", "1,1"], "seeds lists 1 twice"),
    (["compare", "sine", "--seeds", "0,0"], "seeds lists 0 twice"),  # a falsy repeat
    (["reproduce", "--only", ""], "--only must be comma-separated names, got ''"),
    (["reproduce", "--seeds", ""], "--seeds must be comma-separated integers, got ''"),
    (["reproduce", "--out", ""], "--out must name a folder, got ''"),
    (["reproduce", "--out", "afile"], "--out 'afile' is a file, not a folder"),
    (["demo", "--out", "afile"], "--out 'afile' is a file, not a folder"),
    (["demo", "sine", "--out", ""], "--out must name a folder, got ''"),
    # a figure experiment trains nothing: these were silently ignored
    (["run", "toy", "--method", "adam"],
     "experiment 'toy' makes a figure and trains no method, so method would be ignored"),
    (["run", "toy", "--seed", "5", "--lr", "0.1"], "so training.seed, optimizer.lr would be"),
    (["run", "heat-optim", "--iters", "3"], "so training.iterations would be ignored; only"),
    (["run", "toy", "--mlflow"], "so --mlflow would be ignored; only --scale and --out apply"),
]

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(  # 9**9 values from ~450 bytes
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n"
    for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)
OBSERVATIONS = """
from physgrad.problems import ObservationsProblem

def make():
    return ObservationsProblem(lambda x: x, "missing.npy")
"""


@pytest.mark.parametrize(("args", "message"), CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_cli_bad_input(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("itrs: 5\n")
    (tmp_path / "type.yaml").write_text("training:\n  iterations: ten\n")
    (tmp_path / "old.yaml").write_text("iters: 5\n")
    (tmp_path / "broken.toml").write_text("training = [\n")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "bomb.yaml").write_text(BOMB)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "obs.py").write_text(OBSERVATIONS)
    before = _snapshot(tmp_path)
    out = ["--out", str(tmp_path / "out")] if args[0] in ("run", "compare") else []
    if "--out" in args:
        out = []
    assert main([*args, *out, "--quiet"] if args[0] != "--threads" else args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and len(err) < 600, err
    after = _snapshot(tmp_path)
    after.pop("__pycache__", None)  # the imported obs.py
    assert after == before, "bad input left files behind"


def _snapshot(root: Path) -> dict[str, str | None]:
    """Every path under ``root`` with its content hash: any write shows up."""
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest() if p.is_file() else None
        for p in sorted(root.rglob("*"))
        if "__pycache__" not in p.parts
    }


def test_there_are_at_least_forty_cases():
    assert len(API_CASES) + len(CHECKPOINT_CASES) + len(CLI_CASES) >= 40


# ---- faults (issue 16): correct behaviour, or one line and an unchanged run folder --------

SMOKE = ["--scale", "smoke", "--iters", "3", "--quiet"]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("solver", [Newton(), GaussNewton()], ids=repr)
def test_half_precision_is_solved_in_float32_and_cast_back(solver, dtype):
    """eigh has no half kernels: the solver computes in float32 and answers in x0's dtype,
    as the float32 solve rounded to that dtype."""
    x0, y = torch.rand(4, 2) + 0.5, torch.rand(4, 2)
    answer = solver(x0.to(dtype), y.to(dtype), lambda x: x**2)
    reference = solver(x0.to(dtype).float(), y.to(dtype).float(), lambda x: x**2)
    assert answer.dtype == dtype
    assert torch.equal(answer, reference.to(dtype))


def test_nan_physics_stops_training_naming_quantity_and_iteration():
    problem = FunctionProblem(_nan, lambda n, g: (torch.rand(n, 2, generator=g) + 0.5,) * 2)
    trainer = Trainer(problem, nn.Linear(2, 2), Physical(ScipyLBFGSB(steps=2)),
                      lambda p: torch.optim.Adam(p), batch_size=4)
    with pytest.raises(TrainingDiverged, match=r"physics output contains 2 non-finite .* "
                       r"in ScipyLBFGSB\(steps=2, .*\) at iteration 0"):
        trainer.train(2)


def test_non_differentiable_or_nan_physics_is_one_line_on_the_cli(
    tmp_path, monkeypatch, capsys
):
    """The default PG of --problem (Gauss-Newton) used to train on a zero Jacobian: loss 0,
    exit 0, nothing learnt."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "det.py").write_text(
        "import torch\nfrom physgrad.problems import FunctionProblem\n"
        "def physics(x):\n    return (x ** 3).detach()\n"
        "def make():\n    return FunctionProblem(physics, lambda n, g: (torch.rand(n, 2, "
        "generator=g),) * 2)\n"
    )
    assert main(["run", "--problem", "det.py:make", "--method", "pg-gauss-newton", "--out", "o",
                 *SMOKE]) == 2
    err = capsys.readouterr().err.strip()
    assert "physics Jacobian dy/dx is exactly zero" in err and len(err.splitlines()) == 1
    assert not any((tmp_path / "o" / "pg-gauss-newton" / f).exists()
                   for f in ("checkpoint.pt", "metrics.csv", "summary.json"))
    # a NaN physics stops the run (exit 1) naming the quantity and the iteration
    (tmp_path / "nan.py").write_text(
        "import torch\nfrom physgrad.problems import FunctionProblem\n"
        "def physics(x):\n    return x * float('nan')\n"
        "def make():\n    return FunctionProblem(physics, lambda n, g: (torch.rand(n, 2, "
        "generator=g),) * 2)\n"
    )
    assert main(["run", "--problem", "nan.py:make", "--method", "pg-lbfgs", "--out", "n",
                 *SMOKE]) == 1
    err = capsys.readouterr().err.strip()
    assert "physics output contains 32 non-finite value(s) (NaN or inf) in LBFGS" in err
    # no checkpoint exists at iteration 0: the message no longer claims "last good checkpoint"
    assert err.endswith("at iteration 0 (checkpoints written before it are kept)")
    assert "\n" not in err


@pytest.mark.parametrize("command", ["run", "compare"])
def test_a_finished_run_is_not_overwritten_without_force(command, tmp_path, capsys):
    args = [command, "sine", "--out", str(tmp_path / "o"), *SMOKE]
    args += ["--method", "adam"] if command == "run" else ["--methods", "adam,pg-analytic"]
    assert main(args) == 0
    before = _snapshot(tmp_path)
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "already holds a run; pass --resume to continue it or --force" in err
    assert len(err.splitlines()) == 1 and _snapshot(tmp_path) == before
    assert main([*args, "--force", "--seed", "4"]) == 0  # starts over, with a new init.pt
    assert load_checkpoint(tmp_path / "o" / "init.pt")["seed"] == 4


@pytest.mark.parametrize(
    ("command", "change", "message"),
    [
        ("run", ["--seed", "3"], "training.seed = 3 differs from the run's 0"),
        ("run", ["--batch-size", "7"], "training.batch_size = 7 differs from the run's 100"),
        ("run", ["--lr", "0.5"], "optimizer.lr = 0.5 differs from the run's 0.002"),
        ("compare", ["--scale", "cpu"], "scale = 'cpu' differs from the run's 'smoke'"),
        ("compare", ["--lr", "0.5"], "is for lr=None, not 0.5"),
    ],
)
def test_a_refused_resume_changes_nothing(command, change, message, tmp_path, capsys):
    args = [command, "sine", "--out", str(tmp_path / "o"), *SMOKE]
    args += ["--method", "adam"] if command == "run" else ["--methods", "adam,pg-analytic"]
    assert main(args) == 0
    before = _snapshot(tmp_path)
    capsys.readouterr()
    assert main([*args, "--resume", *change]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert _snapshot(tmp_path) == before  # config.yaml included


def _replace_by_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _keep_bytes(n: int):
    return lambda path: path.write_bytes(path.read_bytes()[:n])


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        ("checkpoint.pt", _replace_by_folder, "checkpoint.pt' is a folder, not a file"),
        ("metrics.csv", _replace_by_folder, "cannot read '"),  # wrote config.yaml first
        ("metrics.csv", _keep_bytes(30), "holds no rows, but the checkpoint is at iteration 3"),
        ("metrics.csv", _keep_bytes(120), "is damaged: line 2 does not hold one number for"),
        ("heldout.csv", lambda p: p.write_text(p.read_text() + "1,x\n"), "heldout.csv' is dam"),
    ],
    ids=["checkpoint folder", "metrics folder", "metrics header only", "metrics cut mid-row",
         "heldout text"],
)
def test_a_damaged_run_folder_is_refused_on_resume_and_kept(
    name, damage, message, tmp_path, capsys
):
    args = ["run", "sine", "--method", "adam", "--out", str(tmp_path / "o"), *SMOKE]
    assert main(args) == 0
    damage(tmp_path / "o" / "adam" / name)
    before = _snapshot(tmp_path)
    capsys.readouterr()
    assert main([*args, "--iters", "5", "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("state", "message"),
    [("{\"sine\": ", "(Expecting value"), ("[1]", "(not a mapping of experiments)"),
     ({"sine": 3}, "(not a mapping of experiments)"), (None, "(Is a directory)")],
    ids=["cut", "list", "entry not a mapping", "folder"],
)
def test_a_damaged_reproduce_state_is_one_line(state, message, tmp_path, capsys):
    out = tmp_path / "rep"
    out.mkdir()
    if state is None:
        (out / "state.json").mkdir()
    else:
        (out / "state.json").write_text(state if isinstance(state, str) else json.dumps(state))
    before = _snapshot(tmp_path)
    args = ["reproduce", "--only", "sine", "--scale", "smoke", "--out", str(out), "--quiet"]
    assert main([*args, "--resume"]) == 2  # was an AttributeError traceback for "[1]"
    err = capsys.readouterr().err.strip()
    assert "state.json' is damaged " + message in err and len(err.splitlines()) == 1, err
    assert _snapshot(tmp_path) == before


RAISING = """
import torch
from physgrad.problems import FunctionProblem

def physics(x):
    return x @ torch.ones(5, 5)

def sample(batch_size, gen):
    x = torch.rand(batch_size, 2, generator=gen)
    return x, x

def make():
    return FunctionProblem(physics, sample)

def broken():
    return 1 / 0

def wide():
    return torch.nn.Linear(2, 5)

def huge(batch_size, gen):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")

def make_huge():
    return FunctionProblem(physics, huge)
"""


@pytest.mark.parametrize(
    ("spec", "method", "message"),
    [("mine.py:make", "adam", "RuntimeError in your code at {}:6 (physics): mat1 and mat2"),
     ("mine.py:make", "pg-gauss-newton", "RuntimeError in your code at {}:6 (physics)"),
     ("mine.py:broken", "adam", "ZeroDivisionError in your code at {}:16 (broken): division"),
     ("mine.py:make_huge", "adam", "out of memory: CUDA out of memory. Tried to allocate 80.00 "
      "GiB; try a smaller --batch-size or problem size")],
)
def test_an_exception_in_the_users_code_is_one_line_naming_where(
    spec, method, message, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text(RAISING)
    args = ["run", "--problem", spec, "--method", method, "--out", "o", *SMOKE]
    assert main(args) == 2  # was a traceback
    err = capsys.readouterr().err.strip()
    assert message.format(tmp_path / "mine.py") in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("method", ["adam", "pg-gauss-newton"])
def test_a_network_of_the_wrong_output_size_is_named_not_blamed_on_the_physics(
    method, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text(RAISING.replace("x @ torch.ones(5, 5)", "x"))
    args = ["run", "--problem", "mine.py:make", "--network", "mine.py:wide", "--method", method,
            "--out", "o", *SMOKE]
    assert main(args) == 2  # was the physics' own error (or none for a forgiving physics)
    # (the held-out problems are scored first, 64 at a time)
    err = capsys.readouterr().err.strip()
    assert "network output shape (64, 5) does not match the problem's x_true shape (64, 2)" in err
    assert len(err.splitlines()) == 1, err


def test_network_without_problem_is_refused_not_ignored(tmp_path, capsys):
    assert main(["run", "sine", "--network", "mine.py:wide", "--out", str(tmp_path / "o"),
                 *SMOKE]) == 2
    err = capsys.readouterr().err.strip()
    assert "--network 'mine.py:wide' applies only to your own --problem" in err
    assert not (tmp_path / "o").exists()


def test_run_refuses_a_comparisons_config_instead_of_training_another_method(tmp_path, capsys):
    args = ["--methods", "adam,pg-analytic", "--seeds", "1,2", "--out", str(tmp_path / "c")]
    assert main(["compare", "sine", *args, *SMOKE]) == 0
    record = str(tmp_path / "c" / "config.yaml")
    run = ["run", "--config", record, "--out", str(tmp_path / "r"), *SMOKE]
    assert main(run) == 2  # trained 'supervised' (in neither list) with seed 0
    assert "seeds [1, 2] is for `physgrad compare`" in capsys.readouterr().err
    assert main([*run, "--set", "seeds=null"]) == 2
    assert "methods ['adam', 'pg-analytic'] is for `physgrad compare`" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert main([*run, "--set", "seeds=null", "--method", "adam"]) == 0


def test_an_error_inside_physgrad_keeps_its_traceback(monkeypatch):
    import physgrad.cli

    # a physgrad function called wrongly stands in for a bug: its AttributeError is raised
    # in physgrad's own code, so it propagates instead of being blamed on "your code"
    monkeypatch.setitem(physgrad.cli.COMMANDS, "list", physgrad.cli._fmt_row)
    with pytest.raises(AttributeError, match="items"):
        main(["list"])


def test_an_unwritable_file_is_not_blamed_on_a_full_disk(tmp_path, capsys):
    args = ["run", "sine", "--method", "adam", "--out", str(tmp_path / "o"), *SMOKE]
    assert main(args) == 0
    _replace_by_folder(tmp_path / "o" / "adam" / "config.yaml")
    capsys.readouterr()
    assert main([*args, "--iters", "5", "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert "(Is a directory)" in err and "fix that and rerun with --resume" in err, err
    assert "make room" not in err and len(err.splitlines()) == 1


def test_resume_restores_every_recorded_value_and_the_config_repeats_the_run(tmp_path, capsys):
    out = tmp_path / "o"
    args = ["run", "sine", "--method", "adam", "--out", str(out), "--scale", "smoke", "--quiet"]
    assert main([*args, "--iters", "3", "--lr", "0.01", "--seed", "5"]) == 0
    record = out / "adam" / "config.yaml"  # as if trained on a GPU: resumes on this machine
    record.write_text(record.read_text().replace("device: cpu", "device: cuda:99"))
    assert main([*args, "--iters", "6", "--resume"]) == 0  # no --lr, no --seed: restored
    stored = yaml.safe_load((out / "adam" / "config.yaml").read_text())
    assert stored["optimizer"]["lr"] == 0.01 and stored["training"]["seed"] == 5
    assert stored["training"]["iterations"] == 6
    summary = yaml.safe_load((out / "adam" / "summary.json").read_text())
    assert summary["lr"] == 0.01 and summary["iterations"] == 6
    again = tmp_path / "again"
    assert main(["run", "--config", str(out / "adam" / "config.yaml"), "--out", str(again),
                 "--quiet"]) == 0
    losses = [[r.split(",")[1] for r in (d / "adam" / "metrics.csv").read_text().splitlines()]
              for d in (out, again)]
    assert losses[0] == losses[1]


def test_compare_records_each_runs_resolved_config(tmp_path, capsys):
    """Issue 17: compare wrote one config.yaml with iterations, batch_size and lr null."""
    out = tmp_path / "o"
    assert main(["compare", "sine", "--methods", "adam,pg-analytic", "--out", str(out),
                 *SMOKE]) == 0
    top = yaml.safe_load((out / "config.yaml").read_text())
    assert top["training"]["iterations"] == 3 and top["training"]["batch_size"] == 100
    exp = get_experiment("sine")
    for method in ("adam", "pg-analytic"):
        stored = yaml.safe_load((out / method / "config.yaml").read_text())
        assert stored["method"] == method and stored["training"]["iterations"] == 3
        lr = exp.methods[method].optimizer([nn.Parameter(torch.zeros(1))]).param_groups[0]["lr"]
        assert stored["optimizer"]["lr"] == lr and stored["device"] == "cpu"
    # one method's record repeats that method's run exactly
    again = tmp_path / "again"
    assert main(["run", "--config", str(out / "adam" / "config.yaml"), "--out", str(again),
                 "--quiet"]) == 0
    losses = [[r.split(",")[1] for r in (d / "adam" / "metrics.csv").read_text().splitlines()]
              for d in (out, again)]
    assert losses[0] == losses[1]


def test_a_second_run_on_a_locked_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "o"
    with _locked(out / "adam"):  # another physgrad is training adam in this folder
        before = _snapshot(tmp_path)
        for command in (["run", "sine", "--method", "adam"],
                        ["compare", "sine", "--methods", "adam,pg-analytic"]):
            assert main([*command, "--out", str(out), *SMOKE]) == 2
            err = capsys.readouterr().err.strip()
            assert f"{str(out / 'adam')!r} is in use by another physgrad run" in err
            assert len(err.splitlines()) == 1 and _snapshot(tmp_path) == before
        # another method of the same folder may train side by side (docs/long-runs.md)
        assert main(["run", "sine", "--method", "pg-analytic", "--out", str(out), *SMOKE]) == 0
    assert main(["run", "sine", "--method", "adam", "--out", str(out), *SMOKE]) == 0


def _in_child(func) -> int:
    """Run ``func() -> exit code`` in a forked copy of this process (no interpreter start-up)
    and return its exit code (``-signal`` if a signal killed it)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 70
        try:
            code = func()
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_a_killed_writer_leaves_one_temp_that_the_next_write_replaces(tmp_path):
    target = tmp_path / "checkpoint.pt"
    atomic_write(target, lambda tmp: Path(tmp).write_text("good"))

    def killed_mid_write(tmp):
        Path(tmp).write_bytes(b"x" * 100000)
        os.kill(os.getpid(), signal.SIGKILL)

    for _ in range(2):  # killed twice: still one temp, not two
        assert _in_child(lambda: atomic_write(target, killed_mid_write)) == -signal.SIGKILL
    assert sorted(p.name for p in tmp_path.iterdir()) == [".checkpoint.pt.tmp", "checkpoint.pt"]
    assert target.read_text() == "good"
    atomic_write(target, lambda tmp: Path(tmp).write_text("next"))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_a_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "results.md"
    atomic_write(target, lambda tmp: Path(tmp).write_text("old"))

    def fail(tmp):
        Path(tmp).write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(WriteError, match=r"cannot write .*results.md' \(No space left on dev"):
        atomic_write(target, fail)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.md"]


def test_outputs_respect_the_umask(tmp_path, capsys):
    old = os.umask(0o022)
    try:
        assert main(["run", "sine", "--out", str(tmp_path / "o"), *SMOKE]) == 0
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "o").rglob("*") if p.is_file()}
    assert modes and set(modes.values()) == {0o644}, modes


def test_a_full_disk_keeps_the_last_checkpoint_and_says_so(tmp_path):
    """A file-size limit (as a full disk) hit while training: one line naming the file and the
    checkpoint that survived; --resume then finishes the run."""
    out, log = tmp_path / "o", tmp_path / "stderr.txt"
    args = ["run", "sine", "--method", "adam", "--scale", "smoke", "--iters", "300",
            "--checkpoint-every", "10", "--out", str(out), "--quiet"]

    def limited_run():
        resource.setrlimit(resource.RLIMIT_FSIZE, (30000, 30000))  # checkpoint.pt: ~21 kB
        sys.stderr = open(log, "w")  # noqa: SIM115 - the child exits right after
        code = main(args)
        sys.stderr.flush()
        return code

    assert _in_child(limited_run) == 2
    err = log.read_text().strip()
    assert len(err.splitlines()) == 1 and "metrics.csv' (File too large)" in err, err
    iteration = load_checkpoint(out / "adam" / "checkpoint.pt")["iteration"]
    assert f"the last good checkpoint '{out / 'adam' / 'checkpoint.pt'}' (iteration " \
           f"{iteration}) is kept" in err and iteration > 0
    assert not list(out.rglob("*.tmp"))
    assert main([*args, "--resume"]) == 0
    assert len((out / "adam" / "metrics.csv").read_text().splitlines()) == 301


def test_an_unreachable_mlflow_server_is_a_quick_one_line_error(tmp_path, monkeypatch, capsys):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    with pytest.raises(TrackerError, match=f"tracking server http://127.0.0.1:{port}"):
        check_mlflow_server()
    if importlib.util.find_spec("mlflow") is None:  # (not importorskip: importing takes 3 s)
        pytest.skip("mlflow is not installed")
    start = time.perf_counter()
    assert main(["run", "sine", "--mlflow", "--out", str(tmp_path / "o"), *SMOKE]) == 2
    assert time.perf_counter() - start < 30
    err = capsys.readouterr().err.strip()
    assert "is unreachable" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_is_a_one_line_error(tmp_path, capsys):
    tmp_path.chmod(0o555)
    try:
        assert main(["run", "sine", "--out", str(tmp_path / "o"), *SMOKE]) == 2
    finally:
        tmp_path.chmod(0o755)
    assert "no permission to write in" in capsys.readouterr().err


def test_a_read_only_out_is_refused_before_writing(tmp_path, monkeypatch, capsys):
    """The same check where the tests run as root (who may write anywhere): os.access says no."""
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert main(["run", "sine", "--out", str(tmp_path / "o"), *SMOKE]) == 2
    err = capsys.readouterr().err.strip()
    assert f"no permission to write in {str(tmp_path)!r}" in err and not (tmp_path / "o").exists()


def test_a_yaml_alias_bomb_is_refused_quickly_with_a_short_message(tmp_path):
    (tmp_path / "bomb.yaml").write_text(BOMB)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"YAML aliases \(\*a\) are not allowed") as info:
        load_config_file(tmp_path / "bomb.yaml")
    assert time.perf_counter() - start < 5 and len(str(info.value)) < 300


def test_phiflow_example_without_phiflow_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "phi", None)  # import phi fails as if not installed
    monkeypatch.setitem(sys.modules, "phi.torch", None)
    monkeypatch.setitem(sys.modules, "phi.torch.flow", None)
    example = Path(__file__).resolve().parents[1] / "examples" / "phiflow_smoke.py"
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(example), run_name="__main__")
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "phiflow_smoke.py needs PhiFlow: pip install 'physgrad[phiflow]'"


def test_a_problem_written_for_the_old_physics_signature_is_told_how_to_migrate():
    from physgrad.problems import Problem

    with pytest.raises(TypeError, match=r"OldStyle.physics\(x\) maps x to y.*forward\(self, x\)"):

        class OldStyle(Problem):
            def physics(self, x):
                return x**3

    class NewStyle(Problem):  # the current signature is accepted
        def forward(self, x):
            return x**3

        def physics(self, batch):
            return self.forward
