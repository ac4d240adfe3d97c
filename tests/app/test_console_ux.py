"""The console's guard rails in a real browser: checks before sending (duplicate names, empty
classes, unreadable files), removing one image, cancelling a running job, a phone-wide page."""

from __future__ import annotations

import pytest

from common.settings import Settings
from tests.app.test_console import ARTIFACTS, SHOTS, browser, drawings  # noqa: F401 - fixtures
from tests.service_fixtures import live_server

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def test_checks_removal_cancel_and_a_375_px_page(
    browser,  # noqa: F811
    drawings,  # noqa: F811
    redis_url,
    prefix,
    start_worker,
    tmp_path,
):
    settings = Settings(
        redis_url=redis_url,
        key_prefix=prefix,
        worker_block_ms=50,
        auth="open",
        worker_alive_file=tmp_path / "alive",
    )
    start_worker(settings)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    names = list(drawings)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with live_server(settings) as url:
        page = browser.new_page(viewport={"width": 375, "height": 800})
        script_errors: list[str] = []
        page.on("pageerror", lambda error: script_errors.append(str(error)))
        page.goto(url)
        page.wait_for_function("document.querySelector('#base-model').options.length > 0")
        cards = page.locator(".class-card")
        for index in range(2):
            cards.nth(index).locator("input[aria-label^='name of class']").fill("same")
            cards.nth(index).locator("input[type=file]").first.set_input_files(
                [str(p) for p in drawings[names[index]][:SHOTS]]
            )
        focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
        assert focused.startswith("Drop images of class 2")  # focus stays where files went
        # a file the browser cannot decode is marked at once; removing it leaves the others
        cards.nth(0).locator("input[type=file]").first.set_input_files(str(broken))
        page.wait_for_function("document.querySelectorAll('.class-card canvas.refused').length")
        assert "broken.png: not an image" in cards.nth(0).locator(".problems").inner_text()
        page.click("#submit")
        assert "names must differ" in cards.nth(1).locator(".problems").inner_text()
        assert page.locator("#submit-error").inner_text().startswith("Fix the problems")
        thumbs = cards.nth(0).locator("button.thumb")
        assert thumbs.count() == SHOTS + 1
        thumbs.nth(SHOTS).click()  # the broken one
        assert thumbs.count() == SHOTS and cards.nth(0).locator(".problems li").count() == 0
        cards.nth(1).locator("input[aria-label^='name of class']").fill("other")
        # a long job: Start is disabled, Cancel stops it, Start comes back
        page.fill("#steps", "200")
        page.click("#submit")
        page.wait_for_function(
            "document.querySelector('#job-state').textContent.includes('adapting: step')",
            timeout=120_000,
        )
        assert page.locator("#submit").is_disabled() and page.locator("#cancel").is_visible()
        page.click("#cancel")
        page.wait_for_function(
            "document.querySelector('#job-state').textContent.endsWith('cancelled')",
            timeout=120_000,
        )
        page.wait_for_function("!document.querySelector('#submit').disabled")
        assert "cancelled" in page.locator("#models tbody").inner_text()  # not "failed"
        # nothing is wider than the phone
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"the page is {width} px wide at a 375 px viewport"
        page.screenshot(path=str(ARTIFACTS / "console-375.png"), full_page=True)
        assert script_errors == []
