"""Typed run configs: files (YAML/TOML/JSON), ``--set`` overrides, validation, repetition."""

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from physgrad.cli import main
from physgrad.config import (
    RunConfig,
    apply_overrides,
    configurable_parameters,
    configure_experiment,
    load_config_file,
)
from physgrad.experiments.base import get_experiment
from physgrad.problems.heat import HeatProblem

SMOKE = ["--scale", "smoke", "--quiet"]


def test_every_training_experiment_exposes_typed_problem_or_network_parameters():
    for name in ("sine", "poisson", "heat", "wavepacket", "exp", "fluid"):
        exp = get_experiment(name)
        params = {**configurable_parameters(exp.problem), **configurable_parameters(exp.network)}
        assert params, name
    heat = configurable_parameters(get_experiment("heat").problem)
    assert heat["amount"][1] == 8.0 and heat["shape"][1] == (64, 64)
    assert "dtype" not in heat  # not a plain type: fixed by the experiment


def test_overrides_reach_the_problem_and_the_network():
    config = RunConfig.from_dict({"problem": {"amount": "4"}, "network": {"filters": 8}})
    exp, resolved = configure_experiment(get_experiment("heat"), config)
    problem, net = exp.problem(), exp.network()
    assert isinstance(problem, HeatProblem) and problem.amount == 4.0
    default_params = sum(p.numel() for p in get_experiment("heat").network().parameters())
    assert sum(p.numel() for p in net.parameters()) < default_params
    assert resolved["problem"]["amount"] == 4.0 and resolved["problem"]["max_count"] == 10
    assert exp.overrides == {"problem": {"amount": 4.0}, "network": {"filters": 8}}


def test_values_equal_to_the_defaults_are_not_overrides():
    config = RunConfig.from_dict({"problem": {"amount": 8, "shape": [64, 64]}})
    exp, _ = configure_experiment(get_experiment("heat"), config)
    assert exp is get_experiment("heat") and not exp.overrides


def test_set_parses_yaml_scalars_and_creates_sections():
    data = apply_overrides(
        {"training": {"seed": 3}},
        ["training.iterations=10", "optimizer.lr=1e-4", "problem.shape=[32, 16]", "out=a: b"],
    )
    config = RunConfig.from_dict(data)
    assert config.training.iterations == 10 and config.training.seed == 3
    assert config.optimizer.lr == pytest.approx(1e-4)  # YAML reads 1e-4 as a string
    assert data["problem"]["shape"] == [32, 16] and config.out == "a: b"


@pytest.mark.parametrize("suffix", [".yaml", ".toml", ".json"])
def test_config_files_in_every_format(suffix, tmp_path):
    text = {
        ".yaml": "experiment: heat\ntraining:\n  iterations: 7\nproblem:\n  amount: 2.5\n",
        ".toml": 'experiment = "heat"\n[training]\niterations = 7\n[problem]\namount = 2.5\n',
        ".json": json.dumps({"experiment": "heat", "training": {"iterations": 7},
                             "problem": {"amount": 2.5}}),
    }[suffix]
    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    config = RunConfig.from_dict(load_config_file(path))
    assert config.experiment == "heat" and config.training.iterations == 7
    assert config.problem == {"amount": 2.5}


@settings(max_examples=40, deadline=None)
@given(
    iterations=st.none() | st.integers(1, 10**6),
    seed=st.integers(0, 2**31),
    lr=st.none() | st.floats(1e-8, 10.0),
    scale=st.sampled_from(["smoke", "cpu", "paper"]),
    methods=st.none() | st.lists(st.sampled_from(["adam", "pg-inverse", "sgd"]), min_size=1,
                                     unique=True),
)
def test_to_dict_and_back_is_the_identity(iterations, seed, lr, scale, methods):
    config = RunConfig(scale=scale, methods=methods)
    config.training.iterations, config.training.seed, config.optimizer.lr = iterations, seed, lr
    config.problem = {"shape": [8, 8], "amount": 1.5}
    text = yaml.safe_dump(config.to_dict())
    assert RunConfig.from_dict(yaml.safe_load(text)) == config


