"""SIGINT and SIGTERM while ``python -m actors run`` starts, before its trio loop runs.

Python turns a SIGINT into a ``KeyboardInterrupt`` traceback wherever it lands (in
the runtime's imports, in the user's file, in a worker that has just been spawned),
and a SIGTERM kills the process with no status of its own. Until the loop's own
signal receiver takes over, :func:`interrupt_start_up` makes either end the process
quietly instead: status 130 after SIGINT (interrupted), 0 after SIGTERM (asked to
stop, and nothing ran that needs stopping). From just before ``trio.run`` the
handlers only record the signal (:func:`defer_signals`), since raising inside trio's
own machinery would break it; the loop then acts on :func:`deferred_signal`.

This module imports nothing but the standard library: ``actors/__init__.py`` calls
:func:`interrupt_start_up` before it imports the rest of the runtime.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

__all__ = [
    "StartupInterrupted",
    "defer_signals",
    "deferred_signal",
    "exit_status",
    "interrupt_start_up",
    "restore_default_signals",
    "run_as_main",
]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_deferred: list[int] = []


def exit_status(signum: int) -> int:
    """The exit status of a process that ``signum`` stopped before it ran: 130 or 0."""
    return 130 if signum == signal.SIGINT else 0


class StartupInterrupted(SystemExit):
    """SIGINT or SIGTERM arrived during start-up.

    A :class:`SystemExit`, so that the interpreter exits with :func:`exit_status` and
    no traceback wherever it is raised (even while a module imports), and so that
    ``except Exception`` in the user's file does not swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(exit_status(signum))
        self.signum = signum


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise StartupInterrupted(signum)


def _defer(signum: int, frame: FrameType | None) -> None:
    _deferred.append(signum)


def interrupt_start_up() -> None:
    """From now on SIGINT and SIGTERM raise :class:`StartupInterrupted`."""
    for signum in _SIGNALS:
        signal.signal(signum, _interrupt)


def defer_signals() -> None:
    """From now on SIGINT and SIGTERM are only recorded, for :func:`deferred_signal`
    (which forgets those recorded before).

    Call it just before ``trio.run``: it also keeps trio from installing its own
    ``KeyboardInterrupt`` delivery, which it does only over Python's default handler.
    """
    _deferred.clear()
    for signum in _SIGNALS:
        signal.signal(signum, _defer)


def deferred_signal() -> int | None:
    """The first signal recorded since :func:`defer_signals`, if any."""
    return _deferred[0] if _deferred else None


def restore_default_signals() -> None:
    """Where our handlers are installed, Python's own again: SIGINT raises
    ``KeyboardInterrupt``, SIGTERM kills. Handlers of someone else's are kept."""
    ours = (_interrupt, _defer)
    if signal.getsignal(signal.SIGINT) in ours:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGTERM) in ours:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def run_as_main() -> bool:
    """Whether this interpreter is ``python -m actors`` importing its package to run it.

    ``sys.argv[0]`` is ``"-m"`` only while ``-m`` locates its module (so not in a
    program that imports actors later); ``sys.orig_argv`` says which module that is.
    """
    if sys.argv[:1] != ["-m"]:
        return False
    args = sys.orig_argv
    for i, arg in enumerate(args):
        if arg == "-m":
            return args[i + 1 : i + 2] == ["actors"]
        if arg.startswith("-m"):  # `python -mactors`
            return arg == "-mactors"
    return False


# `python -m actors` imports this package before it runs anything of ours, and the
# package imports the runtime first (trio, redis...): handle signals from here on.
if run_as_main():
    interrupt_start_up()
