"""The keys of a batch answer: the client's own names, made printable and unique."""

from collections.abc import Iterable

_MAX_NAME_CHARS = 255


def printable(text: str) -> str:
    """``text`` without control characters, cut to 255 characters (file names are data, never
    paths: they are only ever used as keys in the JSON answer)."""
    return "".join(ch for ch in text if ch.isprintable())[:_MAX_NAME_CHARS]


def unique_keys(bases: Iterable[str]) -> list[str]:
    """The keys as given, with ``#2``, ``#3`` ... for repeats."""
    keys: list[str] = []
    seen: dict[str, int] = {}
    for base in bases:
        seen[base] = seen.get(base, 0) + 1
        keys.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return keys
