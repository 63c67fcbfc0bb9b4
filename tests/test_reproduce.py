"""`physgrad reproduce --scale smoke`: every experiment, one report, resumable."""

import json
from dataclasses import replace

from physgrad.cli import main
from physgrad.experiments import get_experiment, list_experiments
from physgrad.experiments.base import REGISTRY
from physgrad.report.reproduce import markdown_to_html


def test_reproduce_smoke_writes_a_report_with_every_experiment_and_resumes(
    tmp_path, capsys, monkeypatch
):
    out = tmp_path / "rep"
    assert main(["reproduce", "--scale", "smoke", "--out", str(out), "--quiet"]) == 0
    report = (out / "report.md").read_text()
    for exp in list_experiments():
        assert f"## {exp.name} (" in report
    assert "## Time per training iteration" in report
    for link in [line[line.index("(") + 1 : -1] for line in report.splitlines()
                 if line.startswith("![")]:
        assert (out / link).is_file(), link
    assert "<table>" in (out / "report.html").read_text()
    state = json.loads((out / "state.json").read_text())
    assert all(v["finished"] for v in state.values())

    # a second run resumes: finished trainings are not redone (metrics files untouched)
    metrics = out / "sine" / "adam" / "metrics.csv"
    before = metrics.stat().st_mtime_ns
    assert main(["reproduce", "--scale", "smoke", "--only", "sine", "--out", str(out),
                 "--quiet"]) == 2
    assert "already holds a reproduce run" in capsys.readouterr().err
    hooks: list[str] = []  # sine's figure hook, counted instead of drawing
    sine = get_experiment("sine")
    monkeypatch.setitem(REGISTRY, "sine", replace(sine, figures=lambda c: hooks.append(c.scale)))
    assert main(["reproduce", "--scale", "smoke", "--only", "sine", "--out", str(out),
                 "--quiet", "--resume"]) == 0
    assert metrics.stat().st_mtime_ns == before
    assert hooks == []  # finished before: its figures are kept, not redrawn
    assert (out / "report.md").is_file()
    # a state from before seeds were recorded cannot tell: the figures are redrawn
    state = json.loads((out / "state.json").read_text())
    assert state["sine"]["seeds"] == [0]
    del state["sine"]["seeds"]
    (out / "state.json").write_text(json.dumps(state))
    assert main(["reproduce", "--scale", "smoke", "--only", "sine", "--out", str(out),
                 "--quiet", "--resume"]) == 0
    assert hooks == ["smoke"] and metrics.stat().st_mtime_ns == before


def test_reproduce_rejects_unknown_experiments(tmp_path, capsys):
    assert main(["reproduce", "--only", "sine,nope", "--out", str(tmp_path)]) == 2
    assert "unknown experiment(s) nope" in capsys.readouterr().err


def test_markdown_to_html_renders_tables_and_images():
    page = markdown_to_html("# T\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![x](f.png)\n", "t")
    assert "<h1>T</h1>" in page and "<th>a</th>" in page and "<td>2</td>" in page
    assert 'src="f.png"' in page
