"""The drawing map of the notice form, in a real browser: a route drawn by clicks is filed with that geometry;
pasted GeoJSON and a typed position appear on the map; an area can be drawn with the keyboard alone. As on every
page: no request leaves 127.0.0.1 and no console error."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.web.test_browser import SHOTS, Watch, login
from tests.web.test_browser import browser as browser  # noqa: F401  (the fixtures, shared)
from tests.web.test_browser import server as server  # noqa: F401

pytestmark = pytest.mark.browser
MINE = "#c2185b"  # the form's own place on the map (static/draw.js)
ZONES = "#0b4f8a"  # agreed zones (web/geo.py)


def _window(server) -> tuple[str, str]:
    from fusioncell.clock import format_time

    start = server.cell.log.clock.now().replace(microsecond=0) + timedelta(days=3)
    return format_time(start), format_time(start + timedelta(hours=2))


def test_an_officer_draws_a_route_and_the_notice_is_filed_with_it(browser, server):
    from fusioncell.demo.scenario import play_zones_and_notices
    from fusioncell.notices import service as notice_service
    from tests.factories.hotline import viewer

    play_zones_and_notices(server.cell)  # zones and other notices, shown for context
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watch = Watch(page)
    login(page, server, "il/liaison-1")  # Hebrew: right to left
    page.goto(server.url + "/notices")
    widget = page.locator("#notice-draw")
    expect(widget).to_be_visible()
    assert page.get_attribute("html", "dir") == "rtl"
    expect(widget.locator(f'.leaflet-overlay-pane path[stroke="{ZONES}"]').first).to_be_attached()
    expect(widget.locator(".draw-illustrative")).to_be_visible()  # the demo's zones are not agreed lines

    widget.locator('[data-mode="line"]').click()
    expect(widget.locator('[data-mode="line"]')).to_have_attribute("aria-pressed", "true")
    expect(widget.locator('[data-act="finish"]')).to_be_disabled()
    surface = widget.locator(".draw-map")
    for x, y in ((420, 120), (520, 200), (600, 300)):
        surface.click(position={"x": x, "y": y})
    widget.locator('[data-act="undo"]').click()  # the third point was a slip
    surface.click(position={"x": 640, "y": 330})
    widget.locator('[data-act="finish"]').click()
    expect(widget.locator('[data-mode="line"]')).to_have_attribute("aria-pressed", "false")
    expect(widget.locator(f'.leaflet-overlay-pane path[stroke="{MINE}"]')).to_have_count(1)

    drawn = json.loads(page.input_value("#geojson"))
    assert drawn["type"] == "LineString" and len(drawn["coordinates"]) == 3
    for lon, lat in drawn["coordinates"]:  # RFC 7946: longitude first
        assert 35 < lon < 37 and 32 < lat < 34
    assert page.input_value("#mgrs") == "" and page.input_value("#radius_m") == ""
    page.screenshot(path=str(SHOTS / "notice-draw-he.png"), full_page=True)

    start, end = _window(server)
    page.fill("#start", start)
    page.fill("#end", end)
    page.fill("#contact", "IL desk, channel 3")
    page.click("form[action='/notices'] button[type=submit]")
    page.wait_for_url(server.url + "/notices")
    with server.cell.db.read() as session:
        mine = [n for n in notice_service.active_notices(session, viewer=viewer(server.cell, "il/liaison-1"))
                if n.body.get("contact") == "IL desk, channel 3"]
    assert len(mine) == 1 and mine[0].body["geometry"] == drawn
    assert watch.outside == [], f"requests left the machine: {watch.outside}"
    assert watch.errors == [], f"console errors: {watch.errors}"
    context.close()


def test_pasted_geojson_and_a_typed_position_appear_on_the_map(browser, server):
    page = browser.new_page()
    watch = Watch(page)
    login(page, server, "sy/liaison-1")
    page.goto(server.url + "/notices")
    widget = page.locator("#notice-draw")
    mine = widget.locator(f'.leaflet-overlay-pane path[stroke="{MINE}"]')
    status = widget.locator(".draw-status")
    expect(mine).to_have_count(0)

    area = {"type": "Polygon", "coordinates": [[[35.82, 33.10], [35.88, 33.10], [35.88, 33.16], [35.82, 33.10]]]}
    page.fill("#geojson", json.dumps(area))
    expect(mine).to_have_count(1)
    expect(status).to_have_text(widget.get_attribute("data-t-shown"))
    # What GIS tools export: a Feature. Shown the same, and accepted by the form.
    page.fill("#geojson", json.dumps({"type": "Feature", "properties": {},
                                      "geometry": {"type": "LineString", "coordinates": [[35.8, 33.1], [35.9, 33.2]]}}))
    expect(mine).to_have_count(1)
    page.fill("#geojson", '{"type": "Polygon", "coordinates": [[[35.8')
    expect(status).to_have_text(widget.get_attribute("data-t-badgeojson"))
    expect(mine).to_have_count(0)

    page.fill("#geojson", "")
    page.fill("#mgrs", "36SYB6347368805")
    page.fill("#radius_m", "800")
    expect(mine).to_have_count(1)  # a circle of 800 m
    page.fill("#mgrs", "33.126, 35.824")
    expect(status).to_have_text(widget.get_attribute("data-t-shown"))
    # A point drawn by two clicks, the second at the edge of its radius, fills the position (MGRS) and the radius.
    page.fill("#geojson", json.dumps(area))
    widget.locator('[data-mode="point"]').click()
    surface = widget.locator(".draw-map")
    surface.click(position={"x": 300, "y": 150})
    expect(status).to_have_text(widget.get_attribute("data-t-radius"))
    surface.click(position={"x": 360, "y": 150})
    expect(status).to_have_text(widget.get_attribute("data-t-drawn"))
    assert re.fullmatch(r"\d{1,2}[C-X][A-Z]{2}\d{10}", page.input_value("#mgrs"))
    assert int(page.input_value("#radius_m")) > 0 and page.input_value("#geojson") == ""
    expect(mine).to_have_count(1)
    assert watch.outside == [] and watch.errors == [], (watch.outside, watch.errors)
    page.close()


def test_an_area_is_drawn_with_the_keyboard_alone(browser, server):
    page = browser.new_page()
    watch = Watch(page)
    login(page, server, "sy/liaison-1")  # Arabic: right to left
    page.goto(server.url + "/notices")
    widget = page.locator("#notice-draw")
    widget.locator('[data-mode="polygon"]').focus()
    page.keyboard.press("Enter")
    surface = widget.locator(".draw-map")
    surface.focus()
    for key in ("Enter", "ArrowRight", "Enter", "ArrowDown", "Enter"):  # Leaflet pans the map by arrow keys
        page.keyboard.press(key)
        if key.startswith("Arrow"):
            page.wait_for_timeout(400)  # the pan animation
    widget.locator('[data-act="finish"]').focus()
    page.keyboard.press("Enter")
    expect(widget.locator(".draw-status")).to_have_text(widget.get_attribute("data-t-drawn"))
    ring = json.loads(page.input_value("#geojson"))["coordinates"][0]
    assert len(ring) == 4 and ring[0] == ring[-1] and len({tuple(p) for p in ring}) == 3
    assert watch.outside == [] and watch.errors == [], (watch.outside, watch.errors)
    page.close()
