"""scripts/build_bundle: prepare what ships to Lambda, package it with chalice, measure and check.

    scripts/build_bundle                          # classify_api/ in place -> build/bundle/
    scripts/build_bundle --model M.onnx --out DIR # a staged copy, e.g. for tests
    scripts/build_bundle --python 3.11            # the legacy runtime, packaged by .venv's chalice
    scripts/build_bundle --python 3.12 --out DIR  # no venv runs 3.12 here: prepare and measure only

The default target is the Python of .venv-deploy (scripts/setup-deploy: 3.12+, Amazon Linux 2023),
the runtime Lambda still accepts; its chalice packages the zip. python3.11 (.venv's) stays
buildable for comparison and tests, with a warning that Lambda refuses it.

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
from bundler.venvs import deploy_python


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
        default=deploy_python(),
        help=f"target Lambda Python (default: .venv-deploy's, {deploy_python() or 'not set up'}; "
        f"{local_python()} is .venv's; a version no venv here runs is prepared and measured only)",
    )
    args = parser.parse_args(argv)
    if args.python is None:
        parser.exit(
            2,
            "build_bundle: no deploy environment (.venv-deploy): run scripts/setup-deploy, "
            f"or pass --python {local_python()} for the legacy runtime\n",
        )
    try:
        bundle = build(target_for(args.python), model=args.model, out=args.out)
    except (FileNotFoundError, ValueError) as exc:
        parser.exit(2, f"build_bundle: {exc}\n")
    print(report(bundle))
    return 1 if bundle.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
