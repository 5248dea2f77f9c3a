"""Every interface string reads in Arabic, Hebrew and English, with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from fusioncell.web import i18n

SRC = Path(__file__).resolve().parents[2] / "src" / "fusioncell"
METHODS = [("**.py", "python"), ("web/templates/**.html", "jinja2")]
OPTIONS = {"web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def interface_strings() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        SRC, METHODS, options_map=OPTIONS, keywords={"_": None, "gettext": None}
    ):
        if isinstance(message, str) and message:
            found.add(message)
    return found


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"%\((\w+)\)s", text))


@pytest.mark.parametrize("language", ["ar", "he"])
def test_every_string_is_translated_with_its_placeholders(language):
    strings = interface_strings()
    assert len(strings) > 50
    catalog = i18n.translations(language)
    for message in sorted(strings):
        translated = catalog.gettext(message)
        assert translated != message, f"{language}: not translated: {message!r}"
        assert placeholders(translated) == placeholders(message), f"{language}: placeholders differ in {message!r}"


def test_direction_and_negotiation():
    assert i18n.direction("ar") == i18n.direction("he") == "rtl" and i18n.direction("en") == "ltr"
    assert i18n.negotiate("he-IL,he;q=0.9,en;q=0.8") == "he"
    assert i18n.negotiate("fr-FR,ar;q=0.5,en;q=0.4") == "ar"
    assert i18n.negotiate(None) == "en"
