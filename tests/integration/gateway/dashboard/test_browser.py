"""The dashboard in a real headless Chromium (Debian's, driven by playwright; no browser is
ever downloaded): a live hub on 127.0.0.1 fed real street data over MQTT, the page waited on
until live data shows, its key figures and charts checked, a screenshot kept, and the broker
stopped to see the banner turn red.

The screenshot goes to the test's ``tmp_path``; with ``SWIFTCHAIN_UPDATE_SCREENSHOT=1`` it
also replaces ``docs/img/dashboard.png``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.broker import Mosquitto
from tests.support.city import SUBJECTS, CityFeed
from tests.support.hub import MqttPeer, ThreadHub
from tests.support.png import png_colours

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS_SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "img" / "dashboard.png"
VIEWPORT = {"width": 1920, "height": 1080}

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="playwright is not installed (pip install -e '.[dev]')"
)
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
)


async def test_dashboard_shows_the_live_network(
    seeded_hub: ThreadHub, hub_broker: Mosquitto, seeded: dict[str, int], tmp_path: Path
) -> None:
    # Eight hours of readings: the charts show the six before the newest one published.
    feed = CityFeed(seeded_hub, hours=8)
    feed.register()
    bulk, live = feed.events[:-300], feed.events[-300:]
    async with MqttPeer(seeded_hub.mqtt_url) as peer:
        await feed.publish(peer, bulk, per_second=150)
        await peer.wait_for(len(bulk), wait_s=60)
        assert peer.accepted() == len(bulk)
        trickle = asyncio.create_task(feed.publish(peer, live, per_second=25))
        try:
            async with playwright_api.async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                try:
                    page = await browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
                    errors: list[str] = []
                    page.on("pageerror", lambda exc: errors.append(str(exc)))
                    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
                    await page.goto(seeded_hub.http_url + "/", wait_until="domcontentloaded")
                    assert page.url.endswith("/dashboard")
                    await _wait_for_live_data(page, minimum=len(bulk))
                    await _check_figures(page, seeded)
                    await _check_charts(page)
                    await _check_no_pseudonyms(page)
                    await asyncio.sleep(1.5)  # let the bars' width transitions settle
                    shot = tmp_path / "dashboard.png"
                    await page.screenshot(path=str(shot), full_page=True)
                    assert shot.stat().st_size > 50_000
                    await _check_chart_pixels(page, tmp_path)
                    if os.environ.get("SWIFTCHAIN_UPDATE_SCREENSHOT") == "1":
                        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(shot, DOCS_SCREENSHOT)
                    assert not errors, errors

                    # Something goes wrong: the broker goes away; the banner turns red.
                    hub_broker.stop()
                    await page.wait_for_selector("#banner[data-level=critical]", timeout=15_000)
                    text = await page.text_content("#banner-text")
                    assert text is not None and "MQTT" in text
                    assert await page.text_content("#broker-state") == "Down"
                    await page.screenshot(path=str(tmp_path / "dashboard-alert.png"))
                finally:
                    await browser.close()
        finally:
            trickle.cancel()
            with __import__("contextlib").suppress(asyncio.CancelledError, Exception):
                await trickle


async def _wait_for_live_data(page: Any, minimum: int) -> None:
    await page.wait_for_selector("body[data-ready=true]", timeout=20_000)
    await page.wait_for_selector("#live[data-state=live]", timeout=20_000)
    await page.wait_for_function(
        """(minimum) => {
            const n = Number(document.getElementById('ledger-size').textContent.replace(/,/g, ''));
            const rate = parseFloat(document.getElementById('rate-total').textContent);
            return n >= minimum && rate > 0 &&
                document.getElementById('verify-state').textContent === 'Verified';
        }""",
        arg=minimum,
        timeout=30_000,
    )


async def _check_figures(page: Any, seeded: dict[str, int]) -> None:
    text = page.text_content
    assert await text("#broker-state") == "Connected"
    assert await page.get_attribute("#banner", "data-level") == "ok"
    assert "verified up to" in (await text("#verify-sub") or "")
    assert (await text("#cp-root") or "").endswith("…")
    assert await text("#consent-active") == str(seeded["active"])
    assert await text("#consent-withdrawn") == str(seeded["withdrawn"])
    origin = await text("#origin")
    assert origin == "test.swiftchain/ledger"
    # Without the admin token the page gets the decisions' counts, not their lines.
    rows = await page.query_selector_all("#access-rows tr")
    assert len(rows) == 1
    assert "operators only" in (await text("#access-rows") or "")
    assert f"{seeded['deny']} denied" in (await text("#access-counts") or "")
    assert len(await page.query_selector_all("#parking .park")) == 5
    assert len(await page.query_selector_all("#traffic-bars .segment")) == 8
    legend = await text("#legend-rates") or ""
    for pilot in ("air-quality", "traffic", "parking"):
        assert pilot in legend


async def _check_charts(page: Any) -> None:
    """Every chart has drawn series of real length (not an empty frame)."""
    lengths = await page.evaluate(
        """() => Object.fromEntries(['chart-rates', 'chart-pm25', 'chart-no2', 'chart-speed']
            .map((id) => [id, [...document.querySelectorAll('#' + id + ' path')]
                .map((p) => p.getTotalLength())]))"""
    )
    assert len(lengths["chart-pm25"]) == 5, lengths  # one line per station
    assert len(lengths["chart-speed"]) == 8, lengths  # one line per road segment
    for chart, paths in lengths.items():
        assert paths and min(paths) > 100, (chart, paths)


async def _check_no_pseudonyms(page: Any) -> None:
    """No pseudonym, not even its first characters, no Consent id, no per-person line: the
    break-glass alert says how many reads there are to review, not whose."""
    html = await page.content()
    summary = await page.evaluate(
        "async () => await (await fetch('/api/v1/dashboard/summary')).text()"
    )
    for text in (html, summary):
        for subject in SUBJECTS:
            assert subject[:6] not in text
        assert "cns-" not in text and "hospital-a-ehr" not in text
    glass = await page.text_content("#glass-alert-text") or ""
    assert glass == "1 break-glass read to review (details for operators)"


async def _check_chart_pixels(page: Any, tmp_path: Path) -> None:
    """The chart panels, as rendered pixels, hold real colour (lines, areas, bars): a panel
    with empty charts is a few shades of dark blue and grey."""
    for panel in ("#panel-rates", "#panel-air", "#panel-traffic"):
        path = tmp_path / f"{panel[1:]}.png"
        await page.locator(panel).screenshot(path=str(path), animations="disabled")
        width, height, colours = png_colours(path.read_bytes())
        assert width > 300 and height > 150, (panel, width, height)
        assert colours > 300, (panel, colours)
