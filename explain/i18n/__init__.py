"""Message catalogs: every sentence a user reads, one TOML file per language.

Adding a language is adding a file ``<lang>.toml`` with the same keys as
``en.toml``; a key missing from it falls back to English.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

from ..errors import ExplainError

LANGUAGES = ("en", "zh")


@cache
def catalog(lang: str) -> dict[str, str]:
    """The messages of one language (English for keys it lacks)."""
    if lang not in LANGUAGES:
        raise ExplainError("--lang", f"unknown language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    text = resources.files(__package__).joinpath(f"{lang}.toml").read_text(encoding="utf-8")
    messages = tomllib.loads(text)
    if lang != "en":
        messages = {**catalog("en"), **messages}
    return messages


def message(key: str, lang: str = "en", /, **fields: Any) -> str:
    """The message ``key`` in ``lang``, with ``{fields}`` filled in."""
    return catalog(lang)[key].format(**fields)


class Messages:
    """A catalog bound to one language: ``m("forward_pass")``."""

    def __init__(self, lang: str = "en") -> None:
        self.lang = lang
        self._catalog = catalog(lang)

    def __call__(self, key: str, /, **fields: Any) -> str:
        return self._catalog[key].format(**fields)
