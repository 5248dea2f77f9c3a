"""Coded messages: templates with typed fields, loaded from data files (adding a template is adding a TOML
file), checked, and rendered in Arabic, Hebrew or English from the same codes. Pure: places and entries are
looked up through functions the caller passes."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fusioncell.clock import format_time, parse_time
from fusioncell.errors import InvalidInput

TEMPLATE_DIR = Path(__file__).parent / "templates"
LANGUAGES = ("en", "ar", "he")
FIELD_TYPES = ("entry", "place", "time", "text", "choice", "number")
MAX_TEXT = 500


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    label: dict[str, str]
    optional: bool = False
    choices: dict[str, dict[str, str]] | None = None


@dataclass(frozen=True)
class Template:
    code: str
    title: dict[str, str]
    fields: tuple[Field, ...]
    text: dict[str, str]


def _load(path: Path) -> Template:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    fields = []
    for name, spec in data.get("fields", {}).items():
        if spec["type"] not in FIELD_TYPES:
            raise ValueError(f"{path.name}: field {name} has unknown type {spec['type']!r}")
        fields.append(Field(name, spec["type"], spec["label"], spec.get("optional", False), spec.get("choices")))
    template = Template(data["code"], data["title"], tuple(fields), data["text"])
    for language in LANGUAGES:
        if language not in template.title or language not in template.text:
            raise ValueError(f"{path.name}: no {language} text")
        for field in template.fields:
            if "{" + field.name + "}" not in template.text[language] and not field.optional:
                raise ValueError(f"{path.name}: the {language} text does not use field {field.name}")
    return template


@cache
def catalog() -> dict[str, Template]:
    templates = {}
    for path in sorted(TEMPLATE_DIR.glob("*.toml")):
        template = _load(path)
        if template.code in templates:
            raise ValueError(f"template code {template.code} defined twice")
        templates[template.code] = template
    return templates


def get(code: str) -> Template:
    template = catalog().get(code)
    if template is None:
        raise InvalidInput(f"unknown template {code!r}; templates are {', '.join(sorted(catalog()))}",
                           code="unknown_template")
    return template


def check(code: str, fields: dict[str, Any], *, place_exists: Callable[[str], bool],
          entry_visible: Callable[[int], bool]) -> dict[str, Any]:
    """Validate the fields of a coded message; return them normalised (times in the record's format)."""
    template = get(code)
    known = {f.name: f for f in template.fields}
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise InvalidInput(f"{code} has no field {unknown[0]!r}; its fields are {', '.join(known)}",
                           code="unknown_field")
    clean: dict[str, Any] = {}
    for field in template.fields:
        value = fields.get(field.name)
        if value in (None, ""):
            if not field.optional:
                raise InvalidInput(f"{code}: field {field.name} is required", code="missing_field")
            continue
        clean[field.name] = _check_field(code, field, value, place_exists, entry_visible)
    return clean


def _check_field(code: str, field: Field, value: Any, place_exists: Callable[[str], bool],
                 entry_visible: Callable[[int], bool]) -> Any:
    where = f"{code}: field {field.name}"
    if field.type == "entry":
        if isinstance(value, str) and value.lstrip("#").isdigit():
            value = int(value.lstrip("#"))
        if not isinstance(value, int) or isinstance(value, bool) or not entry_visible(value):
            raise InvalidInput(f"{where}: no entry {value!r} that your party can see", code="bad_field")
        return value
    if field.type == "place":
        if not isinstance(value, str) or not place_exists(value):
            raise InvalidInput(f"{where}: {value!r} is not in the gazetteer; pick a place from it",
                               code="unknown_place")
        return value
    if field.type == "time":
        try:
            return format_time(parse_time(str(value)))
        except ValueError as exc:
            raise InvalidInput(f"{where}: {exc}", code="bad_field") from exc
    if field.type == "choice":
        if value not in (field.choices or {}):
            raise InvalidInput(f"{where}: choose one of {', '.join(field.choices or {})}", code="bad_field")
        return value
    if field.type == "number":
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise InvalidInput(f"{where}: a number is needed", code="bad_field")
        return value
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise InvalidInput(f"{where}: text of at most {MAX_TEXT} characters", code="bad_field")
    return value


def render(code: str, fields: dict[str, Any], language: str, *,
           place_name: Callable[[str, str], str]) -> str:
    """The message in one language, from the codes: every reader reads the same meaning."""
    template = get(code)
    language = language if language in LANGUAGES else "en"
    values = {}
    for field in template.fields:
        value = fields.get(field.name)
        if value is None:
            values[field.name] = ""
        elif field.type == "entry":
            values[field.name] = f"#{value}"
        elif field.type == "place":
            values[field.name] = place_name(value, language)
        elif field.type == "time":
            values[field.name] = value[:16].replace("T", " ") + " UTC"
        elif field.type == "choice":
            values[field.name] = (field.choices or {})[value][language]
        else:
            values[field.name] = str(value)
    text = template.text[language].format(**values)
    extra = [f"{f.label[language]}: {values[f.name]}" for f in template.fields
             if f.optional and values[f.name] and "{" + f.name + "}" not in template.text[language]]
    return " ".join([text, *extra])
