"""scripts/build_bundle: prepare what ships to Lambda, package it with chalice, measure and check.

    scripts/build_bundle                          # classify_api/ in place -> build/bundle/
    scripts/build_bundle --model M.onnx --out DIR # a staged copy, e.g. for tests
    scripts/build_bundle --out DIR --architecture arm64   # a staged copy for the other CPU

The target is the Lambda runtime of .venv-deploy's Python (3.12+, scripts/setup-deploy) on the
architecture the stage's ``lambda_architecture`` names; its chalice packages the zip.

The stripped bundle is run (a cold start and every image format) under the target's Python before
it is zipped, and the modules that run imported get bytecode (bundler/verify.py).

Exit status: 0 built, 1 the bundle breaks a Lambda limit (50 MiB zipped, 250 MB unzipped), needs
a newer glibc/libstdc++ than the runtime's image has, holds a library for another CPU or fails its
run; 2 bad input (no model, no deploy venv, no strip tool, an unknown lambda_architecture).
"""

import argparse
from collections import defaultdict
from pathlib import Path

from bundler.build import Bundle, build
from bundler.elf import format_version
from bundler.isolated import ChildError
from bundler.runtime import RuntimeSetupError, deploy_target
from bundler.sizes import TARGET_ZIPPED, format_table, megabytes, with_trained_model
from bundler.verify import VerifyError
from shared.cli import CheckError, UsageError, run_cli
from shared.paths import APP_DIR, stage_architecture


def report(bundle: Bundle) -> str:
    by_reason: dict[str, int] = defaultdict(int)
    for removed in bundle.removed:
        by_reason[removed.why] += removed.size
    stripped = sum(by_reason.values())
    trained = with_trained_model(bundle.rows, bundle.zip_size)
    lines = [f"stripped {megabytes(stripped)} from the runtime packages; largest reasons:"]
    lines += [
        f"  {megabytes(size):>10}  {why}"
        for why, size in sorted(by_reason.items(), key=lambda kv: -kv[1])[:6]
    ]
    lines += [
        "",
        f"deployment.zip for {bundle.target.describe()}:",
        format_table(bundle.rows, bundle.zip_size),
        f"target zipped <= {megabytes(TARGET_ZIPPED)} with a trained fp32 MobileNetV2: "
        + ("met" if trained <= TARGET_ZIPPED else "missed")
        + f" ({megabytes(trained)}; this zip {megabytes(bundle.zip_size)})",
    ]
    for prefix, (version, where) in bundle.elf_summary.items():
        lines.append(
            f"highest {prefix} needed: {format_version(version or None)}  ({where or '-'})"
        )
    lines.append(f"stripped bundle run before zipping: {bundle.ran_under}")
    lines.append(f"bytecode: {bundle.bytecode} modules (what that run imported)")
    lines.append(f"package: {bundle.deployment_zip} and {bundle.sam_json}")
    lines += [f"PROBLEM: {p}" for p in bundle.problems]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/build_bundle", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--model", type=Path, help="model to ship (needs --out; default: published)"
    )
    parser.add_argument("--out", type=Path, help="build in a staged copy of the app under DIR")
    parser.add_argument("--stage", default="dev", help="chalice stage to package (default dev)")
    parser.add_argument(
        "--architecture",
        help="with --out: build for this lambda_architecture instead of the stage's",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    args = parser.parse_args(argv)
    try:
        if args.architecture and args.out is None:
            raise ValueError("--architecture needs --out: in place, the stage's value decides")
        target = deploy_target(args.architecture or stage_architecture(APP_DIR, args.stage))
        bundle = build(target, model=args.model, out=args.out)
    except (FileNotFoundError, ValueError, RuntimeSetupError) as exc:
        raise UsageError(str(exc)) from None
    except (VerifyError, ChildError) as exc:
        raise CheckError(f"the stripped bundle does not run: {exc}") from None
    print(report(bundle))
    if bundle.problems:
        raise CheckError(f"the bundle cannot deploy: {'; '.join(bundle.problems)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="scripts/build_bundle"))
