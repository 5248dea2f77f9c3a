"""The palette reads well: every text colour on the background it is used on meets WCAG AA (4.5:1); the
values are read from the stylesheet, so changing a colour re-runs the check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = (Path(__file__).resolve().parents[2] / "src" / "fusioncell" / "web" / "static" / "app.css").read_text()
VARS = dict(re.findall(r"--([a-z]+):\s*(#[0-9a-fA-F]{6})", CSS))


def luminance(colour: str) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize(("text", "background"), [
    ("ink", "bg"), ("ink", "card"), ("muted", "card"), ("muted", "bg"), ("accent", "card"), ("ok", "card"),
    ("bad", "card"), ("accent", "bg"),
])
def test_text_colours_meet_wcag_aa(text, background):
    assert contrast(VARS[text], VARS[background]) >= 4.5


@pytest.mark.parametrize(("text", "background"), [("#ffffff", "#102a43"), ("#ffffff", "flash")])
def test_light_text_on_dark_bars(text, background):
    assert contrast(text, VARS.get(background, background)) >= 4.5
