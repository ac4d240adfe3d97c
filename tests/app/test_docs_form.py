"""/docs "Try it out" works, not only renders: every multipart form sends one field per list
item (labels=a, labels=b) and is pre-filled with values the service accepts; in a real browser
(Debian's chromium) the adaptation form, given two PNG files, answers 202. The screenshot goes
to $FEWSHOT_TEST_ARTIFACTS (default build/test-artifacts)."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.schemas.forms import REPEATED, SHIPPED_BASE_MODEL
from common.settings import PRETRAINED_DIR, Settings
from tests.app.test_console import (
    ARTIFACTS,
    browser,  # noqa: F401  (the fixture)
)
from tests.service_fixtures import image_bytes, live_server

ADAPT = "#operations-adaptations-create_adaptation_v1_adaptations_post"


def multipart_forms(document: dict) -> dict[str, dict]:
    """Each operation's multipart/form-data media type, by "METHOD path"."""
    forms = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "multipart/form-data" in content:
                forms[f"{method.upper()} {path}"] = content["multipart/form-data"]
    return forms


def test_every_form_sends_lists_as_repeated_fields_and_has_real_examples():
    document = create_app(Settings(auth="open")).openapi()
    forms = multipart_forms(document)
    assert len(forms) == 4, sorted(forms)  # adaptations, evaluations, predictions, base models
    for operation, media in forms.items():
        fields = media["schema"]["properties"]
        for name, field in fields.items():
            if field["type"] == "array":  # Swagger UI would otherwise comma-join the items
                assert media["encoding"][name] == REPEATED, (operation, name)
            elif field.get("format") != "binary":  # what Swagger UI pre-fills: never "string"
                assert "example" in field or "default" in field or "enum" in field, (
                    operation,
                    name,
                )
    adapt = forms["POST /v1/adaptations"]["schema"]["properties"]
    assert adapt["labels"]["example"] == ["alpha", "beta"]
    assert adapt["steps"]["default"] == 20 and adapt["augment"]["default"] == 0
    assert adapt["val_images"]["example"] == []  # no placeholder sent for an optional list
    assert (PRETRAINED_DIR / f"{SHIPPED_BASE_MODEL}.json").exists()
    assert adapt["base_model"]["example"] == SHIPPED_BASE_MODEL


@pytest.mark.redis
def test_the_adaptation_form_names_the_default_base_model_of_this_service(settings):
    with TestClient(create_app(settings)) as client:  # the lifespan loads the base models
        fields = client.get("/openapi.json").json()["paths"]["/v1/adaptations"]["post"]
    form = fields["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert form["base_model"]["example"] == form["base_model"]["default"] == "tiny-adml"


@pytest.mark.redis
@pytest.mark.slow
def test_try_it_out_adapts_two_png_files_with_two_labels(browser, settings, tmp_path):  # noqa: F811
    files = []
    for index in range(2):
        files.append(tmp_path / f"drawing{index}.png")
        files[-1].write_bytes(image_bytes(index))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with live_server(settings) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 1800})
        page.goto(f"{url}/docs")
        operation = page.locator(ADAPT)
        operation.wait_for(timeout=30_000)
        operation.locator(".opblock-summary").click()
        operation.get_by_role("button", name="Try it out").click()
        form = {
            name: operation.locator(f"tr[data-property-name={name}]")
            for name in ("images", "labels", "base_model", "steps")
        }
        assert form["base_model"].locator("input[type=text]").input_value() == "tiny-adml"
        assert form["steps"].locator("input[type=text]").input_value() == "20"
        labels = form["labels"].locator("input[type=text]")
        assert [labels.nth(i).input_value() for i in range(labels.count())] == ["alpha", "beta"]
        form["images"].locator("input[type=file]").nth(0).set_input_files(files[0])
        form["images"].get_by_role("button", name="Add string item").click()
        form["images"].locator("input[type=file]").nth(1).set_input_files(files[1])
        operation.get_by_role("button", name="Execute").click()
        status = operation.locator(".live-responses-table tbody .response-col_status")
        status.wait_for(timeout=30_000)
        answer = operation.locator(".live-responses-table tbody .response-col_description")
        answer.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "docs-try-it-out-1280.png"))
        assert status.inner_text().strip() == "202", answer.inner_text()
        curl = operation.locator(".curl-command").inner_text()
        assert "-F 'labels=alpha'" in curl and "-F 'labels=beta'" in curl, curl
        assert "val_images" not in curl and "string" not in curl, curl
        model_id = page.locator(".microlight").filter(has_text="model_id").first.inner_text()
        model_id = model_id.split('"model_id": "')[1].split('"')[0]
        model = httpx.get(f"{url}/v1/models/{model_id}").json()
        assert model["classes"] == ["alpha", "beta"] and model["base_model"] == "tiny-adml"
        page.close()
