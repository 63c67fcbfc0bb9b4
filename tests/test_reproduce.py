"""`physgrad reproduce --scale smoke`: every experiment, one report, resumable."""

import json

from physgrad.cli import main
from physgrad.experiments import list_experiments
from physgrad.report.reproduce import markdown_to_html


def test_reproduce_smoke_writes_a_report_with_every_experiment_and_resumes(tmp_path, capsys):
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
    assert main(["reproduce", "--scale", "smoke", "--only", "sine", "--out", str(out),
                 "--quiet", "--resume"]) == 0
    assert metrics.stat().st_mtime_ns == before


def test_reproduce_rejects_unknown_experiments(tmp_path, capsys):
    assert main(["reproduce", "--only", "sine,nope", "--out", str(tmp_path)]) == 2
    assert "unknown experiment(s) nope" in capsys.readouterr().err


def test_markdown_to_html_renders_tables_and_images():
    page = markdown_to_html("# T\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![x](f.png)\n", "t")
    assert "<h1>T</h1>" in page and "<th>a</th>" in page and "<td>2</td>" in page
    assert 'src="f.png"' in page
