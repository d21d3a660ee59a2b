"""How well does a training recipe do on photos it never saw? The holdout protocol.

    .venv/bin/python scripts/protocol.py DATA --weights W [--seeds 0 1 2] [-- FIT OPTIONS...]
    .venv/bin/python scripts/protocol.py DATA --weights W --negatives NEG --far FAR --leave-one-kind-out

For each seed, DATA (one sub-folder per class) is split 60/40 per class; ``python -m trainer.fit``
gets only the 60 as its data folder (with its default options, ``--weights W`` and whatever
follows ``--``), and ``python -m trainer.evaluate`` scores the model it exported and would serve
on the 40 it never saw. The table has, per seed and pooled: holdout accuracy, balanced accuracy,
macro-F1, the accuracy of the answer served ("unknown" counting as wrong), precision and recall
per class, the trainer's own estimate and whether it falls inside the holdout's 95% interval, and
the wall time of the training command. The split uses symbolic links under ``--work``.

"None of these", with ``--negatives NEG`` (photos of none of the classes, a sub-folder per kind):

* the trainer gets NEG whole; ``--far FAR`` (kinds NEG lacks, never trained on) is scored beside
  the holdout by every seed's model, kind by kind;
* ``--leave-one-kind-out``: for each kind K of NEG, a model trained with the other kinds scores K
  held out (fp32; the seeds of ``--loko-seeds``, default the first). The table lists every kind.

Without ``--negatives``, ``--far FAR`` still scores FAR: the figures of a model that never saw a
negative. Fits share a feature cache (``--feature-cache`` under ``--work``), so the runs after a
seed's first reuse its photos' features; the fit time shown is each seed's first run.
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
from trainer.data.folders import files_under, visible_dirs


def link(files: list[Path], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for path in files:
        (folder / path.name).symlink_to(path.resolve())


def split_folder(data: Path, out: Path, seed: int, holdout: float) -> tuple[Path, Path]:
    """``out/data`` and ``out/holdout``: per class, a seeded share of the files to the holdout."""
    for folder in visible_dirs(data):
        files = files_under(folder)
        random.Random(f"{seed}:{folder.name}").shuffle(files)
        n_hold = min(len(files) - 1, max(1, round(len(files) * holdout)))
        link(files[:n_hold], out / "holdout" / folder.name)
        link(files[n_hold:], out / "data" / folder.name)
    return out / "data", out / "holdout"


def kinds_of(negatives: Path) -> dict[str, list[Path]]:
    return {folder.name: files_under(folder) for folder in visible_dirs(negatives)}


def without(negatives: Path, kind: str, out: Path) -> tuple[Path, Path]:
    """``out/train`` (every kind of NEG but ``kind``) and ``out/held`` (only ``kind``)."""
    for name, files in kinds_of(negatives).items():
        link(files, out / ("held" if name == kind else "train") / name)
    return out / "train", out / "held"


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


def fit(
    args: argparse.Namespace,
    data: Path,
    run_dir: Path,
    seed: int,
    negatives: Path | None,
    *more: str,
) -> float:
    cmd = [sys.executable, "-m", "trainer.fit", str(data), "--run-dir", str(run_dir), *more]
    cmd += ["--seed", str(seed), "--no-progress", "--feature-cache", str(args.work / "features")]
    cmd += ["--weights", args.weights] if args.weights else []
    cmd += ["--negatives", str(negatives)] if negatives else []
    return run([*cmd, *args.fit_args], run_dir.parent / f"{run_dir.name}-fit.log")


def evaluate(run_dir: Path, holdout: Path, out: Path, negatives: Path | None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "trainer.evaluate", str(run_dir), str(holdout), "--out", str(out)]
    cmd += ["--no-progress", "--max-misclassified", "0"]
    run(
        [*cmd, *(["--negatives", str(negatives)] if negatives else [])],
        out.parent / f"{out.name}.log",
    )
    return json.loads((out / "evaluation.json").read_text())


def one_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    folder = args.work / f"seed{seed}"
    train, hold = split_folder(args.data, folder, seed, args.holdout)
    run_dir = folder / "run"
    seconds = fit(args, train, run_dir, seed, args.negatives)
    report = evaluate(run_dir, hold, folder / "holdout-eval", args.far)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    reported = metrics.get("estimate")
    acc = report["metrics"]["accuracy"]
    inside = None if not reported else acc["low"] <= reported["accuracy"]["value"] <= acc["high"]
    result = {
        "seed": seed,
        "fit_seconds": seconds,
        "holdout": report["metrics"],
        "served": report["served_answer"],
        "far": (report.get("open_set") or {}),
        "reported": reported,
        "reported_inside_holdout_interval": inside,
        "loko": {},
    }
    if args.negatives and args.leave_one_kind_out and seed in args.loko_seeds:
        for kind in kinds_of(args.negatives):
            part = folder / f"without-{kind}"
            negatives, held = without(args.negatives, kind, part)
            # fp32 alone: the rule's numbers and module are the same, the INT8 build is not needed.
            fit(args, train, part / "run", seed, negatives, "--no-int8")
            scored = evaluate(part / "run", hold, part / "eval", held)["open_set"]
            result["loko"][kind] = {
                **scored["by_kind"][kind],
                "auroc": scored["separation"]["auroc"],
            }
    return result


def pct(e: dict[str, Any] | None) -> str:
    return "-" if not e else f"{e['value']:.1%}"


def recipe_table(results: list[dict[str, Any]]) -> str:
    labels = results[0]["holdout"]["labels"]
    head = ["seed", "accuracy", "balanced", "macro-F1", "answer served (unknown)"]
    head += [f"{lb} P/R" for lb in labels] + ["trainer's estimate", "inside 95% CI", "fit s"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in results:
        h, s, t = r["holdout"], r["served"], r["reported"]
        cells = [
            str(r["seed"]),
            pct(h["accuracy"]),
            pct(h["balanced_accuracy"]),
            pct(h["macro_f1"]),
        ]
        cells.append(f"{pct(s['accuracy'])} ({pct(s['unknown'])})")
        for row in h["per_class"]:
            cells.append(f"{row['correct']}/{row['predicted']} / {row['correct']}/{row['support']}")
        cells += [f"{pct(t['accuracy'])} ({t['method']})" if t else "-"]
        cells += [str(r["reported_inside_holdout_interval"]), f"{r['fit_seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    pooled = ["pooled"]
    pooled += [f"{statistics.mean(r['holdout'][k]['value'] for r in results):.1%}"
               for k in ("accuracy", "balanced_accuracy", "macro_f1")]  # fmt: skip
    served = sum(r["served"]["accuracy"]["value"] * r["holdout"]["n"] for r in results)
    unknown = sum(r["served"]["unknown"]["value"] * r["holdout"]["n"] for r in results)
    n = sum(r["holdout"]["n"] for r in results)
    pooled.append(f"{served / n:.1%} ({unknown / n:.1%})")
    for c, _ in enumerate(labels):
        rows = [r["holdout"]["per_class"][c] for r in results]
        correct, predicted = sum(x["correct"] for x in rows), sum(x["predicted"] for x in rows)
        support = sum(x["support"] for x in rows)
        pooled.append(f"{correct / max(predicted, 1):.0%} / {correct / max(support, 1):.0%}")
    inside = sum(bool(r["reported_inside_holdout_interval"]) for r in results)
    pooled += [
        "",
        f"{inside} of {len(results)}",
        f"{statistics.mean(r['fit_seconds'] for r in results):.0f}",
    ]
    lines.append("| " + " | ".join(pooled) + " |")
    lines.append(
        "\n(accuracy, balanced and macro-F1: mean over seeds; P/R per class: correct/predicted and "
        'correct/images, pooled over seeds; the answer served counts "unknown" as wrong)'
    )
    return "\n".join(lines)


def far_table(results: list[dict[str, Any]]) -> str:
    kinds = sorted({k for r in results for k in (r["far"].get("by_kind") or {})})
    head = ["seed", *kinds, "far unknown", "holdout in-class rejected", "AUROC holdout vs far"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in results:
        by_kind, sep = r["far"]["by_kind"], r["far"]["separation"]
        cells = [str(r["seed"])]
        cells += [
            f"{round(by_kind[k]['rejected'] * by_kind[k]['n'])}/{by_kind[k]['n']}" for k in kinds
        ]
        total = sum(round(v["rejected"] * v["n"]) for v in by_kind.values())
        cells += [
            f"{total}/{sep['negatives']}",
            f"{1 - sep['in_class_accepted']:.1%}",
            f"{sep['auroc']:.3f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def loko_table(results: list[dict[str, Any]]) -> str:
    runs = [r for r in results if r["loko"]]
    kinds = sorted(runs[0]["loko"])
    lines = ["| kind left out | images (all seeds) | answered unknown | AUROC (mean) |"]
    lines.append("| --- | ---: | ---: | ---: |")
    rejected = images = 0.0
    for kind in kinds:
        rows = [r["loko"][kind] for r in runs]
        n = sum(x["n"] for x in rows)
        hit = sum(x["rejected"] * x["n"] for x in rows)
        rejected, images = rejected + hit, images + n
        auroc = statistics.mean(x["auroc"] for x in rows if x["auroc"] is not None)
        lines.append(f"| {kind} | {n} | {hit / n:.1%} | {auroc:.3f} |")
    lines.append(f"| **all kinds** | {images:.0f} | **{rejected / images:.1%}** | |")
    seeds = ", ".join(str(r["seed"]) for r in runs)
    return "\n".join(lines) + f"\n\n(leave one kind out, seed(s) {seeds})"


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
    parser.add_argument("--negatives", type=Path, help="photos of none of the classes, by kind")
    parser.add_argument("--far", type=Path, help="kinds never trained on, scored by every model")
    parser.add_argument("--leave-one-kind-out", action="store_true", help="per kind of NEG")
    parser.add_argument("--loko-seeds", type=int, nargs="+", help="default: the first seed")
    args = parser.parse_args(argv)
    args.fit_args = fit_args
    args.loko_seeds = args.loko_seeds or args.seeds[:1]
    args.work = (args.work or Path(tempfile.mkdtemp(prefix="skyclass-protocol-"))).resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    results = []
    for seed in args.seeds:
        print(f"seed {seed} ...", file=sys.stderr, flush=True)
        results.append(one_seed(args, seed))
    options = " ".join(fit_args) or "defaults"
    print(f"protocol on {args.data}: holdout {args.holdout:.0%}, trainer options: {options}")
    print(recipe_table(results))
    if args.far:
        print(f"\n{args.far} (never trained on), per kind:\n\n{far_table(results)}")
    if any(r["loko"] for r in results):
        print(f"\n{args.negatives}, each kind left out of the trainer's negatives:\n")
        print(loko_table(results))
    print(f"(runs and reports in {args.work})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
