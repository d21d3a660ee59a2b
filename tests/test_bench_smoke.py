"""scripts/bench.py runs end to end on tiny counts and writes well-formed JSON with every section.

A smoke test only: no figure or target is asserted (timings belong in the bench's own output,
not in a pass/fail test on a shared machine).
"""

import json
import math
import subprocess
import sys
from pathlib import Path

from scripts.bench import SECTIONS
from shared.paths import REPO

ROW_KEYS = {
    "section",
    "name",
    "value",
    "unit",
    "baseline",
    "baseline_name",
    "target",
    "ratio",
    "met",
}


def test_bench_quick_runs_every_section_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    completed = subprocess.run(
        [sys.executable, "-m", "scripts.bench", "--quick", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-4000:]
    document = json.loads(out.read_text(encoding="utf-8"))

    assert set(document["sections"]) == set(SECTIONS)
    assert document["summary"]["failed_sections"] == []
    assert document["machine"]["cpu_model"] and document["machine"]["cores"] >= 1
    for name, section in document["sections"].items():
        assert section["rows"], f"{name} has no rows"
        for row in section["rows"]:
            assert set(row) == ROW_KEYS, row
            assert math.isfinite(row["value"]), row
            assert row["met"] in (True, False, None)
            assert (row["ratio"] is None) == (not row["baseline"]), row
            assert (row["met"] is None) == (row["target"] is None), row
    # Both sides ran the same weights on the same bytes: the bundle's fp32 answer is torch's.
    warm = document["sections"]["warm_request"]["details"]
    for image in ("300x300", "4032x3024"):
        assert warm["ours fp32"][image]["label"] == warm["torch"][image]["label"], image
        # The served models really applied their rules; the baseline without one has none.
        assert warm["ours openset"][image]["rejection"], image
        assert warm["ours fp32"][image]["rejection"], image
        assert not warm["ours closed"][image]["rejection"], image
    # --quick builds one bundle, the one every section serves from (tests/test_bundle.py builds
    # the others, arm64 included); the full bench builds four.
    bundles = document["sections"]["bundle"]["details"]
    assert set(bundles) == {"fp32-x86_64"}
    assert all(b["problems"] == [] for b in bundles.values())

    # The printed table: the machine line first; a header, a rule and one line per JSON row.
    assert completed.stdout.startswith("machine: ")
    table_rows = [line for line in completed.stdout.splitlines() if line.startswith("| ")]
    assert len(table_rows) == 2 + sum(len(s["rows"]) for s in document["sections"].values())
