"""``python -m trainer.fit DATA``: transfer learning with reports, checkpoints, resume and export.

The flow, top to bottom in :func:`fit`:

1. data (``trainer.data``): scan every file, group near-duplicates, split train/val/test by class
   (``split.json``); with ``--negatives``, photos of none of the classes the same way;
2. model (``trainer.model``): a torchvision backbone with a new head; fails fast if the weights
   are missing;
3. learning (``trainer.learning``), one of two regimes: the solved head (the default: a frozen
   backbone's cached features, a linear head solved with its choices cross-validated) or epochs
   (fine-tuning, an MLP head, no cached views); atomic checkpoints, ``--resume`` from ``last.pt``;
4. reports (``trainer.evaluation.run_report``): curves, data pictures, ``report.md``;
5. export (``python -m trainer.export``): the ONNX file the API serves, its checks, the one score
   of the test split by the model that will be served, and with ``--publish`` the API's copy.

From Python (a notebook, say): ``fit(TrainConfig(data="photos"), RunFlags())`` returns a
:class:`FitResult`.
"""

import argparse
import dataclasses
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
from trainer.common.files import write_json
from trainer.data.folders import discover
from trainer.data.images import NO_AUGMENT
from trainer.data.manifest import Manifest
from trainer.data.scan import write_skipped
from trainer.data.split import prepare_split
from trainer.evaluation import run_report, run_summary
from trainer.learning.checkpoint import LAST, CheckpointError, RunInfo, load_checkpoint
from trainer.learning.config import SOLVED_HEAD, RunFlags, TrainConfig
from trainer.learning.epochs import Epochs
from trainer.learning.options import option_name
from trainer.learning.run import Run
from trainer.learning.solved_head import SolvedHead
from trainer.model.classifier import Classifier, build_model

Log = Callable[[str], None]


def log(message: str) -> None:
    print(message, flush=True)


@dataclass(frozen=True)
class FitResult:
    run_dir: Path
    status: int  # the command's exit status: 0 done or stopped, 1 export failed, 130 Ctrl-C
    completed: bool  # the run finished training (every epoch, or the head solved)
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
    run = resume(flags, log) if flags.resume else start(config, flags, log, model, weights_used)
    status = run.fit()
    run_report.draw_curves(run.run_dir, run.history, run.config, run.best)
    if status != 0 or not run.done:
        return FitResult(run.run_dir, status, False)
    if run.timings:
        write_json(run.run_dir / run_report.TIMING, run.timings)
    best = run.best
    assert best is not None  # a finished run always has one
    log(f"chosen: {run_summary.chosen_line(best)}")
    if flags.no_export:
        run_report.write_report(run.run_dir, best, run.manifest, None)
        log(f"report: {run.run_dir / run_report.REPORT} (not exported: --no-export, no test score)")
        return FitResult(run.run_dir, 0, True)
    from trainer.export import export_run  # the ONNX tooling loads only when exporting

    try:
        exported = export_run(
            run.run_dir,
            checkpoint=best,
            publish=flags.publish,
            publish_to=Path(flags.publish_to) if flags.publish_to else None,
            max_misclassified=flags.max_misclassified,
            log=log,
        )
    except UsageError as exc:  # an export failure is one line; the trained run stays usable
        if flags.debug:
            raise
        print(
            f"trainer.fit: error: export failed: {one_line(exc)}; the trained run is in "
            f"{run.run_dir}; retry with: python -m trainer.export {run.run_dir}",
            file=sys.stderr,
        )
        return FitResult(run.run_dir, 1, True)
    return FitResult(run.run_dir, 0, True, exported)


def regime(config: TrainConfig) -> type[Run]:
    return SolvedHead if config.regime_name == SOLVED_HEAD else Epochs


def start(
    config: TrainConfig,
    flags: RunFlags,
    log: Log,
    model: Classifier | None = None,
    weights_used: str | None = None,
) -> Run:
    """A new run: model, clean split, run folder with split, config and data pictures."""
    root = Path(config.data).expanduser()
    # A cheap listing first: the model (and its weights) must be available before the long scan.
    labels, candidates, _ = discover(root)
    smallest = min(sum(1 for c in candidates if c.label == label) for label in labels)
    model = model or build(config, config.head_outputs(len(labels)), config.weights)
    run_dir = new_run_dir(config, flags)
    log(f"scanning {root} ...")
    prepared = prepare_split(
        root,
        seed=config.seed,
        val_fraction=config.val_fraction,
        test_fraction=config.test_share(smallest),
        duplicate_distance=config.duplicate_distance,
        negatives=config.negatives or None,
        progress=flags.progress,
    )
    manifest = prepared.manifest
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest.save(run_dir)
    write_skipped(run_dir / run_report.SKIPPED, prepared.skipped)
    write_json(run_dir / run_report.CONFIG, config.to_dict())
    info = RunInfo(
        run_id=run_dir.name,
        created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        git_commit=git_commit(),
        weights_used=weights_used or config.weights,
    )
    log(f"run folder {run_dir}; {len(manifest.items)} images, {run_summary.layout(manifest)}")
    for line in run_summary.data_lines(manifest, prepared.skipped, run_dir):
        log(line)
    run = regime(config)(config, flags, manifest, model, info, run_dir, log)
    log(run_summary.balance_line(manifest.counts()["train"], config.balance, run.balance))
    run_report.data_pictures(run_dir, manifest, run.train_items, config)
    log(run_summary.describe(config, run.device))
    return run


