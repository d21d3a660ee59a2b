"""Measure the service and the trainer against their baselines, in one run.

    .venv/bin/python scripts/bench.py                 # everything, full counts (a few minutes)
    .venv/bin/python scripts/bench.py --quick         # tiny counts: checks that it all runs
    .venv/bin/python scripts/bench.py --sections cold_start warm_request --requests 300
    .venv/bin/python scripts/bench.py --model runs/RUN_DIR   # a trained run instead of random weights

Sections: cold start, warm request, model only, bundle, training, memory (scripts/benchlib/). Every
comparison is measured in this run, on this machine; each row prints the figure, its baseline,
the ratio and whether the target is met. The table goes to stdout (Markdown), progress to stderr,
everything (raw timings included) to ``--json`` (default ``bench-results.json``, git-ignored).
Exit status: 0 when every section ran (missed targets included), 1 when a section failed.
"""

import argparse
import dataclasses
import os
import resource
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.benchlib.inputs import Inputs, make_models, write_images  # noqa: E402
from scripts.benchlib.results import (  # noqa: E402
    Section,
    format_machine,
    format_table,
    machine,
    write_json,
)
from scripts.benchlib.sections import QUICK, SECTIONS, Settings  # noqa: E402

DEFAULT_JSON = ROOT / "bench-results.json"
BUSY_LOAD = (
    1.0  # 1-minute load average above which the run is flagged as measured on a busy machine
)
# --flag -> Settings field, for the counts that can be set one by one.
COUNT_FLAGS = {
    "repeats": "cold starts per side",
    "requests": "warm requests per image and side",
    "model_repeats": "runs per model-only cell",
    "memory_requests": "requests of the memory run",
    "epochs": "training epochs per trainer run",
    "train_per_class": "synthetic training images per class",
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts (smoke test)")
    for name, what in COUNT_FLAGS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, metavar="N", help=what)
    parser.add_argument(
        "--sections", nargs="+", choices=tuple(SECTIONS), default=list(SECTIONS), metavar="NAME",
        help=f"run only these ({', '.join(SECTIONS)})",
    )  # fmt: skip
    parser.add_argument(
        "--model", type=Path, metavar="PATH",
        help="a run folder or exported model.onnx (default: a random-weights model made here)",
    )  # fmt: skip
    parser.add_argument(
        "--jobs", type=int, default=1, metavar="N",
        help="run N sections at a time: faster, but the figures are then meaningless (smoke tests)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    args = parser.parse_args(argv)
    for name in (*COUNT_FLAGS, "jobs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def settings_from(args: argparse.Namespace) -> Settings:
    base = QUICK if args.quick else Settings()
    given = {name: getattr(args, name) for name in COUNT_FLAGS if getattr(args, name) is not None}
    return dataclasses.replace(base, **given)


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the measurements run in children)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def busy_warning(info: dict) -> str | None:
    """Say so when other work shared the cores: every figure is then inflated and scattered."""
    load = max(info["loadavg_start"][0], info["loadavg_end"][0])
    if load < BUSY_LOAD:
        return None
    return (
        f"WARNING: the machine was busy (1-minute load average up to {load:.1f} on "
        f"{info['usable_cores']} cores). Every figure is inflated and noisy, multi-threaded ones "
        "most: OpenMP threads (torch's) stall at every barrier when the cores are shared, so the "
        "2-thread torch baselines suffer more than onnxruntime and the ratios flatter ours. "
        "Compare the 1-thread model-only rows, and re-run on a quiet machine for real figures."
    )


def run_section(name: str, inputs: Inputs, settings: Settings, work: Path) -> Section:
    """One section; a failure is recorded in the section (and the others still run)."""
    log(f"{name} ...")
    started, cpu = time.perf_counter(), _cpu_seconds()
    try:
        section = SECTIONS[name](inputs, settings, work)
    except Exception as exc:  # noqa: BLE001 - reported in the output, other sections go on
        log(traceback.format_exc())
        section = Section(name.replace("_", " "), notes=[f"error: {type(exc).__name__}: {exc}"])
        section.details["error"] = f"{type(exc).__name__}: {exc}"
    section.details["seconds"] = round(time.perf_counter() - started, 1)
    # Process-wide counters: with --jobs > 1 they include whatever ran alongside.
    section.details["cpu_seconds"] = round(_cpu_seconds() - cpu, 1)
    log(f"{name} done in {section.details['seconds']} s")
    return section


def run_sections(
    names: list[str], inputs: Inputs, settings: Settings, work: Path, jobs: int
) -> dict[str, Section]:
    """The sections one after the other, or ``jobs`` at a time (only for smoke tests: sections
    running together compete for the cores, so their figures mean nothing)."""
    if jobs == 1:
        return {name: run_section(name, inputs, settings, work) for name in names}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {name: pool.submit(run_section, name, inputs, settings, work) for name in names}
        return {name: future.result() for name, future in futures.items()}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    settings = settings_from(args)
    info = machine()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="skyclass-bench-") as tmp:
        work = Path(tmp)
        log("preparing the models and images ...")
        models = make_models(work / "models", args.model, settings.calibration)
        images, events = write_images(work / "images")
        inputs = Inputs(models, images, events)
        sections = run_sections(args.sections, inputs, settings, work, args.jobs)
    info["loadavg_end"] = list(os.getloadavg())
    rows = [row for section in sections.values() for row in section.rows]
    failed = [name for name, s in sections.items() if "error" in s.details]
    with_target = [r for r in rows if r.met is not None]
    missed = [f"{r.section}: {r.name}" for r in with_target if not r.met]

    print(format_machine(info))
    print(f"model: {models.origin}")
    print(f"counts: {dataclasses.asdict(settings)}")
    busy = busy_warning(info)
    if busy:
        print(busy)
    if args.jobs > 1:
        print(f"WARNING: --jobs {args.jobs}: sections ran concurrently; the figures are not valid")
    print()
    print(format_table(rows))
    for name, section in sections.items():
        for note in section.notes:
            print(f"- {name}: {note}")
    print(f"\ntargets met: {len(with_target) - len(missed)} of {len(with_target)}")
    for item in missed:
        print(f"  missed: {item}")
    for name in failed:
        print(f"  FAILED section: {name}: {sections[name].details['error']}")

    document = {
        "machine": info,
        "model": models.origin,
        "settings": {**dataclasses.asdict(settings), "jobs": args.jobs},
        "seconds": round(time.perf_counter() - started, 1),
        "sections": {name: s.to_dict() for name, s in sections.items()},
        "busy_warning": busy,
        "summary": {
            "targets": len(with_target),
            "met": len(with_target) - len(missed),
            "missed": missed,
            "failed_sections": failed,
        },
    }
    log(f"wrote {write_json(args.json, document)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
