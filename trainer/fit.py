"""``python -m trainer.fit DATA``: transfer learning with reports, checkpoints, resume and export.

The flow, top to bottom in :func:`fit`: data (scan, near-duplicate groups, a stratified
train/val/test split in ``split.json``) -> model (torchvision backbone with fresh head; fails fast
if weights are missing) -> the epoch loop (``trainer.training``: best epoch on val, atomic
checkpoints) -> reports -> export (``trainer.export``: temperature, parity, INT8 gate on val, and
the one score of the test split, by the model that will be served). ``--resume RUN_DIR`` rebuilds
the same state from ``last.pt``; Ctrl-C keeps the last completed epoch and says how to continue.

From Python (a notebook, say): ``fit(TrainConfig(data="photos"), RunFlags())`` returns a
:class:`FitResult`.
"""

import datetime as dt
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from shared.cli import UsageError, one_line, run_cli
from shared.decode import DecodeError
from shared.paths import REPO
from trainer import reports
from trainer.checkpoint import BEST, LAST, CheckpointError, RunInfo, load_checkpoint
from trainer.cleaning import write_skipped
from trainer.config import RunFlags, TrainConfig, parse
from trainer.data import discover, prepare_split
from trainer.manifest import Manifest
from trainer.model import Classifier, build_model
from trainer.training import FEATURES, Training

Log = Callable[[str], None]


def log(message: str) -> None:
    print(message, flush=True)


@dataclass(frozen=True)
class FitResult:
    run_dir: Path
    status: int  # the command's exit status: 0 done or stopped, 1 export failed, 130 Ctrl-C
    completed: bool  # every epoch ran
    export: Any = None  # trainer.export.ExportResult when the run was exported


def fit(
    config: TrainConfig,
    flags: RunFlags,
    *,
    log: Log = log,
    model: Classifier | None = None,
    weights_used: str | None = None,
) -> FitResult:
    """Train a new run (or resume ``flags.resume``), write its reports, export it."""
    training = (
        resume(flags, log) if flags.resume else start(config, flags, log, model, weights_used)
    )
    run_dir = training.run_dir
    status = training.fit()
    completed = status == 0 and training.done
    if not completed:
        return FitResult(run_dir, status, False)
    reports.write_history(run_dir, training.history, training.config.select)
    if training.timings:
        reports.write_json(run_dir / reports.TIMING, training.timings)
    best = load_checkpoint(run_dir / BEST)
    chosen = (
        f"L2 {best.weight_decay:g} by cross-validation (out-of-fold)"
        if best.config.solved
        else f"epoch {best.best_epoch} on val"
    )
    log(f"chosen: {chosen}: " + ", ".join(f"{k} {v:.3f}" for k, v in best.val_metrics.items()))
    if flags.no_export:
        reports.write_report(run_dir, best, training.manifest, training.balance, None)
        log(f"report: {run_dir / reports.REPORT} (not exported: --no-export, no test score)")
        return FitResult(run_dir, 0, True)
    from trainer.export import export_run  # the ONNX tooling loads only when exporting

    try:
        target = Path(flags.publish_to) if flags.publish_to else None
        exported = export_run(
            run_dir,
            publish=flags.publish,
            publish_to=target,
            max_misclassified=flags.max_misclassified,
            log=log,
        )
    except UsageError as exc:  # an export failure is one line; the trained run stays usable
        if flags.debug:
            raise
        print(
            f"trainer.fit: error: export failed: {one_line(exc)}; the trained run is in "
            f"{run_dir}; retry with: python -m trainer.export {run_dir}",
            file=sys.stderr,
        )
        return FitResult(run_dir, 1, True)
    return FitResult(run_dir, 0, True, exported)


