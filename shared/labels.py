"""Class labels: the default set and the rules every label list must follow.

The label order of a trained model comes from its data (sorted folder names, as ImageFolder does)
and travels inside the exported model; ``DEFAULT_LABELS`` is only what the demo and docs assume.
"""

from collections.abc import Iterable

DEFAULT_LABELS: tuple[str, ...] = (
    "Flying Birds",
    "Large QuadCopters",
    "Small QuadCopters",
    "Winged Drones",
)


# The label of an answer that is none of the classes; no class may be called this.
UNKNOWN = "unknown"


class LabelError(ValueError):
    """A label list that cannot describe a classifier's outputs."""


def validate_labels(labels: Iterable[str]) -> tuple[str, ...]:
    """Return ``labels`` as a tuple, or raise :class:`LabelError` saying what is wrong."""
    out = tuple(labels)
    if len(out) < 2:
        raise LabelError(f"a classifier needs at least two labels, got {len(out)}: {list(out)}")
    for label in out:
        if not isinstance(label, str) or not label.strip():
            raise LabelError(f"labels must be non-empty strings, got {label!r}")
    if any(label.strip().lower() == UNKNOWN for label in out):
        raise LabelError(f"{UNKNOWN!r} is reserved for images that are none of the classes")
    duplicates = sorted({label for label in out if out.count(label) > 1})
    if duplicates:
        raise LabelError(f"labels must be unique; repeated: {duplicates}")
    return out
