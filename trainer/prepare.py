"""``python -m trainer.prepare SRC DST``: a cleaned copy of an image folder, as 300x300-bounded JPEGs.

Many photo sets are far larger than the network needs; this shrinks them so that neither side
exceeds 300 pixels (aspect kept), for users who want a small, clean dataset on disk. Files that
``shared.decode`` rejects are left out and listed in ``DST/skipped.csv``, as are byte-identical
duplicates (only the first, in path order, is kept). The folder layout (class folders, or
train/ and test/) is kept. Every file is written atomically, so an interrupted run can be repeated.
"""

import argparse
import io
import sys
from collections.abc import Sequence
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from shared.cli import UsageError, run_cli
from trainer.common.files import atomic_write_bytes
from trainer.common.progress import hidden
from trainer.data.folders import discover
from trainer.data.images import load_rgb
from trainer.data.scan import Skipped, check_file, write_skipped


def shrink_to_jpeg(path: Path, max_side: int, quality: int) -> bytes:
    """Decode (via ``shared.decode``), fit within ``max_side`` squared keeping aspect, encode JPEG."""
    img = Image.fromarray(load_rgb(path))
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def target_name(rel: str, taken: set[str]) -> str:
    """``rel`` with a .jpg suffix; ``a.png`` next to ``a.jpg`` becomes ``a_png.jpg``."""
    path = Path(rel)
    name = path.with_suffix(".jpg").as_posix()
    if name in taken:
        name = path.with_name(f"{path.stem}_{path.suffix.lstrip('.').lower()}.jpg").as_posix()
    taken.add(name)
    return name


def prepare(
    src: Path, dst: Path, *, max_side: int = 300, quality: int = 95, progress: bool = True
) -> tuple[int, list[Skipped]]:
    """Write the cleaned copy; return ``(images written, skipped)``."""
    src, dst = src.expanduser().resolve(), dst.expanduser().resolve()
    if dst == src or src in dst.parents:
        raise UsageError(f"DST {dst} must be outside SRC {src}")
    _, candidates, _ = discover(src)
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    taken: set[str] = set()
    written = 0
    for candidate in tqdm(candidates, desc="prepare", unit="img", disable=hidden(progress)):
        digest, reason = check_file(src / candidate.rel)
        if digest is None:
            skipped.append(Skipped(candidate.rel, reason or "unknown"))
            continue
        if digest in seen:
            skipped.append(Skipped(candidate.rel, f"duplicate: byte-identical to {seen[digest]}"))
            continue
        seen[digest] = candidate.rel
        data = shrink_to_jpeg(src / candidate.rel, max_side, quality)
        atomic_write_bytes(dst / target_name(candidate.rel, taken), data)
        written += 1
    write_skipped(dst / "skipped.csv", skipped)
    return written, skipped


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trainer.prepare",
        description="Copy an image folder (one sub-folder per class) as clean, 300x300-bounded JPEGs.",
    )
    parser.add_argument("src", type=Path, metavar="SRC")
    parser.add_argument("dst", type=Path, metavar="DST")
    parser.add_argument("--max-side", type=int, default=300, help="longest side in pixels (300)")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality (95)")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    args = parser.parse_args(argv)
    if args.max_side < 16 or not 1 <= args.quality <= 100:
        raise UsageError("--max-side must be >= 16 and --quality 1..100")
    written, skipped = prepare(
        args.src, args.dst, max_side=args.max_side, quality=args.quality, progress=args.progress
    )
    print(
        f"wrote {written} image(s) to {args.dst}; skipped {len(skipped)} (see {args.dst / 'skipped.csv'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="trainer.prepare"))
