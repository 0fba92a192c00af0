"""The one exception type users see.

Bad input is a value for users, not a crash: every error names where it happened
(the file, the key) and why, and the command line prints it and exits with code 2.
"""

from __future__ import annotations


class ExplainError(Exception):
    """Bad input: a problem file, an expression, an answers file or an option.

    ``where`` is a human-readable location such as ``"net.toml: [forward] in_h1"``;
    ``reason`` says what is wrong with it.
    """

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}" if where else reason)


class VerificationFailed(ExplainError):
    """The derivation disagrees with its independent checks: nothing may build on it.

    Not bad input but a mismatch, so the command line exits with code 1.
    """

    exit_code = 1


def located(source: str, key: str) -> str:
    """Join a file (or other source) and a key into the ``where`` of an error."""
    if source and key:
        return f"{source}: {key}"
    return source or key
