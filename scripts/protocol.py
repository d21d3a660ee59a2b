"""How well does a training recipe do on photos it never saw? The holdout protocol.

    .venv/bin/python scripts/protocol.py DATA --weights W [--seeds 0 1 2] [-- FIT OPTIONS...]

For each seed, DATA (one sub-folder per class) is split 60/40 per class; ``python -m trainer.fit``
gets only the 60 as its data folder (with its default options, ``--weights W`` and whatever
follows ``--``), and ``python -m trainer.evaluate`` scores the model it exported and would serve
on the 40 it never saw. The table has, per seed and on average: holdout accuracy, balanced
accuracy and recall per class, the trainer's own test figure and whether it falls inside the
holdout's 95% interval, and the wall time of the training command. Use it to compare recipes:
pass the options after ``--``. The split uses symbolic links under ``--work``; nothing is copied.

With ``--negatives NEG`` (photos of none of the classes), NEG is split in halves by a fixed seed,
per kind: the trainer gets one half (``--negatives``) and ``trainer.evaluate`` scores the other
half beside the holdout, so the table adds AUROC, the held-out negatives answered "unknown" and
the held-out in-class photos rejected. ``--no-train-negatives`` keeps the first half from the
trainer: the same figures for a model that never saw a negative.
"""

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from shared.paths import REPO


def split_folder(data: Path, out: Path, seed: int, holdout: float) -> tuple[Path, Path]:
    """``out/data`` and ``out/holdout``: per class, a seeded share of the files to the holdout."""
    train_root, hold_root = out / "data", out / "holdout"
    for folder in sorted(p for p in data.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        random.Random(f"{seed}:{folder.name}").shuffle(files)
        n_hold = min(len(files) - 1, max(1, round(len(files) * holdout)))
        for k, path in enumerate(files):
            target = (hold_root if k < n_hold else train_root) / folder.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path.resolve())
    return train_root, hold_root


def halves(negatives: Path, out: Path) -> tuple[Path, Path]:
    """``out/negatives-train`` and ``out/negatives-holdout``: each kind split in two, fixed seed."""
    first, second = out / "negatives-train", out / "negatives-holdout"
    kinds: dict[str, list[Path]] = {}
    for path in sorted(
        p for p in negatives.rglob("*") if p.is_file() and not p.name.startswith(".")
    ):
        rel = path.relative_to(negatives)
        kinds.setdefault(rel.parts[0] if len(rel.parts) > 1 else "", []).append(path)
    for kind, files in sorted(kinds.items()):
        random.Random(f"negatives:{kind}").shuffle(files)
        for k, path in enumerate(files):
            target = (first if k % 2 == 0 else second) / kind / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path.resolve())
    return first, second


def run(cmd: list[str], log_path: Path) -> float:
    """Run a command with its output in ``log_path``; return its wall seconds."""
    start = time.perf_counter()
    with log_path.open("w") as log:
        done = subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log_path.read_text().strip().splitlines()[-5:]
        raise SystemExit(
            f"protocol: {' '.join(cmd[:4])} ... failed ({log_path}):\n" + "\n".join(tail)
        )
    return time.perf_counter() - start


def one_seed(args: argparse.Namespace, seed: int, work: Path) -> dict[str, Any]:
    folder = work / f"seed{seed}"
    train, hold = split_folder(args.data, folder, seed, args.holdout)
    run_dir = folder / "run"
    fit = [sys.executable, "-m", "trainer.fit", str(train), "--run-dir", str(run_dir)]
    fit += ["--seed", str(seed), "--no-progress", *args.fit_args]
    if args.weights:
        fit += ["--weights", args.weights]
    evaluate = [sys.executable, "-m", "trainer.evaluate", str(run_dir), str(hold)]
    if args.negatives:
        neg_train, neg_hold = halves(args.negatives, folder)
        if args.train_negatives:
            fit += ["--negatives", str(neg_train)]
        evaluate += ["--negatives", str(neg_hold)]
    seconds = run(fit, folder / "fit.log")
    run([*evaluate, "--out", str(folder / "holdout-eval"), "--no-progress"], folder / "eval.log")
    report = json.loads((folder / "holdout-eval" / "evaluation.json").read_text())
    holdout = report["metrics"]
    reported = json.loads((run_dir / "metrics.json").read_text()).get("test")
    acc = holdout["accuracy"]
    inside = None if not reported else acc["low"] <= reported["accuracy"]["value"] <= acc["high"]
    return {
        "seed": seed,
        "fit_seconds": seconds,
        "open_set": (report.get("open_set") or {}).get("separation"),
        "holdout": holdout,
        "reported_test": reported,
        "reported_inside_holdout_interval": inside,
    }


