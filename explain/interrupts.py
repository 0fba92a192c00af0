"""Holding Ctrl-C and SIGTERM while native code must not be torn.

Python raises KeyboardInterrupt at whatever bytecode runs when SIGINT arrives.
During ``import torch`` that is often a Python function that torch's C++ start-up
called through pybind11, and the exception then crosses C++: we saw the process
die of ``std::terminate`` (exit -6), or print "interrupted" and still die of
SIGINT at exit (-2), instead of stopping with the exit code 130 that the command
line promises.  So the import runs with the two signals held: one that arrives
meanwhile is delivered the moment the import is done, in plain Python, where it
becomes KeyboardInterrupt (or the command line's SIGTERM exception) and every
``finally`` and cleanup runs.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_HELD = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the block; one that arrived is delivered when it ends.

    Blocking the signals with a thread mask would not do: NumPy's BLAS threads,
    started before, would take them.  Instead the handlers only take note during
    the block, and the first signal noted is raised again once the previous
    handlers are back.  Only the main thread may set handlers, so elsewhere this
    does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []

    def take_note(signum: int, frame: object) -> None:
        arrived.append(signum)

    previous = {number: signal.signal(number, take_note) for number in _HELD}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if arrived:
            signal.raise_signal(arrived[0])


def import_torch() -> Any:
    """``import torch``, with Ctrl-C held until its native start-up is over.

    Raises ImportError when PyTorch is not installed, as the import does.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch
    with held():
        import torch
    return torch
