"""Message catalogs: every language has every English key, with the same fields."""

from __future__ import annotations

import string
import tomllib
from importlib import resources

import pytest

from explain.i18n import LANGUAGES, Messages, catalog


def raw(lang: str) -> dict[str, str]:
    """The catalog file itself, without the English fallback."""
    text = resources.files("explain.i18n").joinpath(f"{lang}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_every_english_key_is_translated(lang: str) -> None:
    missing = sorted(set(raw("en")) - set(raw(lang)))
    assert not missing, f"{lang}.toml lacks {len(missing)} key(s): {', '.join(missing)}"


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_translations_have_no_stray_keys_and_the_same_fields(lang: str) -> None:
    en, other = raw("en"), raw(lang)
    assert not sorted(set(other) - set(en)), "keys that English does not have"
    wrong = {k: (fields(en[k]), fields(v)) for k, v in other.items() if k in en and fields(en[k]) != fields(v)}
    assert not wrong, f"fields differ from English: {wrong}"


def test_chinese_is_chinese() -> None:
    m = Messages("zh")
    assert m("backward_pass") == "反向传播"
    assert m("forward_pass") == "前向传播"
    assert "链式法则" in m("chain_rule")
    assert m("path_count", count=2, name="w1") == "从 w1 到损失共有 2 条路径"
    untranslated = [k for k, v in raw("zh").items() if v == raw("en")[k] and any(c.isalpha() for c in v)
                    and k not in {"verify_torch"}]
    assert not untranslated, f"copied from English: {untranslated}"


def test_unknown_keys_fall_back_to_english() -> None:
    assert set(catalog("zh")) >= set(catalog("en"))