def test_cli_set_changes_the_run_and_the_stored_config_repeats_it(tmp_path, capsys):
    out = tmp_path / "a"
    args = ["run", "heat", "--method", "adam", "--iters", "2", "--batch-size", "2",
            "--set", "problem.shape=[16, 16]", "--set", "network.levels=2", "--out", str(out)]
    assert main([*args, *SMOKE]) == 0
    stored = yaml.safe_load((out / "adam" / "config.yaml").read_text())
    assert stored["problem"]["shape"] == [16, 16] and stored["network"]["levels"] == 2
    assert stored["training"] == {"iterations": 2, "batch_size": 2, "seed": 0,
                                  "checkpoint_every": 500, "compile": False}
    summary = json.loads((out / "adam" / "summary.json").read_text())
    assert summary["overrides"] == {"problem": {"shape": [16, 16]}, "network": {"levels": 2}}
    # the stored file repeats the run elsewhere, with identical metrics
    again = tmp_path / "b"
    assert main(["run", "--config", str(out / "adam" / "config.yaml"), "--out", str(again),
                 *SMOKE]) == 0
    drop_time = [lambda path: [r.split(",")[:2] for r in Path(path).read_text().splitlines()]][0]
    assert drop_time(out / "adam" / "metrics.csv") == drop_time(again / "adam" / "metrics.csv")


def test_resuming_with_other_problem_parameters_is_refused(tmp_path, capsys):
    base = ["run", "heat", "--method", "adam", "--batch-size", "2", "--out", str(tmp_path),
            "--set", "problem.shape=[16, 16]", "--set", "network.levels=2", *SMOKE]
    assert main([*base, "--iters", "2"]) == 0
    capsys.readouterr()
    code = main([*base, "--iters", "4", "--resume", "--set", "problem.amount=3"])
    assert code == 2
    assert "problem.amount = 3.0 differs from the run's 8.0" in capsys.readouterr().err
    # the same parameters resume fine, from the stored config too
    assert main(["run", "--config", str(tmp_path / "adam" / "config.yaml"), "--iters", "4",
                 "--resume", *SMOKE]) == 0
    assert len((tmp_path / "adam" / "metrics.csv").read_text().splitlines()) == 5


def test_compare_stores_the_resolved_config(tmp_path, capsys):
    assert main(["compare", "sine", "--methods", "adam,pg-analytic", "--iters", "3",
                 "--set", "network.hidden=[4, 4]", "--out", str(tmp_path), *SMOKE]) == 0
    stored = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert stored["methods"] == ["adam", "pg-analytic"]
    assert stored["network"] == {"hidden": [4, 4], "activation": "relu"}


def test_mlflow_tracker_logs_params_and_every_metric_and_resumes_the_same_run(tmp_path):
    mlflow = pytest.importorskip("mlflow")
    args = ["run", "sine", "--method", "adam", "--iters", "5", "--mlflow", "--out", str(tmp_path)]
    assert main([*args, *SMOKE]) == 0
    run_id = (tmp_path / "adam" / "mlflow_run_id").read_text().strip()
    client = mlflow.tracking.MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    run = client.get_run(run_id)
    assert run.data.params["experiment"] == "sine" and run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == list(range(5))
    args[5] = "8"
    assert main([*args, "--resume", *SMOKE]) == 0
    assert (tmp_path / "adam" / "mlflow_run_id").read_text().strip() == run_id
    assert len(client.get_metric_history(run_id, "loss")) == 8


def test_a_missing_tracker_package_is_a_one_line_error_before_anything_is_written(
    tmp_path, monkeypatch, capsys
):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlflow" else real(name, *a))
    out = tmp_path / "o"
    assert main(["run", "sine", "--mlflow", "--out", str(out), *SMOKE]) == 2
    assert "pip install mlflow-skinny" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("experiment", "overrides", "figure"),
    [
        ("heat", ["network.levels=2", "network.filters=8", "problem.shape=[16, 16]"],
         "reconstructions.png"),
        ("wavepacket", ["network.channels=4", "problem.noise_std=0.3"], "fig8_curves.png"),
        ("fluid", ["network.levels=3", "network.filters=4"], "fig13_examples.png"),
    ],
)
def test_figure_hooks_use_the_configured_problem_and_network(
    experiment, overrides, figure, tmp_path, capsys
):
    sets = [arg for o in overrides for arg in ("--set", o)]
    args = ["compare", experiment, "--iters", "2", "--batch-size", "2", *sets,
            "--out", str(tmp_path), *SMOKE]
    assert main(args) == 0, capsys.readouterr().err
    assert (tmp_path / figure).stat().st_size > 10_000
    if experiment == "wavepacket":
        baseline = json.loads((tmp_path / "lbfgs_baseline.json").read_text())
        assert baseline["noise_std"] == 0.3
