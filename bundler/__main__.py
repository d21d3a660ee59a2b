"""scripts/build_bundle: prepare what ships to Lambda, package it with chalice, measure and check.

    scripts/build_bundle                          # classify_api/ in place -> build/bundle/
    scripts/build_bundle --model M.onnx --out DIR # a staged copy, e.g. for tests
    scripts/build_bundle --python 3.12 --out DIR  # prepare and measure for 3.12 (no chalice)

Exits 1 when the bundle breaks a Lambda limit (50 MiB zipped, 250 MB unzipped) or needs a newer
glibc/libstdc++ than the target runtime's image has.
"""

import argparse
from collections import defaultdict
from pathlib import Path

from bundler.build import Bundle, build
from bundler.elf import format_version
from bundler.runtime import local_python, target_for
from bundler.sizes import TARGET_ZIPPED, format_table, megabytes


def report(bundle: Bundle) -> str:
    by_reason: dict[str, int] = defaultdict(int)
    for removed in bundle.removed:
        by_reason[removed.why] += removed.size
    stripped = sum(by_reason.values())
    lines = [f"stripped {megabytes(stripped)} from the runtime packages; largest reasons:"]
    lines += [
        f"  {megabytes(size):>10}  {why}"
        for why, size in sorted(by_reason.items(), key=lambda kv: -kv[1])[:6]
    ]
    what = "deployment.zip" if bundle.deployment_zip else "zip layout, measured (chalice not run)"
    lines += [
        "",
        f"{what} for {bundle.target.describe()}:",
        format_table(bundle.rows, bundle.zip_size),
    ]
    lines.append(
        f"target zipped <= {megabytes(TARGET_ZIPPED)}: "
        + ("met" if bundle.zip_size <= TARGET_ZIPPED else "missed")
        + f" ({megabytes(bundle.zip_size)})"
    )
    for prefix, (version, where) in bundle.elf_summary.items():
        lines.append(
            f"highest {prefix} needed: {format_version(version or None)}  ({where or '-'})"
        )
    if bundle.deployment_zip:
        lines.append(f"package: {bundle.deployment_zip} and {bundle.sam_json}")
    lines += [f"WARNING: {w}" for w in bundle.warnings]
    lines += [f"PROBLEM: {p}" for p in bundle.problems]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, help="model to ship (needs --out; default: published)"
    )
    parser.add_argument("--out", type=Path, help="build in a staged copy of the app under DIR")
    parser.add_argument(
        "--python",
        default=local_python(),
        help=f"target Lambda Python (default {local_python()}; others build the vendor set only)",
    )
    args = parser.parse_args(argv)
    try:
        bundle = build(target_for(args.python), model=args.model, out=args.out)
    except (FileNotFoundError, ValueError) as exc:
        parser.exit(2, f"build_bundle: {exc}\n")
    print(report(bundle))
    return 1 if bundle.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
