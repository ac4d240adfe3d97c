"""The console on a phone (375 px) and on a desktop (1280 px), in a real browser: empty tables
say so, a job that would get no robustness estimate is named before Start, every column of the
predictions is on screen, the report's details are one matrix of attacks by eps, and a model
without report figures shows its sentence, not an empty chart. Screenshots: console-phone-*.png
in $FEWSHOT_TEST_ARTIFACTS."""

from __future__ import annotations

import re

import pytest

from common.settings import Settings
from tests.app.test_console import ARTIFACTS, browser, drawings  # noqa: F401 - fixtures
from tests.service_fixtures import live_server

pytestmark = [pytest.mark.redis, pytest.mark.slow]
PHONE = 375


def _run_job(page) -> None:
    page.click("#submit")
    page.wait_for_function(
        "document.querySelector('#job-state').textContent.includes('succeeded')", timeout=300_000
    )
    page.wait_for_function("!document.querySelector('#submit').disabled")
    page.wait_for_selector("#model-view:not([hidden])")
    page.wait_for_function("document.querySelector('#report-summary').textContent.length > 0")


def _cells_on_screen(page) -> list[list]:
    """[left, right, label] of every predictions cell as laid out now."""
    return page.locator("#predictions tbody td").evaluate_all(
        """cells => cells.map((c) => { const r = c.getBoundingClientRect();
            return [r.left, r.right, getComputedStyle(c, '::before').content]; })"""
    )


def test_the_console_on_a_phone(
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
    names = list(drawings)[:2]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with live_server(settings) as url:
        page = browser.new_page(viewport={"width": PHONE, "height": 800})
        script_errors: list[str] = []
        page.on("pageerror", lambda error: script_errors.append(str(error)))
        page.goto(url)
        page.wait_for_function("document.querySelector('#base-model').options.length > 0")
        # empty tables say so, not bare headers
        assert page.locator("#models tbody").inner_text().startswith("No models yet")
        assert "No base models of your own yet" in page.locator("#own-bases tbody").inner_text()

        # one image per class and no validation images: told before Start, for full and quick
        cards = page.locator(".class-card")
        for index, character in enumerate(names):
            cards.nth(index).locator("input[aria-label^='name of class']").fill(f"letter {index}")
            cards.nth(index).locator("input[type=file]").first.set_input_files(
                str(drawings[character][0])
            )
        warning = page.locator("#report-warning")
        assert "no robustness estimate (the full report" in warning.inner_text()
        page.select_option("#report-level", "quick")
        assert "no robustness estimate (the quick report" in warning.inner_text()
        page.locator("section:has(#adapt-title)").screenshot(
            path=str(ARTIFACTS / "console-phone-warning.png")
        )
        validation = cards.nth(0).locator("input[type=file]").nth(1)
        validation.set_input_files(str(drawings[names[0]][2]))
        assert warning.inner_text() == ""  # validation images are held out
        cards.nth(0).locator(".thumbs").nth(1).locator("button.thumb").click()
        assert "no robustness estimate" in warning.inner_text()
        page.select_option("#report-level", "none")
        assert warning.inner_text() == ""
        page.fill("#steps", "2")
        _run_job(page)
        # no report figures: the sentence, no chart
        assert "report=none" in page.locator("#report-summary").inner_text()
        assert page.locator("#report-chart").is_hidden()
        assert page.locator("#predictions tbody").inner_text().startswith("No predictions yet")

        # predictions: every column of every row on screen, each value under its column's name
        page.set_input_files("#predict-files", [str(drawings[c][1]) for c in names])
        page.wait_for_function("document.querySelectorAll('#predictions td.label').length === 2")
        said = page.locator("#predict-state").inner_text()
        assert re.fullmatch(r"2 images classified in \d+\.\d s, each attacked \(APGD\).*", said)
        cells = _cells_on_screen(page)
        assert len(cells) == 2 * 5
        assert all(left >= 0 and right <= PHONE for left, right, _ in cells), cells
        assert {label for _, _, label in cells} == {
            f'"{name}: "'
            for name in ("image", "label", "probabilities", "survives attack", "in domain")
        }
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE, f"the page is {width} px wide at a {PHONE} px viewport"
        page.locator("#model-view").screenshot(path=str(ARTIFACTS / "console-phone-none.png"))

        # two images per class and a quick report: the details are one matrix per adaptation
        for index, character in enumerate(names):
            cards.nth(index).locator("input[type=file]").first.set_input_files(
                str(drawings[character][1])
            )
        page.select_option("#report-level", "quick")
        assert warning.inner_text() == ""
        _run_job(page)
        page.wait_for_function("document.querySelector('#report-chart').naturalWidth > 0")
        page.click("#report-details summary")
        matrix = page.locator("table.report-robust")
        heads = matrix.locator("thead th").all_inner_texts()
        assert heads[0] == "attack" and "eps 0" not in heads and heads[-1] == "eps 0.5 (check)"
        rows = matrix.locator("tbody tr th").all_inner_texts()
        assert rows[0] == "no attack" and rows[-1] == "worst case"
        # clean, the suite in its order, the worst case: not a row per attack and eps
        assert rows == ["no attack", "fgsm", "apgd-ce-20", "worst case"]
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE
        chart = page.locator("#report-chart").bounding_box()
        assert chart is not None and chart["width"] <= PHONE
        page.locator("#model-view").screenshot(path=str(ARTIFACTS / "console-phone-report.png"))
        page.set_viewport_size({"width": 1280, "height": 900})
        page.locator("#model-view").screenshot(path=str(ARTIFACTS / "console-1280-report.png"))
        page.screenshot(path=str(ARTIFACTS / "console-1280.png"), full_page=True)
        assert script_errors == []