def start(
    config: TrainConfig,
    flags: RunFlags,
    log: Log,
    model: Classifier | None = None,
    weights_used: str | None = None,
) -> Training:
    """A new run: model, clean split, run folder with split, config and data pictures."""
    root = Path(config.data).expanduser()
    # A cheap listing first: the model (and its weights) must be available before the long scan.
    labels, _, _ = discover(root)
    # With negatives the head gets one more output: the background class, "none of these".
    model = model or build(config, len(labels) + bool(config.negatives), config.weights)
    run_dir = new_run_dir(config, flags)
    log(f"scanning {root} ...")
    prepared = prepare_split(
        root,
        seed=config.seed,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        duplicate_distance=config.duplicate_distance,
        negatives=config.negatives or None,
        progress=flags.progress,
    )
    manifest = prepared.manifest
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest.save(run_dir)
    write_skipped(run_dir / reports.SKIPPED, prepared.skipped)
    reports.write_json(run_dir / reports.CONFIG, config.to_dict())
    info = RunInfo(
        run_id=run_dir.name,
        created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        git_commit=git_commit(),
        weights_used=weights_used or config.weights,
    )
    log(f"run folder {run_dir}; {len(manifest.items)} images, {reports.layout(manifest)}")
    if prepared.skipped:
        log(f"skipped {len(prepared.skipped)} file(s) (undecodable or leaked copies): "
            f"see {run_dir / reports.SKIPPED}")  # fmt: skip
    if manifest.duplicates:
        log(f"{len(manifest.duplicates)} group(s) of near-duplicate files, each kept in one split "
            "(listed in split.json and report.md)")  # fmt: skip
    for note in manifest.notes:
        log(f"note: {note}")
    if manifest.negatives:
        counts = {
            s: sum(1 for n in manifest.negatives if n.split == s) for s in ("train", "val", "test")
        }
        log(f"negatives (none of the classes): {counts['train']} train, {counts['val']} val, "
            f"{counts['test']} test, from {manifest.negatives_root}")  # fmt: skip
    log(reports.class_table(manifest.counts()))
    training = Training(config, flags, manifest, model, info, run_dir, log)
    log(reports.balance_line(manifest.counts()["train"], config.balance, training.balance))
    reports.data_pictures(run_dir, manifest, training.train_set, config)
    log(reports.describe(config, training.device))
    return training


def resume(flags: RunFlags, log: Log) -> Training:
    """Rebuild a run from its ``last.pt``: its own config, this invocation's flags."""
    run_dir = Path(flags.resume or "")
    if not run_dir.is_dir():
        raise UsageError(f"--resume {run_dir}: no such run folder")
    ckpt = load_checkpoint(run_dir / LAST)
    try:
        manifest = Manifest.load(run_dir)
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"{run_dir}: split.json is missing or unreadable ({exc})") from None
    if manifest.sha256() != ckpt.split_sha256:
        raise CheckpointError(f"{run_dir}: split.json does not match the checkpoint")
    missing = [str(p) for split in ("train", "val") for p, _ in manifest.split(split)]
    missing += [str(p) for split in ("train", "val") for p in manifest.negative_split(split)]
    missing = [p for p in missing if not Path(p).is_file()]
    if missing:
        raise UsageError(
            f"{len(missing)} image(s) of this run are gone, e.g. {missing[0]}; restore them to resume"
        )
    # The weights come from the checkpoint, so nothing is downloaded on resume.
    model = build(ckpt.config, len(manifest.labels) + bool(ckpt.config.negatives), "none")
    training = Training(ckpt.config, flags, manifest, model, ckpt.info, run_dir, log)
    training.restore(ckpt)
    if training.convex:
        cached = len(list((run_dir / FEATURES).glob("view-*.pt")))
        where = (
            "head solved"
            if training.done
            else f"{cached} of {1 + ckpt.config.views} feature views cached"
        )
    else:
        where = f"after epoch {training.epoch} of {ckpt.config.epochs}"
    log(f"resuming {run_dir} ({where}); {reports.describe(ckpt.config, training.device)}")
    return training


def build(config: TrainConfig, n_labels: int, weights: str) -> Classifier:
    # The head's initial weights come from --seed, so a run is reproducible end to end.
    torch.manual_seed(config.seed)
    return build_model(config.arch, n_labels, weights, head=config.head, dropout=config.dropout)


def new_run_dir(config: TrainConfig, flags: RunFlags) -> Path:
    if flags.run_dir:
        run_dir = Path(flags.run_dir)
        if (run_dir / LAST).exists():
            raise UsageError(
                f"{run_dir} already holds a run; continue it with --resume {run_dir} "
                "or pick another --run-dir"
            )
        return run_dir
    stamp = f"{dt.datetime.now():%Y%m%d-%H%M%S}-{config.arch}"
    run_dir, n = Path(flags.out) / stamp, 2
    while run_dir.exists():
        run_dir, n = Path(flags.out) / f"{stamp}-{n}", n + 1
    return run_dir


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def main(argv: Sequence[str]) -> int:
    config, flags, typed = parse(argv)
    if flags.resume:
        if typed:
            names = ", ".join(
                "DATA" if n == "data" else "--" + n.replace("_", "-") for n in sorted(typed)
            )
            raise UsageError(
                f"{names} cannot change when resuming (the run keeps its config.json); "
                "start a new run to train differently"
            )
    elif not config.data:
        raise UsageError("pass DATA (a folder with one sub-folder per class) or --resume RUN_DIR")
    return fit(config, flags).status


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="trainer.fit", usage_errors=(DecodeError,)))
