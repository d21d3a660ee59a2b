"""``python -m trainer.fit``'s command line, built from the config's own fields: every field of
:class:`TrainConfig` and :class:`RunFlags` is a ``--flag`` with the help in its metadata, and an
option absent from the namespace was not typed (so ``--resume`` can refuse what was)."""

import argparse
import dataclasses
from collections.abc import Sequence
from typing import Any

from trainer.data.augment import NO_AUGMENT
from trainer.learning.config import RunFlags, TrainConfig


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


def _add(group: argparse._ArgumentGroup, f: dataclasses.Field) -> None:
    """One ``--flag`` for a dataclass field; absent from the namespace unless typed."""
    meta = dict(f.metadata)
    kwargs: dict[str, Any] = {"help": meta.pop("help"), "default": argparse.SUPPRESS, **meta}
    if "action" not in kwargs:
        if f.name == "unfreeze_last":
            kwargs["type"] = _unfreeze
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
