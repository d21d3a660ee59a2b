"""``python -m trainer.prepare``: a cleaned, 300x300-bounded JPEG copy."""

import csv
import subprocess
import sys
from pathlib import Path

from shared.decode import decode
from shared.paths import REPO
from tests.imagegen import encode, synthetic_rgb
from trainer.prepare import prepare


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_prepare_shrinks_converts_and_skips_bad_files(tmp_path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    big = encode(synthetic_rgb(640, 400, seed=1), "PNG")
    _write(src / "birds" / "a.png", big)
    _write(src / "birds" / "copy.png", big)  # byte-identical duplicate
    _write(src / "birds" / "b.jpg", encode(synthetic_rgb(120, 90, seed=2), "JPEG"))
    _write(src / "birds" / "notes.txt", b"not an image")
    torn = encode(synthetic_rgb(200, 500, seed=3), "JPEG")
    _write(src / "drones" / "c.jpg", torn[: len(torn) // 2])
    _write(src / "drones" / "d.webp", encode(synthetic_rgb(310, 310, seed=4), "WEBP"))

    written, _ = prepare(src, dst, progress=False)

    assert written == 3
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*.jpg")) == [
        "birds/a.jpg",
        "birds/b.jpg",
        "drones/d.jpg",
    ]
    assert decode((dst / "birds/a.jpg").read_bytes()).shape == (188, 300, 3)
    assert decode((dst / "birds/b.jpg").read_bytes()).shape == (90, 120, 3)  # never enlarged
    with open(dst / "skipped.csv", newline="") as handle:
        reasons = {row["path"]: row["reason"] for row in csv.DictReader(handle)}
    assert set(reasons) == {"birds/copy.png", "birds/notes.txt", "drones/c.jpg"}
    assert "duplicate" in reasons["birds/copy.png"]
    assert "cut short" in reasons["drones/c.jpg"]  # a torn file, in plain words


def test_prepare_cli_missing_folder_is_one_line(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "trainer.prepare", str(tmp_path / "nope"), str(tmp_path / "out")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr
