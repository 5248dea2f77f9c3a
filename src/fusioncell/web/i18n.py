"""Interface languages: gettext catalogs (.po, read at start-up with Babel), the reader's language, direction."""

from __future__ import annotations

import contextvars
import gettext
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = {"en": "English", "ar": "العربية", "he": "עברית"}
RTL = {"ar", "he"}
DEFAULT = "en"

_current: contextvars.ContextVar[gettext.NullTranslations] = contextvars.ContextVar("translations")
_language: contextvars.ContextVar[str] = contextvars.ContextVar("language", default=DEFAULT)


@cache
def translations(language: str) -> gettext.NullTranslations:
    path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if language not in LANGUAGES or not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def activate(language: str) -> None:
    _current.set(translations(language))
    _language.set(language)


def current_language() -> str:
    return _language.get()


def _(message: str, **values: object) -> str:
    text = _current.get(gettext.NullTranslations()).gettext(message)
    return text % values if values else text


def ngettext(singular: str, plural: str, n: int, **values: object) -> str:
    text = _current.get(gettext.NullTranslations()).ngettext(singular, plural, n)
    return text % ({"num": n} | values)


def direction(language: str) -> str:
    return "rtl" if language in RTL else "ltr"


def negotiate(accept_language: str | None) -> str:
    """Best of our languages for an Accept-Language header."""
    best, best_q = DEFAULT, 0.0
    for part in (accept_language or "").split(","):
        tag, _sep, params = part.strip().partition(";")
        code = tag.split("-")[0].lower()
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if code in LANGUAGES and q > best_q:
            best, best_q = code, q
    return best
