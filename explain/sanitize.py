"""User text made harmless where it is shown: terminals and spreadsheets.

- :func:`printable`: control characters (ESC, BEL, CR, …) in a title, an
  answer key or a file name would reach the terminal as commands (colours,
  cursor moves, a cleared screen).  They become visible symbols instead.
- :func:`csv_cell`: a spreadsheet runs a cell that starts with ``=``, ``+``,
  ``-``, ``@``, a tab or a carriage return as a formula (``=HYPERLINK(…)``).
  Such text cells get a leading single quote, as OWASP recommends; a cell that
  is just a number (``-0.25``) stays a number.
"""

from __future__ import annotations

import re

# C0 controls except newline and tab, DEL, C1 controls, and the bidirectional
# overrides that can make text read differently from what it is.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control pictures": ␛ for ESC, ␇ for BEL, ␍ for CR
    if code == 0x7F:
        return "\u2421"  # ␡
    return "\ufffd"


def printable(text: str) -> str:
    """``text`` with control characters shown as symbols (newlines and tabs kept).

    >>> printable("a\\x1b[31mb")
    'a␛[31mb'
    """
    return _CONTROL.sub(_picture, text)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def csv_cell(value: object) -> str:
    """A CSV cell that no spreadsheet runs as a formula (numbers stay numbers).

    >>> csv_cell("=HYPERLINK(\\"x\\")"), csv_cell("-0.25"), csv_cell("-x*w")
    ('\\'=HYPERLINK("x")', '-0.25', "'-x*w")
    """
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


__all__ = ["csv_cell", "printable"]
