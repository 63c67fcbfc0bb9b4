"""docs/results/long/STATUS.md is what benchmarks/long_runs_table.py makes of the committed runs."""

from pathlib import Path

import pytest
from helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
LONG = ROOT / "docs" / "results" / "long"


def _table_module():
    return load_script("benchmarks/long_runs_table.py")


def _text(markdown: str) -> list[str]:
    # the figure lines (and their blank line) exist only with --figures
    return [line for line in markdown.splitlines() if line.strip() and not line.startswith("![")]


def test_status_page_matches_the_committed_long_runs():
    made = _table_module().report(LONG, "adam", figures=False)
    assert _text(made) == _text((LONG / "STATUS.md").read_text())


def test_reach_is_the_first_evaluation_at_or_below_and_claims_need_three_seeds():
    table = _table_module()
    assert table.reach({0: 5.0, 100: 3.0, 200: 1.0}, 3.0) == 100
    assert table.reach({0: 5.0}, 1.0) is None
    runs = {(f"seed{s}", m): {0: 10.0, 100: 8.0 if m == "adam" else 2.0, 1000: 4.0 if m == "adam"
                              else 1.0} for s in range(2) for m in ("adam", "pg-inverse")}
    rows = table.paper_claims_table("poisson", runs, "adam", "x_l1")
    assert rows and all("open (2 seeds < 3)" in r for r in rows[2:])


def test_early_reruns_add_dense_scores_only_when_they_retrace_the_run():
    table = _table_module()
    run = {0: 9.0, 100: 5.0, 200: 4.0, 300: 3.0}
    early = {i: 9.0 - i / 40 for i in range(0, 201, 4)} | {0: 9.0, 100: 5.0, 200: 4.0}
    merged = table.merge_early(run, early, "x")
    assert sorted(merged) == sorted(set(range(0, 201, 4)) | {300})
    assert merged[4] == early[4] and merged[300] == 3.0
    assert table._cadence({("s", "a"): merged}) == "every 4 iterations up to 200, every 100 after"
    with pytest.raises(SystemExit, match="not the same trajectory"):
        table.merge_early(run, {**early, 100: 5.000001}, "x")


def test_a_claim_at_an_early_iteration_is_judged_at_exactly_that_iteration():
    table = _table_module()
    runs = {(f"seed{s}", m): {i: 10.0 if m == "adam" else 3.0 for i in (0, 60, 100)}
            for s in range(3) for m in ("adam", "pg-inverse")}
    rows = table.paper_claims_table("poisson", runs, "adam", "x_l1")
    at60 = [r for r in rows if "3x at 60" in r]
    assert at60 and "| 60 | yes |" in at60[0] and "reproduced" in at60[0]
