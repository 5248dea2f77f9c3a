"""In a real browser (Playwright driving Debian's Chromium): each party logs in in its language and walks the
main pages. Asserted on every page: no request left 127.0.0.1, no console error, the right direction; live
updates arrive; keyboard and small screens work. Screenshots go to tests/screenshots/ for review."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from tests.conftest import ON_CI
from tests.factories.identity import password_of
from tests.factories.record import persona

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(os.environ.get("FUSIONCELL_SCREENSHOTS", Path(__file__).resolve().parents[1] / "screenshots"))
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if ON_CI:
            pytest.fail(f"{CHROMIUM} missing (CI=true: browser tests must run); apt-get install chromium")
        pytest.skip(f"{CHROMIUM} not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def server(tmp_path):
    """A demo-like cell on SQLite served by uvicorn on loopback."""
    import uvicorn

    from fusioncell.app import create_app
    from fusioncell.cell import init_cell
    from fusioncell.clock import SystemClock
    from fusioncell.config import DEMO_CONFIG, load_config
    from tests.factories.identity import add_personas

    cell = init_cell(tmp_path / "data", config=load_config(DEMO_CONFIG), config_path=DEMO_CONFIG,
                     clock=SystemClock())
    add_personas(cell)
    from tests.factories.hotline import places

    places(cell)
    server = uvicorn.Server(uvicorn.Config(create_app(cell), host="127.0.0.1", port=0, log_level="warning",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    server.url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.cell = cell
    yield server
    server.should_exit = True
    thread.join(10)
    cell.close()


class Watch:
    """Every request a page makes and every console error it logs."""

    def __init__(self, page):
        self.outside: list[str] = []
        self.errors: list[str] = []
        page.on("request", self._request)
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("response", lambda r: r.status >= 400 and self.errors.append(f"{r.status} {r.url}"))

    def _request(self, request):
        host = urlparse(request.url).hostname
        if request.url.startswith(("data:", "blob:", "about:")):
            return
        if host != "127.0.0.1":
            self.outside.append(request.url)


def login(page, server, member):
    page.goto(server.url + "/login")
    page.fill("#member", member)
    page.fill("#password", password_of(member))
    page.click("button.primary")
    page.wait_for_url(server.url + "/")


@pytest.mark.parametrize(("member", "lang", "direction", "home_word"), [
    ("il/liaison-1", "he", "rtl", "דף הבית"),
    ("sy/liaison-1", "ar", "rtl", "الصفحة الرئيسية"),
    ("us/supervisor-1", "en", "ltr", "Home"),
])
def test_each_party_walks_the_pages_in_its_language(browser, server, member, lang, direction, home_word):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, timezone_id="Asia/Jerusalem")
    page = context.new_page()
    watch = Watch(page)
    login(page, server, member)
    SHOTS.mkdir(parents=True, exist_ok=True)
    for path in ("/", "/hotline", "/notices", "/incidents", "/incidents/stats", "/disputes", "/records",
                 "/records/0", "/map"):
        page.goto(server.url + path)
        page.wait_for_load_state("networkidle")
        assert page.get_attribute("html", "dir") == direction and page.get_attribute("html", "lang") == lang
        assert home_word in page.inner_text("nav")
        if path == "/map":
            expect(page.locator("#legend-items li")).to_have_count(2)  # the gazetteer and the country outlines
            # Country outlines drawn from world-atlas, served by the cell itself.
            expect(page.locator(".leaflet-overlay-pane path").nth(100)).to_be_attached()
            page.mouse.move(640, 450)
            assert "MGRS" in page.inner_text("#coords")
        # Times show UTC and the member's own zone.
        if path == "/records":
            assert "Asia/Jerusalem" in page.inner_text("table.entries")
        name = {"/": "home", "/map": "map"}.get(path)
        if name:
            page.screenshot(path=str(SHOTS / f"{name}-{lang}.png"), full_page=False)
    assert watch.outside == [], f"requests left the machine: {watch.outside}"
    assert watch.errors == [], f"console errors: {watch.errors}"
    context.close()


def test_live_entries_arrive_without_a_reload(browser, server):
    writer = persona(server.cell, "SY", "sy/notes")
    page = browser.new_page()
    watch = Watch(page)
    login(page, server, "il/liaison-1")
    page.wait_for_load_state("networkidle")
    before = page.locator("[data-live-rows] tr").count()
    entry = writer.append({"text": "patrol 0600Z"}, audience=["IL", "SY", "US"])
    page.wait_for_selector(f'[data-live-rows] a[href="/records/{entry.seq}"]', timeout=10000)
    assert page.locator("[data-live-rows] tr").count() == before + 1
    assert "sy/notes" in page.inner_text("[data-live-rows] tr:first-child")
    assert watch.errors == [] and watch.outside == []
    page.close()


def test_keyboard_reaches_the_skip_link_and_the_form(browser, server):
    page = browser.new_page()
    page.goto(server.url + "/login")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "member":
            break
    assert page.evaluate("document.activeElement.id") == "member"
    page.fill("#member", "il/liaison-1")
    page.fill("#password", password_of("il/liaison-1"))
    page.click("button.primary")
    page.wait_for_url(server.url + "/")
    for path in ("/", "/hotline/new", "/notices", "/records", "/map"):  # every control has its label
        page.goto(server.url + path)
        for element in page.query_selector_all("input:not([type=hidden]):not([type=checkbox]), select, textarea"):
            element_id = element.get_attribute("id")
            assert element_id and page.query_selector(f'label[for="{element_id}"]'), f"no label for #{element_id} on {path}"
    page.close()


def test_phone_screen_has_no_horizontal_scroll(browser, server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    watch = Watch(page)
    login(page, server, "sy/liaison-1")
    for path in ("/", "/records", "/map", "/notices"):
        page.goto(server.url + path)
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width}px wide on a 390px screen"
        page.screenshot(path=str(SHOTS / f"{path.strip('/') or 'home'}-ar-phone.png"))
    assert watch.errors == [] and watch.outside == []
    context.close()


def test_no_other_partys_data_reaches_the_browser(browser, server):
    secret = persona(server.cell, "SY", "sy/notes").append({"text": "SY-ONLY-0b7e"}, audience=["SY", "US"])
    page = browser.new_page()
    login(page, server, "il/liaison-1")
    bodies = []
    page.on("response", lambda r: bodies.append(r.text()) if "text" in r.headers.get("content-type", "") else None)
    for path in ("/", "/records", f"/records/{secret.seq}"):
        page.goto(server.url + path)
        page.wait_for_load_state("networkidle")
        assert "SY-ONLY-0b7e" not in page.content()
    assert not any("SY-ONLY-0b7e" in b for b in bodies)
    page.close()


def teardown_module(_module):
    if not any(SHOTS.glob("*.png")):
        shutil.rmtree(SHOTS, ignore_errors=True)


def test_a_flash_message_raises_an_alert_and_is_acknowledged_in_one_action(browser, server):
    from tests.factories.hotline import send, viewer

    page = browser.new_page()
    watch = Watch(page)
    login(page, server, "il/liaison-1")
    page.wait_for_load_state("networkidle")
    message = send(server.cell, viewer(server.cell, "sy/liaison-1"), precedence="FLASH", subject="Fire near Beit Jinn",
                   template="REQ-CEASE", fields={"place": "beit-jinn", "activity": "fire"}, text=None,
                   audience=["IL"])
    alert = page.locator("#live-alert")
    alert.wait_for(state="visible", timeout=10000)
    assert "FLASH" in alert.inner_text() and "Fire near Beit Jinn" in alert.inner_text()
    # The page confirmed receipt: a signed "delivered" receipt by il/liaison-1.
    from fusioncell.hotline.models import Receipt

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with server.cell.db.read() as session:
            if session.get(Receipt, (message.seq, "il/liaison-1", "delivered")) is not None:
                break
        time.sleep(0.1)
    else:
        raise AssertionError("no delivered receipt was recorded")
    page.reload()
    item = page.locator(".attention li.sev-3")
    assert "FLASH" in item.inner_text()
    assert page.locator(".attention .due .left").inner_text().strip()  # a countdown is running
    item.locator("a").click()
    page.wait_for_load_state("networkidle")
    assert "בית ג'ן" in page.inner_text(f"#m{message.seq}")  # the coded message, in Hebrew
    page.click(f"#m{message.seq} form.ackform button")
    page.wait_for_load_state("networkidle")
    assert page.locator(f"#m{message.seq} .acks .ok").count() == 1
    page.screenshot(path=str(SHOTS / "thread-he.png"), full_page=True)
    assert watch.errors == [] and watch.outside == []
    page.close()


def test_the_time_slider_shows_only_the_notices_active_then(browser, server):
    from datetime import timedelta

    from fusioncell.clock import format_time
    from fusioncell.notices import service as notice_service
    from tests.factories.hotline import viewer

    now = server.cell.log.clock.now()
    for hours, point in ((2, [35.86, 33.17]), (50, [35.80, 33.05])):
        start = now + timedelta(hours=hours)
        with server.cell.log.transaction(server.cell.db) as session:
            notice_service.file_notice(session, log=server.cell.log, kek=server.cell.kek,
                                       viewer=viewer(server.cell, "il/liaison-1"), body={
                                           "activity": "patrol", "contact": "desk", "composition": {},
                                           "start": format_time(start), "end": format_time(start + timedelta(hours=3)),
                                           "geometry": {"type": "Point", "coordinates": point, "radius_m": 800}})
    page = browser.new_page()
    watch = Watch(page)
    login(page, server, "sy/liaison-1")
    page.goto(server.url + "/map")
    # Waits use Playwright's own selector engine: evaluating strings would be refused by the page's CSP.
    expect(page.locator("#legend-items li")).to_have_count(3)
    circles = page.locator('.leaflet-overlay-pane path[stroke="#b00020"]')
    expect(circles).to_have_count(2)
    page.fill("#when", "3")  # three hours from now: only the first notice
    page.dispatch_event("#when", "input")
    expect(circles).to_have_count(1)
    page.fill("#when", "-1")
    page.dispatch_event("#when", "input")
    expect(circles).to_have_count(2)
    assert watch.errors == [] and watch.outside == []
    page.close()


def test_an_incident_reported_in_the_browser_is_on_the_map_and_its_page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watch = Watch(page)
    login(page, server, "sy/liaison-1")
    page.goto(server.url + "/incidents")
    page.select_option("#category", "fire_across_line")
    page.fill("#start", time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(time.time() - 3600)))
    page.fill("#position", "33.17, 35.86")
    page.fill("#description", "إطلاق نار قرب خان أرنبة")
    page.select_option("#responsible", "IL")
    page.click("#report button.primary[type=submit]")
    expect(page.locator("h1")).to_contain_text("2")  # the incident's page: "الحادث N: ..."
    assert "/incidents/" in page.url
    expect(page.locator(".timeline li")).not_to_have_count(0)
    seq = page.url.rsplit("/", 1)[1]
    page.goto(server.url + "/incidents")
    marker = page.locator(".leaflet-overlay-pane path.fc-link")  # the incident, a link to its page
    expect(marker).to_be_attached()
    expect(page.locator("#incident-list tbody tr")).to_have_count(1)
    marker.click()
    page.wait_for_url(server.url + f"/incidents/{seq}")
    page.goto(server.url + "/incidents/stats")
    expect(page.locator("svg.chart rect.chart-bar")).not_to_have_count(0)
    page.screenshot(path=str(SHOTS / "incident-stats-ar.png"), full_page=True)
    assert watch.outside == [], f"requests left the machine: {watch.outside}"
    assert watch.errors == [], f"console errors: {watch.errors}"
    context.close()
