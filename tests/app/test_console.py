"""The web console in a real browser (Playwright + Debian's chromium): the whole flow with real
Omniglot drawings, keyboard use, errors as the API words them, nothing fetched off the server.
Screenshots go to $FEWSHOT_TEST_ARTIFACTS (default build/test-artifacts)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis

from common.api_keys import ApiKeys
from common.keys import Keys
from common.settings import PRETRAINED_DIR, Settings
from models.core import load_checkpoint
from models.data import omniglot_drawings
from tests.service_fixtures import live_server
from tests.synthetic import colour_shape

pytestmark = [pytest.mark.redis, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("FEWSHOT_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CLASSES, SHOTS = 3, 2


@pytest.fixture
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("no chromium (apt-get install chromium)")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def drawings(omniglot_path, tmp_path) -> dict[str, list[Path]]:
    """Real drawings of three test-alphabet characters written as PNG files."""
    split = load_checkpoint(PRETRAINED_DIR / "adml-omniglot.json").card["data"]["split"]
    characters = omniglot_drawings(omniglot_path, split["test"])
    chosen = sorted(characters)[::13][:CLASSES]
    files = {}
    for index, character in enumerate(chosen):
        folder = tmp_path / f"c{index}"
        folder.mkdir()
        files[character] = []
        for name, data in sorted(characters[character].items())[: SHOTS + 1]:
            (folder / Path(name).name).write_bytes(data)
            files[character].append(folder / Path(name).name)
    return files


def test_the_console_walks_the_whole_flow(
    browser, drawings, redis_url, prefix, start_worker, tmp_path
):
    settings = Settings(
        redis_url=redis_url,
        key_prefix=prefix,
        worker_block_ms=50,
        auth="keys",
        worker_alive_file=tmp_path / "alive",
    )
    start_worker(settings)
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    photo = tmp_path / "photo.jpg"
    colour_shape(np.random.default_rng(0), "circle", size=96).save(photo, quality=90)
    _, token = ApiKeys(redis.Redis.from_url(redis_url), Keys(prefix)).create("console")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with live_server(settings) as url:
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        # a listener from the start makes chromium intercept file choosers before any key press
        # (expect_file_chooser alone turns interception on without waiting: a race)
        page.on("filechooser", lambda chooser: None)
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        script_errors: list[str] = []
        page.on("pageerror", lambda error: script_errors.append(str(error)))
        page.goto(url)
        # no key yet: the API's words, once its answer arrives (after the page's load event)
        page.wait_for_function("document.querySelector('#errors').textContent.length > 0")
        assert "unauthorized" in page.locator("#errors").inner_text()
        page.fill("#api-key", token)
        page.click("#key-form button")
        page.wait_for_function("document.querySelector('#base-model').options.length > 0")
        assert page.locator("#errors").inner_text() == ""
        knows = page.locator("#base-knows").inner_text()
        assert "handwritten characters" in knows and "16 copies and 40 steps" in knows

        page.click("#add-class")  # a third class
        names = list(drawings)
        cards = page.locator(".class-card")
        assert cards.count() == CLASSES
        assert page.evaluate("document.activeElement.getAttribute('aria-label')") == (
            "name of class 3"  # focus goes to the new class, not to <body>
        )
        # one class with images: checked before anything is sent, problems beside the classes
        cards.nth(0).locator("input[type=file]").first.set_input_files(
            [str(p) for p in drawings[names[0]][:SHOTS]]
        )
        page.click("#submit")
        assert (
            page.locator("#submit-error")
            .inner_text()
            .startswith("Add images to at least 2 classes.")
        )
        assert "add at least one image" in cards.nth(1).locator(".problems").inner_text()

        for index, character in enumerate(names):
            cards.nth(index).locator("input[aria-label^='name of class']").fill(character)
            if index:  # class 0 has its images already
                cards.nth(index).locator("input[type=file]").first.set_input_files(
                    [str(p) for p in drawings[character][:SHOTS]]
                )
        page.fill("#steps", "5")
        page.fill("#augment", "1")
        # a colour photo in a fourth class: refused, named beside its class, page scrolled there
        page.click("#add-class")
        cards.nth(CLASSES).locator("input[type=file]").first.set_input_files(str(photo))
        page.click("#submit")
        page.wait_for_function(
            "document.querySelector('#submit-error').textContent.includes('(out_of_domain)')"
        )
        problem = cards.nth(CLASSES).locator(".problems li")
        assert problem.count() == 1 and problem.inner_text().startswith("photo.jpg: ")
        assert cards.nth(CLASSES).locator("canvas.refused").count() == 1
        assert cards.nth(0).locator(".problems li").count() == 0
        page.screenshot(path=str(ARTIFACTS / "console-out-of-domain.png"), full_page=True)
        remove = cards.nth(CLASSES).locator("button", has_text="Remove class")
        assert remove.get_attribute("aria-label") == "remove class 4 (class 4)"
        remove.click()
        assert cards.count() == CLASSES
        assert page.evaluate("document.activeElement.tagName") != "BODY"
        page.screenshot(path=str(ARTIFACTS / "console-adapt.png"), full_page=True)
        page.evaluate(
            """() => { window.jobStates = [];
            new MutationObserver(() => window.jobStates.push(
                document.querySelector('#job-state').textContent))
              .observe(document.querySelector('#job-state'), {childList: true});
            window.summaries = [];
            new MutationObserver(() => window.summaries.push(
                document.querySelector('#report-summary').textContent))
              .observe(document.querySelector('#report-summary'), {childList: true}); }"""
        )
        page.click("#submit")
        assert page.locator("#submit").is_disabled()  # no second job from a double click
        page.wait_for_function(
            "document.querySelector('#job-state').textContent.includes('succeeded')",
            timeout=300_000,
        )
        page.wait_for_function("!document.querySelector('#submit').disabled")
        assert page.locator("#cancel").is_hidden()
        states = page.evaluate("window.jobStates")
        assert any(text.startswith("Adaptation measuring robustness") for text in states), states
        assert any("%), about" in text or "%)" in text for text in states), states  # a share
        # the model opened once published, while its report was being computed
        summaries = page.evaluate("window.summaries")
        assert any("being computed" in text for text in summaries), summaries
        page.wait_for_selector("#model-view:not([hidden])")
        page.wait_for_function("document.querySelector('#report-chart').naturalWidth > 0")
        assert page.locator("#models tbody tr").count() == 1
        assert "ready" in page.locator("#models tbody tr").inner_text()
        listed = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {token}"})
        assert listed.json()["models"][0]["settings"]["augment"] == 1  # the form's field was sent
        assert page.locator("table.report-robust tbody tr").count() >= 4
        # the plain sentence first; the tables sit in closed details
        assert page.locator("#report-summary").inner_text().startswith("On 6 of your images")
        assert page.locator("#report-details").get_attribute("open") is None

        # predictions through the keyboard: focus the drop zone, Enter opens the file chooser
        assert script_errors == []
        page.focus("#predict-zone")
        with page.expect_file_chooser() as chooser:
            page.keyboard.press("Enter")
        chooser.value.set_files([str(drawings[c][SHOTS]) for c in names] + [str(photo)])
        page.wait_for_function(
            f"document.querySelectorAll('#predictions tbody tr').length === {CLASSES + 1}"
        )
        labels = page.locator("#predictions td.label").all_inner_texts()[:CLASSES]
        assert sum(label == c for label, c in zip(labels, names, strict=True)) >= CLASSES - 1
        in_domain = page.locator("#predictions td.in-domain").all_inner_texts()
        assert in_domain[-1].startswith("no: ") and in_domain.count("yes") >= CLASSES - 1
        assert set(page.locator("#predictions td.survives").all_inner_texts()) <= {"yes", "no"}
        page.screenshot(path=str(ARTIFACTS / "console-model.png"), full_page=True)
        # a file that is no image: its error beside the drop zone, in words, counted from 1
        page.focus("#predict-zone")
        with page.expect_file_chooser() as chooser:
            page.keyboard.press("Enter")
        chooser.value.set_files([str(drawings[names[0]][SHOTS]), str(notes)])
        page.wait_for_function("document.querySelector('#predict-error').textContent.length > 0")
        error = page.locator("#predict-error").inner_text()
        assert "(invalid_image)" in error and "notes.txt" in error, error
        assert "BytesIO" not in error and "image 0" not in error
        box = page.locator("#predict-error").bounding_box()
        assert box is not None and 0 <= box["y"] <= 1400  # on screen, not far above
        assert script_errors == []
        offsite = [u for u in requested if not u.startswith((url, "blob:", "data:"))]
        assert offsite == []  # works offline: no CDN, nothing outside the service


def test_the_console_meta_trains_a_base_model_of_your_own(
    browser, redis_url, prefix, start_worker, tmp_path
):
    import zipfile

    from tests.synthetic import shape_dataset

    settings = Settings(
        redis_url=redis_url,
        key_prefix=prefix,
        worker_block_ms=50,
        auth="open",
        worker_alive_file=tmp_path / "alive",
    )
    start_worker(settings)
    archive = tmp_path / "shapes.zip"
    with zipfile.ZipFile(archive, "w") as packed:
        for name, files in shape_dataset(20, 5, size=16).items():
            for index, data in enumerate(files):
                packed.writestr(f"shapes/{name}/{index}.png", data)
    with live_server(settings) as url:
        page = browser.new_page(viewport={"width": 375, "height": 900})
        script_errors: list[str] = []
        page.on("pageerror", lambda error: script_errors.append(str(error)))
        page.goto(url)
        page.wait_for_function("document.querySelector('#base-model').options.length > 0")
        page.set_input_files("#own-base-archive", str(archive))
        page.fill("#own-base-name", "shapes")
        page.fill("#own-base-description", "coloured shapes")
        page.fill("#own-base-size", "16")
        page.fill("#own-base-iterations", "4")
        page.click("#own-base-form button[type=submit]")
        page.wait_for_function(
            "document.querySelector('#own-base-state').textContent.includes('succeeded')",
            timeout=300_000,
        )
        page.wait_for_function(
            "[...document.querySelectorAll('#base-model option')]"
            ".some((option) => option.value === 'shapes')"
        )
        row = page.locator("#own-bases tbody tr")
        assert row.count() == 1 and "ready" in row.inner_text()
        assert "coloured shapes" in row.inner_text()
        page.select_option("#base-model", "shapes")
        knows = page.locator("#base-knows").inner_text()
        assert "coloured shapes" in knows and "16x16 colour" in knows
        page.screenshot(path=str(ARTIFACTS / "console-own-base-375.png"), full_page=True)
        page.click("#own-bases button[aria-label='delete base model shapes']")
        page.wait_for_function(  # one row left: the one that says there are none
            "document.querySelector('#own-bases tbody').textContent"
            ".includes('No base models of your own yet')"
        )
        assert page.locator("#own-bases tbody tr").count() == 1
        assert script_errors == []