def resume(flags: RunFlags, log: Log) -> Run:
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
    model = build(ckpt.config, ckpt.config.head_outputs(len(manifest.labels)), "none")
    run = regime(ckpt.config)(ckpt.config, flags, manifest, model, ckpt.info, run_dir, log)
    run.restore(ckpt)
    log(f"resuming {run_dir} ({run.where()}); {run_summary.describe(ckpt.config, run.device)}")
    return run


def build(config: TrainConfig, n_labels: int, weights: str) -> Classifier:
    # The head's initial weights come from --seed, so a run is reproducible end to end.
    torch.manual_seed(config.seed)
    return build_model(config.arch, n_labels, weights, config.head, config.dropout, config.mirror)


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


# --- the command line: every config and flag field is a --flag, its help in the field's metadata;
# an option absent from the namespace was not typed, so --resume can refuse what was.


def _unfreeze(text: str) -> int:
    if text == "all":
        return -1
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of blocks or 'all', got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0 (or 'all')")
    return value


def _fraction_or_auto(text: str) -> float | None:
    if text == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction or 'auto', got {text!r}") from None


def _add(group: argparse._ArgumentGroup, f: dataclasses.Field) -> None:
    """One ``--flag`` for a dataclass field; absent from the namespace unless typed."""
    meta = dict(f.metadata)
    kwargs: dict[str, Any] = {"help": meta.pop("help"), "default": argparse.SUPPRESS, **meta}
    if "action" not in kwargs:
        if f.name == "unfreeze_last":
            kwargs["type"] = _unfreeze
        elif f.name == "test_fraction":
            kwargs["type"] = _fraction_or_auto
        else:
            kwargs["type"] = {int: int, float: float}.get(type(f.default), _type_of(f))
    group.add_argument("--" + f.name.replace("_", "-"), dest=f.name, **kwargs)


def _type_of(f: dataclasses.Field) -> Any:
    return float if "float" in str(f.type) else int if "int" in str(f.type) else str


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainer.fit",
        description="Transfer learning on an image folder (one sub-folder per class, or train/, "
        "val/, test/ inside): train, report, checkpoint, export. Two regimes: the solved head "
        "(the default: a frozen backbone's cached features, a linear head solved on them) and "
        "epochs (--unfreeze-last, --head mlp or --views 0). `python -m trainer.demo` runs it "
        "offline on a synthetic sky dataset.",
    )
    parser.add_argument("data", nargs="?", default=argparse.SUPPRESS, metavar="DATA")
    config = parser.add_argument_group("what to train (saved with the run)")
    for f in dataclasses.fields(TrainConfig):
        if f.name != "data":
            _add(config, f)
    config.add_argument(
        "--no-augment", action="store_true", default=argparse.SUPPRESS, help="no augmentation"
    )
    flags = parser.add_argument_group("how to run (may differ when resuming)")
    for f in dataclasses.fields(RunFlags):
        _add(flags, f)
    return parser


def parse_typed(argv: Sequence[str]) -> tuple[dict[str, Any], RunFlags]:
    """The config options typed (as a dict, not yet a config) and this invocation's flags."""
    typed = vars(build_parser().parse_args(argv))
    if typed.pop("no_augment", False):
        typed.update(dataclasses.asdict(NO_AUGMENT))
    flag_names = {f.name for f in dataclasses.fields(RunFlags)}
    flags = RunFlags(**{k: v for k, v in typed.items() if k in flag_names})
    return {k: v for k, v in typed.items() if k not in flag_names}, flags


def parse(argv: Sequence[str]) -> tuple[TrainConfig, RunFlags, set[str]]:
    """The config (defaults + what was typed), the flags, and the config fields typed."""
    chosen, flags = parse_typed(argv)
    return TrainConfig(**chosen), flags, set(chosen)


def main(argv: Sequence[str]) -> int:
    config, flags, typed = parse(argv)
    if flags.resume:
        if typed:
            names = ", ".join(option_name(n) for n in sorted(typed))
            raise UsageError(
                f"{names} cannot change when resuming (the run keeps its config.json); "
                "start a new run to train differently"
            )
    elif not config.data:
        raise UsageError("pass DATA (a folder with one sub-folder per class) or --resume RUN_DIR")
    return fit(config, flags).status


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="trainer.fit", usage_errors=(DecodeError,)))
