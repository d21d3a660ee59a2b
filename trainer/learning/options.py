"""A config field as a command-line option, and the type check every option gets.

The fields of ``trainer.learning.config``'s dataclasses carry their ``--flag``'s help and argparse
details in their metadata (``trainer.fit`` builds its parser from them); :func:`check_types` holds
every field to its declared type, whoever built the object.
"""

import dataclasses
import typing
from dataclasses import field
from typing import Any

from shared.cli import UsageError


def opt(help_text: str, **argparse_kwargs: Any) -> Any:
    """A dataclass field with its command-line help (and argparse details) in its metadata."""
    default = argparse_kwargs.pop("default")
    return field(default=default, metadata={"help": help_text, **argparse_kwargs})


def option_name(field_name: str) -> str:
    """How a user typed the field: ``DATA`` or ``--weight-decay``."""
    return "DATA" if field_name == "data" else "--" + field_name.replace("_", "-")


def check_types(options: Any) -> None:
    """Every field holds its declared type (an int is taken for a float and stored as one), so a
    config built in Python (a notebook, the demo, a resumed run) fails here, in one line naming
    the option, rather than deep inside training."""
    hints = typing.get_type_hints(type(options))
    for f in dataclasses.fields(options):
        value, declared = getattr(options, f.name), hints[f.name]
        allowed = typing.get_args(declared) if typing.get_origin(declared) else (declared,)
        if value is None and type(None) in allowed:
            continue
        if float in allowed and isinstance(value, int) and not isinstance(value, bool):
            object.__setattr__(options, f.name, float(value))
            continue
        if isinstance(value, bool) and bool not in allowed:
            ok = False  # True is an int to Python, never a number of epochs to us
        else:
            ok = any(isinstance(value, t) for t in allowed if t is not type(None))
        if not ok:
            kinds = " or ".join(
                {bool: "true/false", int: "a whole number", float: "a number", str: "text"}[t]
                for t in allowed
                if t is not type(None)
            )
            raise UsageError(
                f"{option_name(f.name)} must be {kinds}, got {value!r} ({type(value).__name__})"
            )
