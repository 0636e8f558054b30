"""Languages: Babel message catalogs (`locale/<lang>/LC_MESSAGES/messages.po`) and negotiation.

The `.mo` files are compiled by `make setup` (`pybabel compile`); a checkout without them still
works: the `.po` is compiled in memory on first use. No HTTP and no database here.
"""

from __future__ import annotations

import gettext as _gettext
import io
import re
from functools import lru_cache
from pathlib import Path

from babel import negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
LANGUAGES = ("en", "de")
DEFAULT = "en"


def N_(message: str) -> str:
    """Mark a string for extraction (`pybabel extract -k N_`); translated later, where it is shown."""
    return message


# Problem `detail`s built from a pattern: the English text is matched back to its msgid, whose
# translation is filled with the same values (the values themselves are translated when the
# catalog knows them, e.g. the kind of object in "… not found").
DETAIL_PATTERNS = (
    N_("%(what)s not found"),
    N_("missing permission %(perm)s"),
    N_("invalid input: %(fields)s"),
    N_("%(part)s uses unknown variables: %(names)s"),
    N_("%(part)s does not compile: %(error)s"),
    N_("%(part)s uses %(construct)s, which templates may not use"),
    N_("the tenant already has its own %(key)s template in %(language)s"),
)
# NotFound's default object (its other arguments are extracted with `-k NotFound`).
OBJECT_NAMES = (N_("object"),)
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _compile_pattern(msgid: str) -> re.Pattern[str]:
    parts = _PLACEHOLDER.split(msgid)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
    return re.compile(f"^{regex}$", re.DOTALL)


_PATTERNS = tuple((msgid, _compile_pattern(msgid)) for msgid in DETAIL_PATTERNS)


@lru_cache(maxsize=8)
def translations(language: str) -> _gettext.NullTranslations:
    if language not in LANGUAGES or language == DEFAULT:
        return _gettext.NullTranslations()
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    if (folder / f"{DOMAIN}.mo").exists():
        return Translations.load(str(LOCALE_DIR), [language], DOMAIN)
    po = folder / f"{DOMAIN}.po"
    if not po.exists():
        return _gettext.NullTranslations()
    # Not compiled yet (a fresh checkout): compile in memory, the same as `pybabel compile`.
    with po.open("rb") as fp:
        catalog = read_po(fp, locale=language, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf, domain=DOMAIN)


def gettext(language: str, message: str) -> str:
    return translations(language).gettext(message)


def translate_detail(detail: str, language: str) -> str:
    """A problem `detail` in `language`: the catalog's text, else a matching pattern's, else as is."""
    if language == DEFAULT:
        return detail
    t = translations(language)
    found = t.gettext(detail)
    if found != detail:
        return found
    for msgid, pattern in _PATTERNS:
        m = pattern.match(detail)
        if m is None:
            continue
        translated = t.gettext(msgid)
        if translated == msgid:
            return detail
        return translated % {k: t.gettext(v) for k, v in m.groupdict().items()}
    return detail


def negotiate(accept_language: str | None) -> str:
    """The best of our languages for an `Accept-Language` header (English when none fits)."""
    if not accept_language:
        return DEFAULT
    ranked: list[tuple[float, int, str]] = []
    for i, item in enumerate(accept_language.split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and q > 0:
            ranked.append((-q, i, tag.strip()))
    preferred = [tag for _q, _i, tag in sorted(ranked)]
    return negotiate_locale(preferred, list(LANGUAGES), sep="-") or DEFAULT


def pick(*candidates: str | None) -> str:
    """The first supported language among `candidates` (user's, tenant's default, …), else English."""
    for c in candidates:
        if c in LANGUAGES:
            return c
    return DEFAULT