def table(results: list[dict[str, Any]]) -> str:
    labels = results[0]["holdout"]["labels"]
    head = ["seed", "accuracy", "balanced", *(f"recall {lb}" for lb in labels)]
    head += ["trainer's test accuracy", "inside holdout 95% CI", "fit s"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]

    def recall(r: dict[str, Any], label: str) -> str:
        row = next(c for c in r["holdout"]["per_class"] if c["label"] == label)
        return f"{row['correct']}/{row['support']}"

    for r in results:
        h, t = r["holdout"], r["reported_test"]
        cells = [
            str(r["seed"]),
            f"{h['accuracy']['value']:.1%}",
            f"{h['balanced_accuracy']['value']:.1%}",
        ]
        cells += [recall(r, lb) for lb in labels]
        cells += [
            f"{t['accuracy']['value']:.1%}" if t else "-",
            str(r["reported_inside_holdout_interval"]),
        ]
        cells.append(f"{r['fit_seconds']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    mean = ["mean"]
    for key in ("accuracy", "balanced_accuracy"):
        mean.append(f"{statistics.mean(r['holdout'][key]['value'] for r in results):.1%}")
    for lb in labels:
        rows = [next(c for c in r["holdout"]["per_class"] if c["label"] == lb) for r in results]
        mean.append(f"{sum(c['correct'] for c in rows)}/{sum(c['support'] for c in rows)}")
    tests = [r["reported_test"]["accuracy"]["value"] for r in results if r["reported_test"]]
    mean += [f"{statistics.mean(tests):.1%}" if tests else "-", "", ""]
    mean[-1] = f"{statistics.mean(r['fit_seconds'] for r in results):.0f}"
    lines.append("| " + " | ".join(mean) + " |")
    if results[0]["open_set"]:
        lines += ["", open_set_table(results)]
    return "\n".join(lines)


def open_set_table(results: list[dict[str, Any]]) -> str:
    head = ["seed", "held-out negatives unknown", "held-out in-class rejected", "AUROC"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    rows = [(r["seed"], r["open_set"]) for r in results]
    for seed, o in rows:
        lines.append(
            f"| {seed} | {o['negatives_rejected']:.1%} | {1 - o['in_class_accepted']:.1%} | "
            f"{o['auroc']:.3f} |"
        )
    mean = [
        statistics.mean(o["negatives_rejected"] for _, o in rows),
        statistics.mean(1 - o["in_class_accepted"] for _, o in rows),
        statistics.mean(o["auroc"] for _, o in rows),
    ]
    lines.append(f"| mean | {mean[0]:.1%} | {mean[1]:.1%} | {mean[2]:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    fit_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a labelled folder (one sub-folder per class)")
    parser.add_argument("--weights", help="passed to trainer.fit (default: its own, imagenet)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--holdout", type=float, default=0.4, help="share held out (0.4)")
    parser.add_argument("--work", type=Path, help="where splits and runs go (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--negatives", type=Path, help="photos of none of the classes (halved)")
    parser.add_argument(
        "--train-negatives", action=argparse.BooleanOptionalAction, default=True,
        help="give the first half of --negatives to the trainer (default yes)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.fit_args = fit_args
    work = args.work or Path(tempfile.mkdtemp(prefix="skyclass-protocol-"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for seed in args.seeds:
        print(f"seed {seed} ...", file=sys.stderr, flush=True)
        results.append(one_seed(args, seed, work))
    print(
        f"protocol on {args.data}: holdout {args.holdout:.0%}, trainer options {fit_args or 'defaults'}"
    )
    print(table(results))
    print(f"(runs and reports in {work})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
