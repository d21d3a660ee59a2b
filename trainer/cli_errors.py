"""Bad input ends a command with one line saying what to do (exit 2), never a traceback.

Commands raise :class:`UsageError` (or one of the library errors listed in ``_EXPECTED``) for
anything the user can fix; :func:`run_cli` turns it into ``error: ...`` on stderr. ``--debug``
re-raises so the full traceback shows.
"""

import sys
from collections.abc import Callable, Sequence

from shared.decode import DecodeError
from shared.labels import LabelError
from shared.spec import SpecError
from trainer.checkpoint import CheckpointError
from trainer.model import WeightsError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell's convention for a process ended by SIGINT


class UsageError(Exception):
    """Something the user can fix; the message says how, in one line."""


_EXPECTED: tuple[type[BaseException], ...] = (
    UsageError,
    CheckpointError,
    WeightsError,
    DecodeError,
    LabelError,
    SpecError,
)


def one_line(message: str) -> str:
    return " ".join(str(message).split())


def run_cli(main: Callable[[Sequence[str]], int], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)``; expected errors become one stderr line and exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        return main(args)
    except _EXPECTED as exc:
        if debug:
            raise
        print(f"error: {one_line(getattr(exc, 'message', None) or str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
