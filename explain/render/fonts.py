"""Finding a font with Chinese characters for the worked-solution PDF.

Typst brings its own Latin and math fonts (New Computer Modern), so an English
PDF needs nothing from the system.  A Chinese one needs a CJK font; this module
finds one without configuration:

1. ``EXPLAIN_CJK_FONT``: a font file or a folder of fonts, if set;
2. the places Linux distributions, macOS and Windows install the common ones
   (Noto CJK / Source Han, WenQuanYi, PingFang, Microsoft YaHei, SimSun …);
3. ``fc-list :lang=zh`` (fontconfig), when it is installed.

Typst takes font *folders*, so the result is the folder(s) holding the font and
the family names to ask for (a serif family for body text, a sans one for
headings, when the system has both).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..errors import ExplainError
from ..i18n import Messages

#: Where the common CJK fonts live, best first (serif before sans within a family).
KNOWN_CJK_FONTS = (
    # Debian/Ubuntu: fonts-noto-cjk, fonts-wqy-microhei, fonts-wqy-zenhei, fonts-arphic-*
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    # Fedora, Arch, openSUSE
    "/usr/share/fonts/google-noto-serif-cjk-fonts/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-sans-cjk-fonts/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/adobe-source-han-serif/SourceHanSerifCN-Regular.otf",
    "/usr/share/fonts/adobe-source-han-sans/SourceHanSansCN-Regular.otf",
    "/usr/share/fonts/wenquanyi/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
    # macOS
    "/System/Library/Fonts/Supplemental/Songti.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    # Windows
    "C:/Windows/Fonts/simsun.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)

#: Family preference (Simplified Chinese first); anything else found comes after.
SERIF_FAMILIES = ("Noto Serif CJK SC", "Source Han Serif SC", "Source Han Serif CN", "Songti SC", "STSong",
                  "SimSun", "AR PL UMing CN", "Noto Serif CJK TC")
SANS_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Micro Hei",
                 "WenQuanYi Zen Hei", "PingFang SC", "Microsoft YaHei", "Heiti SC", "STHeiti",
                 "Arial Unicode MS", "Noto Sans CJK TC")


@dataclass(frozen=True)
class CjkFont:
    """The folders to give Typst and the families to ask it for."""

    folders: tuple[str, ...]
    serif: str   # body text (a sans family when no serif one exists)
    sans: str    # headings (the serif family when no sans one exists)

    @property
    def families(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.serif, self.sans)))


def _candidate_files() -> list[Path]:
    files: list[Path] = []
    override = os.environ.get("EXPLAIN_CJK_FONT", "").strip()
    if override:
        p = Path(override).expanduser()
        if p.is_dir():
            files += sorted(q for q in p.iterdir() if q.suffix.lower() in (".ttc", ".ttf", ".otf", ".otc"))
        elif p.is_file():
            files.append(p)
    files += [Path(p) for p in KNOWN_CJK_FONTS if Path(p).is_file()]
    if not files:
        files += _fontconfig_files()
    return files


def _fontconfig_files() -> list[Path]:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return []
    try:
        out = subprocess.run([fc_list, ":lang=zh", "file"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    paths = sorted({line.strip().rstrip(":") for line in out.splitlines() if line.strip()})
    return [Path(p) for p in paths if Path(p).is_file()]


def _families(folders: list[str], files: set[str]) -> dict[str, set[str]]:
    """The families of the fonts in ``files``, as Typst sees them, with their folders."""
    import typst

    fonts = typst.Fonts(include_system_fonts=False, include_embedded_fonts=False, font_paths=folders)
    found: dict[str, set[str]] = {}
    for info in fonts.fonts():
        if info.path is not None and os.path.realpath(info.path) in files:
            found.setdefault(info.family, set()).add(str(Path(info.path).parent))
    return found


@cache
def find_cjk_font() -> CjkFont | None:
    """A CJK font on this machine, or None (cached for the process)."""
    files = _candidate_files()
    if not files:
        return None
    folders = list(dict.fromkeys(str(f.parent) for f in files))
    families = _families(folders, {os.path.realpath(f) for f in files})
    if not families:
        return None

    def pick(preferred: tuple[str, ...]) -> str | None:
        return next((f for f in preferred if f in families), None)

    serif, sans = pick(SERIF_FAMILIES), pick(SANS_FAMILIES)
    fallback = next(iter(families))
    serif, sans = serif or sans or fallback, sans or serif or fallback
    used = [f for f in folders if f in families[serif] | families[sans]] or folders
    return CjkFont(tuple(used), serif, sans)


def require_cjk_font(lang: str = "zh") -> CjkFont:
    """The CJK font, or an ExplainError that says which font packages to install."""
    font = find_cjk_font()
    if font is None:
        raise ExplainError("--lang " + lang, Messages(lang)("pdf_no_cjk_font"))
    return font
