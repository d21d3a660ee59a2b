"""``history.csv`` and ``history.json``: one row per epoch, or per L2 strength for the solved head.

Written by the regimes as they go (every epoch, so a crash keeps what was learnt about the run);
``trainer.evaluation.run_report`` draws the curves from the same rows.
"""

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainer.common.files import atomic_write_text, write_json

HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"


def write_history(run_dir: Path, rows: Sequence[dict[str, Any]]) -> None:
    flat = [{k: v for k, v in row.items() if not isinstance(v, dict)} for row in rows]
    buffer = io.StringIO()
    columns = list(flat[0]) if flat else ["epoch"]
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    atomic_write_text(run_dir / HISTORY_CSV, buffer.getvalue())
    write_json(run_dir / HISTORY_JSON, list(rows))
