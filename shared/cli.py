"""How every command ends: one line on stderr saying what went wrong and what to do.

Exit 0 done, 1 a check failed (the input was fine, the result was not: a parity gate, a size
limit), 2 bad input the user can fix, 130 interrupted. ``--debug`` shows the traceback instead.
Used by ``trainer.fit``, ``trainer.export``, ``trainer.prepare``, ``trainer.evaluate`` and the
bundler, so they all read the same.
"""

import sys
from collections.abc import Callable, Sequence

EXIT_CHECK = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell's convention for a process ended by SIGINT


class UsageError(Exception):
    """Something the user can fix; the message says how, in one line."""


class CheckError(Exception):
    """The command ran on good input but its result failed a check; the message has the numbers."""


def one_line(message: object) -> str:
    return " ".join(str(message).split())


def run_cli(
    main: Callable[[list[str]], int],
    argv: Sequence[str] | None = None,
    *,
    prog: str,
    usage_errors: tuple[type[BaseException], ...] = (),
    check_errors: tuple[type[BaseException], ...] = (),
) -> int:
    """Run ``main(argv)``; expected errors become ``PROG: error: ...`` on stderr (argparse's own
    form, so a bad flag reads the same) and an exit code.

    ``usage_errors`` and ``check_errors`` add a command's library errors to :class:`UsageError`
    (exit 2) and :class:`CheckError` (exit 1); a class in both counts as a failed check.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        return main(args)
    except (CheckError, *check_errors, UsageError, *usage_errors) as exc:
        if debug:
            raise
        code = EXIT_CHECK if isinstance(exc, (CheckError, *check_errors)) else EXIT_USAGE
        message = one_line(getattr(exc, "message", None) or exc)
        print(f"{prog}: error: {message}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
