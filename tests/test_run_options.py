"""RunOptions: one validated value from the CLI/config to the runner and the figure hooks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from physgrad.cli import main
from physgrad.config import RunConfig
from physgrad.experiments.base import REGISTRY, Result, RunOptions, get_experiment
from physgrad.experiments.runner import compare, load_comparison

BAD = [
    ({"scale": "huge"}, ValueError, "unknown scale 'huge'"),
    ({"seeds": ()}, ValueError, "seeds must name at least one seed"),
    ({"seeds": (1, -2)}, ValueError, "seed must be an integer in [0, 2**64 - 1], got -2"),
    ({"seeds": (2**64,)}, ValueError, "got 18446744073709551616"),
    ({"seeds": (3, 3)}, ValueError, "seeds must differ, got [3, 3]"),
    ({"iterations": 0}, ValueError, "iterations must be >= 1, got 0"),
    ({"batch_size": -4}, ValueError, "batch_size must be >= 1, got -4"),
    ({"threads": 0}, ValueError, "threads must be >= 1, got 0"),
    ({"iterations": 2.5}, TypeError, "iterations must be an int, got 2.5"),
    ({"checkpoint_every": -1}, ValueError, "checkpoint_every must be an integer >= 0, got -1"),
    ({"lr": 0.0}, ValueError, "lr must be > 0, got 0.0"),
    ({"lr": float("nan")}, ValueError, "lr must be finite, got nan"),
    ({"out": ""}, ValueError, "out must name a folder, got ''"),
    ({"resume": True, "force": True}, ValueError, "resume continues runs and force starts"),
    ({"device": "tpu"}, ValueError, "device 'tpu' is not a torch device"),
    ({"trackers": ("wandb",)}, ValueError, "unknown tracker 'wandb'"),
]


@pytest.mark.parametrize(("fields", "error", "message"), BAD, ids=[str(b[0]) for b in BAD])
def test_bad_run_options_raise_one_line_naming_the_value(fields, error, message) -> None:
    with pytest.raises(error) as info:
        RunOptions(**fields)
    text = str(info.value)
    assert message in text and "\n" not in text, text


def test_run_options_from_a_config() -> None:
    config = RunConfig.from_dict({"scale": "smoke", "seeds": [3, 4], "device": "cpu",
                                  "training": {"iterations": 7, "checkpoint_every": 0},
                                  "optimizer": {"lr": 0.01}, "out": "o"})
    options = config.run_options(resume=True, progress=False)
    assert options == RunOptions(out=Path("o"), scale="smoke", seeds=(3, 4), iterations=7,
                                 device="cpu", resume=True, progress=False, lr=0.01,
                                 checkpoint_every=0)
    assert options.seed == 3
    one = RunConfig.from_dict({"training": {"seed": 5}}).run_options()
    assert one.seeds == (5,) and one.out == Path("runs") and one.lr is None


def test_figure_hook_receives_the_configured_comparison(tmp_path, monkeypatch, capsys) -> None:
    """A ``--set`` network/problem override reaches the figure code as a value: the hook gets
    the comparison, whose experiment builds the run's network (so the checkpoints load)."""
    seen = []

    def hook(comparison):
        seen.append(comparison)
        return Result(sections={"hook": "ran"})

    heat = get_experiment("heat")
    monkeypatch.setitem(REGISTRY, "heat", replace(heat, figures=hook))
    args = ["compare", "heat", "--methods", "adam", "--scale", "smoke", "--iters", "2",
            "--batch-size", "2", "--set", "network.levels=2", "--set", "network.filters=4",
            "--set", "problem.shape=[16, 16]", "--out", str(tmp_path), "--quiet"]
    assert main(args) == 0, capsys.readouterr().err
    (comparison,) = seen
    assert comparison.out == tmp_path and comparison.scale == "smoke"
    assert list(comparison.histories) == ["adam"] and len(comparison.histories["adam"]) == 2
    exp = comparison.experiment
    assert exp.overrides == {"network": {"levels": 2, "filters": 4},
                             "problem": {"shape": [16, 16]}}
    assert exp.problem().shape == (16, 16)
    default = sum(p.numel() for p in heat.network().parameters())
    (net,) = comparison.networks().values()  # the configured network holds the checkpoint
    assert sum(p.numel() for p in net.parameters()) < default
    assert comparison.result.sections == {"hook": "ran"}


def test_load_comparison_reads_back_the_runs_of_a_folder(tmp_path) -> None:
    sine = get_experiment("sine")
    made = compare(sine, ["adam", "pg-analytic"], tmp_path, seed=3, scale="smoke",
                   iterations=5, progress=False)
    loaded = load_comparison(sine, tmp_path, scale="smoke")
    assert list(loaded.histories) == ["adam", "pg-analytic"] and loaded.seed == 3
    assert loaded.markdown_table() == made.markdown_table()
    with pytest.raises(FileNotFoundError, match="no sine runs"):
        load_comparison(sine, tmp_path / "empty")
