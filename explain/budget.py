"""Running a SymPy computation under a time budget.

SymPy's simplify has no time limit of its own, and a formula of a kilobyte
padded with identities can keep it busy for minutes.  In the main thread of a
Unix process (the command line and its grading workers) a timer interrupts it;
elsewhere (a library caller's thread) only the size limits that come before it
protect the caller.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class OutOfTime(Exception):
    """The computation ran past its budget."""


def within(seconds: float, compute: Callable[[], T]) -> T:
    """``compute()``, or :class:`OutOfTime` once ``seconds`` have passed."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return compute()

    def expire(signum: int, frame: object) -> None:
        raise OutOfTime

    previous = signal.signal(signal.SIGALRM, expire)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return compute()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_delay:  # someone else's timer was running: give it back
            signal.setitimer(signal.ITIMER_REAL, old_delay, old_interval)
