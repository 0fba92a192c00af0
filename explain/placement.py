"""Problem files read as the user meant: keys that TOML put in the wrong table.

In TOML every key after a ``[table]`` header belongs to that table, so a
``loss = "E"`` written below ``[forward]`` silently becomes a stage named
``loss``, and ``reduction = "mean"`` below ``[train]`` becomes a training
setting.  These checks run on the raw file, before it is validated, and say
where the key belongs; they also warn about stages the loss never uses.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any


from .errors import ExplainError
from .i18n import message

#: Keys that only mean something at the top of a problem file.
TOP_ONLY = ("title", "description", "seed", "loss", "reduction")


class ProblemWarning(UserWarning):
    """Something in a problem file that is allowed but probably not meant."""


def check_placement(raw: Mapping[str, Any], where: Callable[[str], str]) -> None:
    """Refuse a top-level key that TOML's table scoping put inside a table."""
    for table in ("forward", "cost", "train", "values", "parameters", "data"):
        content = raw.get(table)
        if not isinstance(content, Mapping):
            continue
        stage_names = {k for k in content if k not in TOP_ONLY}
        for key, value in content.items():
            if key in TOP_ONLY and _misplaced(table, key, value, stage_names):
                raise ExplainError(where(f"[{table}] {key}"), message("problem_key_at_top", key=key, table=table))


def _misplaced(table: str, key: str, value: Any, stage_names: set[str]) -> bool:
    if table == "train":
        return True  # none of them is a training setting
    if key == "reduction":
        return value in ("sum", "mean")
    if key == "loss":
        # loss = "E" names a stage; a real stage called loss has a formula.
        return isinstance(value, str) and (value.strip() in stage_names or table != "forward")
    if key == "seed":
        return table in ("forward", "cost")
    return isinstance(value, str)  # title, description: prose, not a formula or a value


def warn_unreached(stages: Iterable[Any], loss: str, source: str, quiet: Collection[str] = ()) -> None:
    """Warn (not an error) about stages the loss does not depend on, except the ``quiet`` ones
    (stages the reader made itself, which the user never wrote)."""
    stages = list(stages)
    uses = {s.name: {sym.name for sym in s.expr.free_symbols} for s in stages}
    needed, todo = set(), [loss]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        todo.extend(uses.get(name, ()))
    unused = [s.name for s in stages if s.name not in needed and s.name not in quiet]
    if unused:
        warnings.warn(message("problem_unreached", source=source, stages=", ".join(unused), loss=loss),
                      ProblemWarning, stacklevel=3)


__all__ = ["ProblemWarning", "TOP_ONLY", "check_placement", "warn_unreached"]
