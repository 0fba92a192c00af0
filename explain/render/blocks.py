"""The blocks of a worked solution (:mod:`explain.render.document` lays them out; every
printer prints them), and catalog messages made into inline words and math."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..i18n import Messages


# -- the blocks of a document ---------------------------------------------------------
@dataclass(frozen=True)
class Text:
    """Words (from the catalog or a problem file): always escaped by the printer."""

    text: str
    strong: bool = False


@dataclass(frozen=True)
class Math:
    """Inline math, already printed in the output's math language."""

    src: str


Inline = Text | Math
Cell = list[Inline]


@dataclass
class Heading:
    level: int
    parts: list[Inline]


@dataclass
class Paragraph:
    parts: list[Inline]
    kind: str = "body"  # body | note | label | result | alert


@dataclass(frozen=True)
class Eq:
    """``lhs = row₁ = row₂ …``; each row a list of terms ``a``, ``+ b``, ``- c``."""

    lhs: str
    rows: tuple[tuple[str, ...], ...]


@dataclass
class Equations:
    items: list[Eq]
    columns: int = 1


@dataclass
class Table:
    header: list[Cell]
    rows: list[list[Cell]]
    align: str  # one letter per column: l, c, r


@dataclass
class Figure:
    key: str  # "graph" | "plot": the printer knows the file
    caption: list[Inline]


@dataclass
class Series:
    """One loss curve: x (steps or epochs) and the loss, finite values only."""

    label: str
    x: list[float]
    y: list[float]
    diverged: bool = False


@dataclass
class Plot:
    """A line plot drawn by the output language itself (no image file needed)."""

    series: list[Series]
    xlabel: str
    ylabel: str
    log: bool
    caption: list[Inline]


@dataclass
class Facts:
    """Labelled lines (the givens): a label column and a content column."""

    rows: list[tuple[str, list[Inline]]]


Block = Heading | Paragraph | Equations | Table | Figure | Plot | Facts


@dataclass
class Document:
    title: str
    subtitle: str
    meta: str
    lang: str
    blocks: list[Block] = field(default_factory=list)


# -- from a catalog message to inline parts ------------------------------------------
def _msg(m: Messages, key: str, **fields: Any) -> list[Inline]:
    """A catalog message whose fields may be math: ``path_count(name=Math("w_1"))``."""
    maths: list[Math] = []
    plain: dict[str, Any] = {}
    for k, v in fields.items():
        if isinstance(v, Math):
            plain[k] = f"\x00{len(maths)}\x00"
            maths.append(v)
        else:
            plain[k] = v
    parts: list[Inline] = []
    for i, piece in enumerate(re.split(r"\x00(\d+)\x00", m(key, **plain))):
        if i % 2:
            parts.append(maths[int(piece)])
        elif piece:
            parts.append(Text(piece))
    return parts


def _join(items: Sequence[list[Inline]], sep: str = ", ") -> list[Inline]:
    out: list[Inline] = []
    for i, item in enumerate(items):
        if i:
            out.append(Text(sep))
        out += item
    return out
