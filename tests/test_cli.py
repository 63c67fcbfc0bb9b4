"""The physgrad command line: list, run, compare, demo, resume, and one-line errors."""

import csv
import json
import re
from pathlib import Path

import pytest

from physgrad.cli import SEED_EVIDENCE, main
from physgrad.report.seed_stats import heldout_ratio


def test_list_shows_the_experiments(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "sine" in out and "toy" in out and "pg-analytic" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert "physgrad 0.1.0" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["list", "run", "compare", "demo"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: physgrad" in capsys.readouterr().out


def test_run_and_resume(tmp_path, capsys):
    args = ["run", "sine", "--method", "pg-newton", "--scale", "smoke", "--iters", "30",
            "--out", str(tmp_path), "--quiet"]
    assert main(args) == 0
    summary = json.loads((tmp_path / "pg-newton" / "summary.json").read_text())
    assert summary["iterations"] == 30 and summary["method"] == "pg-newton"
    assert main([*args[:-4], "60", "--out", str(tmp_path), "--quiet", "--resume"]) == 0
    lines = (tmp_path / "pg-newton" / "metrics.csv").read_text().strip().splitlines()
    assert len(lines) == 61  # header + 60 iterations, none repeated


def test_progress_line_shows_the_experiments_headline_metric(tmp_path, capsys):
    """Piped output gets a plain progress line with the loss and the experiment's first
    metric (wavepacket: the objective; a fluid run would show v0_err, not x_l1)."""
    assert main(["run", "wavepacket", "--method", "adam", "--scale", "smoke", "--iters", "3",
                 "--out", str(tmp_path)]) == 0
    line = next(x for x in capsys.readouterr().err.splitlines() if "iteration 3/3" in x)
    assert re.search(r"loss \S+ objective \S+ \(", line), line


def test_compare_writes_curves_table_and_json(tmp_path, capsys):
    assert main(["compare", "sine", "--methods", "adam,pg-analytic", "--scale", "smoke",
                 "--out", str(tmp_path), "--quiet"]) == 0
    for name in ("curves.png", "results.md", "results.json", "init.pt"):
        assert (tmp_path / name).exists()
    assert "| pg-analytic |" in capsys.readouterr().out


def test_run_toy_writes_the_figure(tmp_path, capsys):
    assert main(["run", "toy", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "toy_trajectories.png").exists()


def test_config_file_supplies_options(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"method: adam\ntraining: {{iterations: 5}}\nscale: smoke\nout: {tmp_path / 'o'}\n"
    )
    assert main(["run", "sine", "--config", str(cfg), "--quiet"]) == 0
    run = tmp_path / "o" / "adam"
    # the file's 5 iterations, not the smoke scale's 150
    assert json.loads((run / "summary.json").read_text())["iterations"] == 5
    assert len((run / "metrics.csv").read_text().splitlines()) == 1 + 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "nope"], "unknown experiment 'nope'"),
        (["run", "sine", "--method", "magic", "--scale", "smoke"], "unknown method"),
        (["compare", "sine", "--methods", "adam,bogus", "--scale", "smoke"], "'bogus'"),
        (["run", "sine", "--iters", "0", "--scale", "smoke"], "iterations must be >= 1"),
        (["run", "sine", "--iters", "-3", "--scale", "smoke"], "iterations must be >= 1"),
        (["run", "sine", "--batch-size", "0", "--scale", "smoke"], "batch_size must be >= 1"),
        (["run", "sine", "--config", "/no/such/file.yaml"], "does not exist"),
    ],
)
def test_bad_input_gives_a_one_line_error(args, message, tmp_path, capsys):
    assert main([*args, "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_bad_config_key_and_type(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("itrs: 5\n")
    assert main(["run", "sine", "--config", str(cfg)]) == 2
    assert "unknown config key 'itrs'" in capsys.readouterr().err
    cfg.write_text("training:\n  iterations: many\n")
    assert main(["run", "sine", "--config", str(cfg)]) == 2
    assert "config key 'training.iterations' must be int" in capsys.readouterr().err
    cfg.write_text("iters: 5\n")  # the old flat key: the error says where it went
    assert main(["run", "sine", "--config", str(cfg)]) == 2
    assert "it is now training.iterations" in capsys.readouterr().err


def test_corrupt_checkpoint_on_resume_is_reported(tmp_path, capsys):
    run_dir = tmp_path / "adam"
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoint.pt").write_bytes(b"\x00garbage")
    code = main(["run", "sine", "--method", "adam", "--scale", "smoke", "--iters", "3",
                 "--out", str(tmp_path), "--resume", "--quiet"])
    assert code == 2
    assert "unreadable" in capsys.readouterr().err


def test_compare_over_seeds_writes_a_per_seed_figure_and_interval_table(tmp_path, capsys):
    assert main(["compare", "sine", "--methods", "adam,pg-analytic", "--scale", "smoke",
                 "--iters", "20", "--seeds", "5,6", "--out", str(tmp_path), "--quiet"]) == 0
    assert (tmp_path / "seeds.png").exists() and (tmp_path / "curves.png").exists()
    assert (tmp_path / "seed5" / "adam" / "metrics.csv").exists()
    results = (tmp_path / "results.md").read_text()
    assert "95% Student-t interval" in results
    assert re.search(r"\| [-\d.e+]+ \[[-\d.e+]+, [-\d.e+]+\] \|", results)  # mean [lo, hi]
    assert main(["compare", "sine", "--seeds", "5,x", "--scale", "smoke"]) == 2
    assert "--seeds must be comma-separated integers" in capsys.readouterr().err


def test_a_run_folder_config_repeats_the_run(tmp_path, capsys):
    assert main(["run", "sine", "--method", "adam", "--scale", "smoke", "--iters", "8",
                 "--out", str(tmp_path / "a"), "--quiet"]) == 0
    config = tmp_path / "a" / "adam" / "config.yaml"
    text = config.read_text().replace(str(tmp_path / "a"), str(tmp_path / "b"))
    config.write_text(text)
    assert main(["run", "--config", str(config), "--quiet"]) == 0
    def rows_without_times(run):
        with open(tmp_path / run / "adam" / "metrics.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        return [{k: v for k, v in r.items() if k not in ("step_time", "cpu_time")} for r in rows]

    assert len(rows_without_times("a")) == 8
    assert rows_without_times("a") == rows_without_times("b")


def test_missing_experiment_is_named(capsys):
    assert main(["run"]) == 2
    assert "no experiment given" in capsys.readouterr().err


def test_threads_option(capsys):
    assert main(["--threads", "0", "list"]) == 2
    assert "--threads must be >= 1" in capsys.readouterr().err
    assert main(["--threads", "1", "list"]) == 0


def test_lr_override_is_applied_recorded_and_checked_on_resume(tmp_path, capsys):
    base = ["run", "sine", "--method", "adam", "--scale", "smoke", "--iters", "5",
            "--out", str(tmp_path), "--quiet"]
    assert main([*base, "--lr", "0.1"]) == 0
    summary = json.loads((tmp_path / "adam" / "summary.json").read_text())
    assert summary["lr"] == 0.1
    assert "lr: 0.1" in (tmp_path / "adam" / "config.yaml").read_text()
    # resuming with another learning rate is refused, naming the key
    code = main([*base[:-4], "8", "--out", str(tmp_path), "--quiet", "--resume", "--lr", "0.2"])
    assert code == 2
    assert "optimizer.lr = 0.2 differs from the run's 0.1" in capsys.readouterr().err
    # resuming without --lr restores the recorded one (it used to record lr: null)
    assert main([*base[:-4], "8", "--out", str(tmp_path), "--quiet", "--resume"]) == 0
    assert json.loads((tmp_path / "adam" / "summary.json").read_text())["lr"] == 0.1
    assert "lr: 0.1" in (tmp_path / "adam" / "config.yaml").read_text()
    assert main([*base[:-4], "9", "--out", str(tmp_path), "--quiet", "--resume", "--lr",
                 "0.1"]) == 0
    assert main([*base, "--lr", "-1"]) == 2
    assert "lr must be > 0" in capsys.readouterr().err


@pytest.mark.parametrize(("problem", "iters"), [("sine", "60"), ("heat", "3")])
def test_demo_runs_and_writes_its_figures(problem, iters, tmp_path, capsys):
    assert main(["demo", problem, "--iters", iters, "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Adam + PG ends" in out and "| adam |" in out
    assert (tmp_path / "curves.png").exists()
    if problem == "heat":
        assert (tmp_path / "reconstructions.png").exists()
        # the one-seed ratio comes with the committed seed study's interval, read from its CSVs
        r = heldout_ratio(Path(__file__).parents[1] / SEED_EVIDENCE / "heat", "pg-inverse",
                          "x_l1")
        assert "one draw" in out and f"{r.mean:.3g}x [{r.low:.3g}, {r.high:.3g}]" in out
    else:  # a single seed's ratio is printed only with its caveat and the seed table
        assert "one draw, not a result" in out and "docs/results/sine-seeds" in out
    assert main(["demo", problem, "--iters", "0", "--out", str(tmp_path / "x")]) == 2


USER_PROBLEM = '''
import torch
from physgrad.problems import FunctionProblem

def physics(x):
    return torch.stack([x[:, 0] ** 3, torch.exp(x[:, 1])], dim=1)

def sampler(batch_size, generator):
    x = torch.rand(batch_size, 2, generator=generator) * 2 - 1
    return x, physics(x)

def make():
    return FunctionProblem(physics, sampler, name="mine")

def net():
    return torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
'''


def test_users_own_problem_from_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "myphys.py").write_text(USER_PROBLEM)
    assert main(["compare", "--problem", "myphys.py:make", "--methods", "adam,pg-gauss-newton",
                 "--scale", "smoke", "--out", "o", "--quiet"]) == 0
    assert "| pg-gauss-newton |" in capsys.readouterr().out
    assert (tmp_path / "o" / "curves.png").exists()
    assert "problem_fn: myphys.py:make" in (tmp_path / "o" / "config.yaml").read_text()
    assert main(["run", "--problem", "myphys.py:make", "--network", "myphys.py:net",
                 "--method", "pg-lbfgs", "--scale", "smoke", "--out", "r", "--quiet"]) == 0
    assert (tmp_path / "r" / "pg-lbfgs" / "metrics.csv").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--problem", "nope_module_xyz:make"], "nope_module_xyz"),
        (["--problem", "myphys.py:missing"], "has no attribute 'missing'"),
        (["--problem", "no-colon"], "must look like 'package.module:function'"),
        (["sine", "--problem", "myphys.py:make"], "either an experiment name or --problem"),
        (["--problem", "myphys.py:make", "--network", "myphys.py:physics"],
         "must be callable without arguments"),
    ],
)
def test_bad_user_problem_specs(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "myphys.py").write_text(USER_PROBLEM)
    assert main(["run", *args, "--scale", "smoke", "--out", "o", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_the_heat_demo_names_how_the_evidence_it_quotes_was_scored():
    # the committed seed study re-estimates batch-norm statistics; the demo said "plain eval
    # mode", the scoring of the study's earlier version
    from physgrad.cli import _heat_seed_evidence

    readme = (Path(__file__).parents[1] / SEED_EVIDENCE / "README.md").read_text()
    text = _heat_seed_evidence()
    assert "statistics re-estimated" in readme and "plain eval mode" not in text
    assert "batch-norm statistics re-estimated" in text
