"""FunctionProblem / ObservationsProblem / load_problem, their errors, and the three examples."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import load_script

from physgrad.experiments import compare_methods
from physgrad.problems.base import Batch, Problem
from physgrad.problems.custom import FunctionProblem, ObservationsProblem, load_problem
from physgrad.report.figures import render
from physgrad.solvers import Analytic, GaussNewton
from physgrad.training import Physical, Supervised, Trainer, Unsupervised

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def cube(x):
    return x**3


def cube_sampler(batch_size, gen):
    x = torch.rand(batch_size, 2, generator=gen) + 0.5
    return x, cube(x)


def make_problem():
    """Factory used by the load_problem tests."""
    return FunctionProblem(cube, cube_sampler, name="cube")


NOT_A_PROBLEM = 3


def not_a_problem():
    return "nope"


def _load_example(name):
    return load_script(EXAMPLES / f"{name}.py", f"example_{name}")


# -- FunctionProblem ------------------------------------------------------------------------
def test_function_problem_samples_casts_and_trains():
    problem = FunctionProblem(cube, cube_sampler, dtype=torch.float64,
                              solvers={"cbrt": Analytic(lambda x0, y: y.abs() ** (1 / 3))})
    batch = problem.sample(8, torch.Generator().manual_seed(0))
    assert batch.y_target.dtype == torch.float64 and batch.x_true.shape == (8, 2)
    assert set(problem.metrics(batch.x_true, batch)) == {
        "objective", "y_l1", "y_l2", "x_l1", "x_err_0", "x_err_1"}

    def train(method, seed, iterations):
        torch.manual_seed(seed)
        trainer = Trainer(problem, torch.nn.Linear(2, 2), method,
                          lambda p: torch.optim.Adam(p, lr=1e-2), batch_size=16, seed=seed,
                          progress=False)
        return trainer, trainer.train(iterations)

    # deterministic: the exact inverse's target is x*, so PG takes the supervised steps
    pg, _ = train(Physical("cbrt"), 0, 5)
    supervised, _ = train(Supervised(), 0, 5)
    for a, b in zip(pg.network.parameters(), supervised.network.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    # and it trains: median over seeds (one seed's last/first x_l1 ranges over 0.21-0.47)
    ratios = []
    for seed in range(5):
        history = train(Physical("cbrt"), seed, 60)[1]
        ratios.append(np.mean(history["x_l1"][-10:]) / np.mean(history["x_l1"][:10]))
    assert np.median(ratios) < 0.6, ratios


def test_function_problem_without_ground_truth_and_custom_objective():
    def weighted(y, y_target):
        return (3.0 * (y - y_target) ** 2).sum(dim=1)

    problem = FunctionProblem(cube, lambda b, g: (None, cube(torch.rand(b, 2, generator=g))),
                              objective=weighted)
    batch = problem.sample(4, torch.Generator().manual_seed(0))
    assert batch.x_true is None
    metrics = problem.metrics(torch.zeros(4, 2), batch)
    assert "x_l1" not in metrics
    assert torch.allclose(metrics["objective"], weighted(torch.zeros(4, 2), batch.y_target))
    with pytest.raises(ValueError, match="x_true labels"):
        Supervised().loss(torch.zeros(4, 2), batch, problem)


@pytest.mark.parametrize(
    ("sampler", "error", "match"),
    [
        (lambda b, g: torch.zeros(b, 2), TypeError, "pair"),
        (lambda b, g: (None, [1.0] * b), TypeError, "y_target must be a torch.Tensor"),
        (lambda b, g: (None, torch.zeros(b + 1, 2)), ValueError, "expected 4 samples"),
        (lambda b, g: (torch.zeros(1), torch.zeros(b, 2)), ValueError, "x_true has shape"),
        (lambda b, g: (None, torch.full((b, 2), float("nan"))), ValueError, "non-finite"),
    ],
)
def test_function_problem_rejects_bad_samples(sampler, error, match):
    problem = FunctionProblem(cube, sampler)
    with pytest.raises(error, match=match):
        problem.sample(4, torch.Generator())


def test_function_problem_rejects_bad_arguments():
    with pytest.raises(TypeError, match="physics must be callable"):
        FunctionProblem(3, cube_sampler)
    with pytest.raises(TypeError, match="sampler must be callable"):
        FunctionProblem(cube, None)
    with pytest.raises(ValueError, match="dtype"):
        FunctionProblem(cube, cube_sampler, dtype=torch.float16)
    with pytest.raises(TypeError, match="solvers"):
        FunctionProblem(cube, cube_sampler, solvers=[GaussNewton()])


# -- ObservationsProblem --------------------------------------------------------------------
def test_observations_from_tensor_draw_seeded_batches_without_ground_truth():
    y = torch.arange(20.0).reshape(10, 2)
    problem = ObservationsProblem(cube, y)
    a = problem.sample(6, torch.Generator().manual_seed(3))
    b = problem.sample(6, torch.Generator().manual_seed(3))
    assert torch.equal(a.y_target, b.y_target) and a.x_true is None and len(problem) == 10
    assert all(any(torch.equal(row, r) for r in y) for row in a.y_target)
    assert set(problem.metrics(torch.zeros(6, 2), a)) == {"objective", "y_l1", "y_l2"}


@pytest.mark.parametrize("suffix", [".pt", ".npy"])
def test_observations_from_file_keep_float64(tmp_path, suffix):
    y = torch.rand(12, 3, dtype=torch.float64)
    path = tmp_path / f"obs{suffix}"
    if suffix == ".pt":
        torch.save({"y": y, "x_true": y ** (1 / 3)}, path)
    else:
        np.save(path, y.numpy())
    problem = ObservationsProblem(cube, str(path))
    assert problem.dtype == torch.float64 and torch.equal(problem.observations, y)
    batch = problem.sample(5, torch.Generator().manual_seed(0))
    assert (batch.x_true is not None) == (suffix == ".pt")
    assert ObservationsProblem(cube, y.float()).dtype == torch.float32


def test_observations_train_with_the_trainer():
    """Median over 5 seeds (observations, initialisation, batches): one seed's last/first y_l2
    ranges over 0.03-3.2 (a linear network on x = y^(1/3)), the median is 0.16."""
    ratios = []
    for seed in range(5):
        gen = torch.Generator().manual_seed(seed)
        y = cube(torch.rand(64, 2, generator=gen) + 0.5)
        problem = ObservationsProblem(cube, y, x_true=y ** (1 / 3))
        torch.manual_seed(seed)
        trainer = Trainer(problem, torch.nn.Linear(2, 2), Physical(GaussNewton()),
                          lambda p: torch.optim.Adam(p, lr=1e-2), batch_size=16, seed=seed,
                          progress=False)
        history = trainer.train(60)
        ratios.append(np.mean(history["y_l2"][-10:]) / np.mean(history["y_l2"][:10]))
    assert np.median(ratios) < 0.5, ratios


def test_observations_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ObservationsProblem(cube, tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="cannot read observations file"):
        ObservationsProblem(cube, garbage)
    listed = tmp_path / "list.pt"
    torch.save([1.0, 2.0], listed)
    with pytest.raises(TypeError, match="must hold a tensor"):
        ObservationsProblem(cube, listed)
    keyed = tmp_path / "keyed.pt"
    torch.save({"obs": torch.zeros(3, 2)}, keyed)
    with pytest.raises(ValueError, match="without a 'y' entry"):
        ObservationsProblem(cube, keyed)
    text = tmp_path / "obs.csv"
    text.write_text("1,2\n")
    with pytest.raises(ValueError, match=r"\.pt, \.pth or \.npy"):
        ObservationsProblem(cube, text)
    with pytest.raises(ValueError, match="reshape to"):
        ObservationsProblem(cube, torch.zeros(5))
    with pytest.raises(ValueError, match="empty"):
        ObservationsProblem(cube, torch.zeros(0, 3))
    with pytest.raises(ValueError, match="non-finite"):
        ObservationsProblem(cube, torch.tensor([[1.0], [float("nan")]]))
    with pytest.raises(TypeError, match="floating-point"):
        ObservationsProblem(cube, torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="x_true has 2 samples"):
        ObservationsProblem(cube, torch.zeros(3, 2), x_true=torch.zeros(2, 2))


# -- load_problem ---------------------------------------------------------------------------
def test_load_problem_from_module_and_file():
    sys.modules.setdefault("test_custom_problems", sys.modules[__name__])
    problem = load_problem(f"{__name__}:make_problem")
    assert isinstance(problem, Problem) and problem.name == "cube"
    from_file = load_problem(f"{__file__}:make_problem")
    assert isinstance(from_file.sample(2, torch.Generator()), Batch)


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("no_colon", ValueError, "must look like"),
        ("a:b:c", ValueError, "must look like"),
        ("physgrad_no_such_module_xyz:f", ValueError, "cannot import module"),
        ("/no/such/file.py:f", ValueError, "does not exist"),
        (f"{__name__}:missing", ValueError, "has no attribute 'missing'"),
        (f"{__name__}:NOT_A_PROBLEM", TypeError, "not a callable"),
        (f"{__name__}:not_a_problem", TypeError, "expected a physgrad Problem"),
        (3, TypeError, "must be a string"),
    ],
)
def test_load_problem_errors(spec, error, match):
    with pytest.raises(error, match=match):
        load_problem(spec)


# -- compare_methods and the examples -------------------------------------------------------
def test_compare_methods_writes_table_and_curves(tmp_path):
    problem = ObservationsProblem(cube, torch.rand(32, 2) + 0.5)
    def adam(p):
        return torch.optim.Adam(p, lr=1e-2)
    result = compare_methods(
        problem, lambda: torch.nn.Linear(2, 2),
        {"Adam": (Unsupervised, adam), "PG": (lambda: Physical(GaussNewton()), adam)},
        tmp_path, iterations=3, batch_size=4)
    assert render(result) == [tmp_path / "curves.png"]  # the runner returns it as data
    assert (tmp_path / "curves.png").is_file() and (tmp_path / "results.md").is_file()
    assert "final y_l2" in result.markdown_table()  # no ground truth: x_l1 dropped


@pytest.mark.parametrize("name", ["pendulum", "burgers", "observations_on_disk"])
def test_example_smoke(tmp_path, name, capsys):
    result = _load_example(name).main(smoke=True, out=str(tmp_path))
    assert (tmp_path / "curves.png").is_file()
    assert len(result.histories) == 2 and all(len(h) == 5 for h in result.histories.values())
    assert "| method |" in capsys.readouterr().out


def test_user_x_error_and_per_component_metrics():
    """A wrapped-angle error replaces x - x_true in x_l1, and each component gets x_err_<name>."""
    import math

    from physgrad.problems import Batch

    def wrapped(x, x_true):
        return torch.remainder(x - x_true + math.pi, 2 * math.pi) - math.pi

    physics = lambda x: torch.stack([torch.cos(x[:, 0]), torch.sin(x[:, 0]), x[:, 1]], 1)  # noqa: E731
    problem = FunctionProblem(physics, lambda b, g: (None, torch.zeros(b, 3)), x_error=wrapped,
                              x_names=("angle", "length"))
    x_true = torch.tensor([[3.1, 1.0], [0.0, 2.0]])
    x = torch.tensor([[-3.1, 1.5], [0.2, 2.0]])  # 3.1 and -3.1 are 0.083 apart on the circle
    m = problem.metrics(x, Batch(physics(x_true), x_true))
    torch.testing.assert_close(m["x_err_angle"], torch.tensor([2 * math.pi - 6.2, 0.2]))
    torch.testing.assert_close(m["x_err_length"], torch.tensor([0.5, 0.0]))
    torch.testing.assert_close(m["x_l1"], m["x_err_angle"] + m["x_err_length"])
    plain = FunctionProblem(physics, lambda b, g: (None, torch.zeros(b, 3)))
    assert set(plain.metrics(x, Batch(physics(x_true), x_true))) >= {"x_err_0", "x_err_1"}
    with pytest.raises(ValueError, match="x_names has 3 names but x has 2 components"):
        FunctionProblem(physics, lambda b, g: (None, None), x_names=("a", "b", "c")).metrics(
            x, Batch(physics(x_true), x_true))
    with pytest.raises(TypeError, match="x_error must be callable"):
        FunctionProblem(physics, lambda b, g: (None, None), x_error=3)


def test_compare_methods_with_hig_reports_heldout_cpu_time_and_no_self_reach(tmp_path):
    """HIG needs no bind (the Trainer's setup hook) and gets its SGD; the table has held-out
    and CPU-time columns and Adam's own 'iters to adam's final' is '—'."""
    from physgrad.training import HalfInverse

    def sampler(batch_size, gen):
        x = torch.rand(batch_size, 2, generator=gen) + 0.5
        return x, cube(x)

    problem = FunctionProblem(cube, sampler, name="cube")
    result = compare_methods(
        problem, lambda: torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(),
                                             torch.nn.Linear(8, 2)),
        {"Adam": Unsupervised, "HIG": HalfInverse}, tmp_path, iterations=4, batch_size=4)
    rows = {r["method"]: r for r in result.summary_rows()}
    assert rows["adam"]["iters to adam's final"] == "—"
    assert rows["hig"]["cpu ms"] > 0 and "held-out x_l1" in rows["hig"]
    assert "`cpu ms`" in result.legend() and "held-out" in (tmp_path / "results.md").read_text()


def test_cli_methods_use_the_python_defaults_and_the_docs_list_them(tmp_path, monkeypatch):
    """One source of truth: --problem's solvers are the classes' defaults, every method is
    trained by default (hig when small), and docs/own-physics.md states each setting."""
    from physgrad.experiments.custom import GENERIC_METHODS, custom_experiment
    from physgrad.solvers import LBFGS, Newton

    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.py").write_text(
        "import torch\nfrom physgrad.problems import FunctionProblem\n"
        "def make():\n    return FunctionProblem(lambda x: x**3, lambda n, g: "
        "(torch.rand(n, 2, generator=g), torch.rand(n, 2, generator=g) ** 3))\n")
    exp = custom_experiment("p.py:make")
    assert exp.default_methods == ("adam", "pg-newton", "pg-gauss-newton", "pg-lbfgs", "hig",
                                   "supervised")
    docs = (Path(__file__).parents[1] / "docs" / "own-physics.md").read_text()
    for name, solver in [("pg-newton", Newton()), ("pg-gauss-newton", GaussNewton()),
                         ("pg-lbfgs", LBFGS())]:
        built = GENERIC_METHODS[name].method().solver
        assert repr(built) == repr(solver)
        assert f"| `{name}` |" in docs and repr(solver) in docs, name
    assert "| `hig` |" in docs and "| `smoke` | 20 | 16 |" in docs
