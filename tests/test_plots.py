"""Figure conventions: one colour per method in every figure, readable log-axis tick labels."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from physgrad.experiments.base import Experiment, get_experiment, list_experiments
from physgrad.experiments.custom import GENERIC_METHODS
from physgrad.report.plots import (
    BASELINE_COLORS,
    PALETTE,
    method_color,
    method_colors,
    plot_learning_curves,
    plot_seed_grid,
    readable_log_axis,
)
from physgrad.training.trainer import History


def _history(scale: float, n: int = 12) -> History:
    h = History()
    for i in range(n):
        h.append({"iteration": i, "x_l1": scale / (i + 1), "y_l2": 2 * scale / (i + 1)})
    return h


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """The figures the plot functions save (their files are written as usual)."""
    figures: list[Figure] = []
    save = Figure.savefig

    def record(self: Figure, *args: object, **kwargs: object) -> None:
        figures.append(self)
        save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return figures


def _line_colors(fig: Figure) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            if not line.get_label().startswith("_"):
                out.setdefault(line.get_label(), set()).add(line.get_color())
    return out


def test_a_method_keeps_its_colour_across_figures(tmp_path: Path, drawn: list[Figure]) -> None:
    first = {"Adam": _history(1.0), "Adam + PG (inverse)": _history(0.5),
             "SGD (momentum 0.9)": _history(2.0)}
    second = {"My own method": _history(3.0), "Adam + PG (inverse)": _history(0.4),
              "Adam": _history(1.1)}  # other set, other order
    plot_learning_curves(first, metrics=["x_l1"], smoothing=2, path=tmp_path / "a.png",
                         heldout=first)
    plot_learning_curves(second, metrics=["x_l1", "y_l2"], smoothing=2, path=tmp_path / "b.png")
    plot_seed_grid({0: second, 1: first}, metric="x_l1", smoothing=2, path=tmp_path / "c.png")
    colours = [_line_colors(fig) for fig in drawn]
    assert len(colours) == 3
    for label in ("Adam", "Adam + PG (inverse)"):
        seen = set().union(*(c[label] for c in colours))
        assert seen == {method_color(label)}, label
    assert colours[0]["Adam"] == {BASELINE_COLORS["adam"]}
    assert colours[0]["SGD (momentum 0.9)"] == {BASELINE_COLORS["sgd"]}
    assert colours[1]["My own method"] == colours[2]["My own method"]
    for c in colours:  # distinct within a figure
        assert len({next(iter(v)) for v in c.values()}) == len(c)


@pytest.mark.parametrize("name", [e.name for e in list_experiments() if isinstance(e, Experiment)]
                         + ["--problem"])
def test_builtin_methods_have_fixed_distinct_colours(name: str) -> None:
    methods = GENERIC_METHODS if name == "--problem" else get_experiment(name).methods
    labels = [spec.label for spec in methods.values()]
    colours = method_colors(labels)
    assert colours == {label: method_color(label) for label in labels}  # no collision fix-up
    assert len(set(colours.values())) == len(labels)


def test_unknown_labels_get_distinct_colours_whatever_the_order() -> None:
    labels = [f"method {i}" for i in range(len(PALETTE))]
    forward, backward = method_colors(labels), method_colors(labels[::-1])
    assert forward == backward
    assert len(set(forward.values())) == len(labels)


@pytest.mark.parametrize("lo, hi", [(570.0, 660.0), (4.0, 30.0), (0.02, 1.5), (1e-4, 10.0)])
def test_log_axis_has_several_readable_labels(lo: float, hi: float) -> None:
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot([0, 1], [lo, hi])
    ax.set_yscale("log")
    readable_log_axis(ax)
    fig.canvas.draw()
    bottom, top = ax.get_ylim()
    shown = [t.get_text() for t in ax.yaxis.get_ticklabels(which="both")
             if t.get_text() and bottom <= t.get_position()[1] <= top]
    assert len(shown) >= 3, shown
    for text in shown:  # plain numbers, no mathtext powers
        assert "$" not in text
        assert math.isfinite(float(text))


def test_render_refuses_figure_data_without_a_renderer(tmp_path):
    from physgrad.experiments.base import Result
    from physgrad.report.figures import render

    with pytest.raises(TypeError, match="no renderer for figure 'x.png' of type dict"):
        render(Result(figures={"x.png": {}}), tmp_path)
    assert not (tmp_path / "x.png").exists()
