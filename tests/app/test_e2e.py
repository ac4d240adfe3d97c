"""End to end: real Omniglot images of held-out alphabets through HTTP, a real worker and the
shipped ADML initialization; the adapted model must classify new drawings of those characters."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from common.api_keys import ApiKeys
from common.settings import PRETRAINED_DIR, Settings
from models.core import load_checkpoint
from models.data import omniglot_drawings
from tests.app.test_api import wait_for
from tests.synthetic import colour_shape, encode

pytestmark = [pytest.mark.redis, pytest.mark.slow]
SHIPPED = PRETRAINED_DIR / "adml-omniglot.json"


def held_out_characters(omniglot_path) -> dict[str, list[tuple[str, bytes]]]:
    """The shipped initialization's test-alphabet characters: their (file, PNG) drawings."""
    if not SHIPPED.exists():
        pytest.skip(f"no shipped initialization at {SHIPPED} yet")
    split = load_checkpoint(SHIPPED).card["data"]["split"]
    return {
        name: sorted(files.items())
        for name, files in omniglot_drawings(omniglot_path, split["test"]).items()
    }


def test_five_way_five_shot_on_held_out_alphabets(omniglot_path, redis_url, prefix, start_worker):
    characters = held_out_characters(omniglot_path)
    chosen = sorted(characters)[::7][:5]  # five characters spread over the test alphabets
    settings = Settings(redis_url=redis_url, key_prefix=prefix, worker_block_ms=50, auth="keys")
    start_worker(settings)
    support, labels, queries = [], [], []
    for character in chosen:
        drawings = characters[character]
        for file_name, data in drawings[:5]:
            support.append(("images", (file_name, data, "image/png")))
            labels.append(character)
        queries += [(character, file_name, data) for file_name, data in drawings[5:12]]
    with TestClient(create_app(settings)) as client:
        services = client.app.state.services
        _, token = ApiKeys(services.client, services.keys).create("e2e")
        client.headers["Authorization"] = f"Bearer {token}"  # as deployed: with an API key
        created = client.post("/v1/adaptations", files=support, data={"labels": labels})
        assert created.status_code == 202, created.text
        job = wait_for(client, created.json()["job_id"], timeout=600)
        assert job["state"] == "succeeded", job
        model_id = created.json()["model_id"]
        files = [("images", (name, data, "image/png")) for _, name, data in queries]
        predictions = client.post(f"/v1/models/{model_id}/predictions", files=files).json()
        predicted = [p["label"] for p in predictions["predictions"]]
        accuracy = sum(p == c for p, (c, _, _) in zip(predicted, queries, strict=True)) / len(
            queries
        )
        assert accuracy >= 0.85, f"accuracy {accuracy:.3f} on {len(queries)} held-out drawings"
        in_domain = [p["in_domain"] for p in predictions["predictions"]]
        assert sum(in_domain) >= len(queries) - 2, in_domain  # the detector: ~1% refused
        photo = encode(colour_shape(np.random.default_rng(0), "circle", size=96), "JPEG")
        foreign = client.post(
            f"/v1/models/{model_id}/predictions", files=[("images", ("c.jpg", photo))]
        ).json()["predictions"][0]
        assert foreign["in_domain"] is False and "training images" in foreign["domain_warning"]
        model = client.get(f"/v1/models/{model_id}").json()
        assert model["warnings"] == [] and model["report_summary"]["trustworthy"] is True

        report = client.get(f"/v1/models/{model_id}/report").json()
        assert report["available"] and report["examples"] == 25
        summary = report["summary"]  # the sentence a non-expert reads first
        assert summary["text"].startswith("On 25 of your images, each held out in turn")
        attacked = summary["under_attack"]
        assert summary["eps"] == 0.1 and attacked["low"] <= attacked["accuracy"] <= attacked["high"]
        assert report["recommendation"]["adaptation"] in ("robust", "clean_only")
        assert model["report_summary"]["text"] == summary["text"]
        for variant in ("robust", "clean_only"):
            cells = {(c["attack"], c["eps"]): c for c in report[variant]}
            for eps in (0.05, 0.1, 0.2):
                worst = cells[("worst", eps)]["mean"]
                by_attack = [c["mean"] for (a, e), c in cells.items() if e == eps and a != "worst"]
                assert worst <= min(by_attack) and len(by_attack) >= 3  # fgsm, pgd-20, apgd-ce
                assert cells[("apgd-ce-100", eps)]["mean"] <= cells[("pgd-20", eps)]["mean"] + 0.05
                assert cells[("fgsm", eps)]["n"] == 25
            assert all(check["passed"] for check in report["checks"][variant]), report["checks"]


def test_five_way_one_shot_gets_the_cards_recipe_and_classifies(
    omniglot_path, redis_url, prefix, start_worker
):
    """One drawing per character, no settings sent: the shipped card's one-shot recipe
    (16 affine copies, 40 steps) through the real worker, and new drawings classified."""
    characters = held_out_characters(omniglot_path)
    chosen = sorted(characters)[3::11][:5]
    settings = Settings(redis_url=redis_url, key_prefix=prefix, worker_block_ms=50, auth="keys")
    start_worker(settings)
    support, labels, queries = [], [], []
    for character in chosen:
        (file_name, data), *others = characters[character]
        support.append(("images", (file_name, data, "image/png")))
        labels.append(character)
        queries += [(character, name, drawing) for name, drawing in others[:5]]
    with TestClient(create_app(settings)) as client:
        services = client.app.state.services
        _, token = ApiKeys(services.client, services.keys).create("e2e")
        client.headers["Authorization"] = f"Bearer {token}"
        created = client.post(
            "/v1/adaptations", files=support, data={"labels": labels, "report": "none"}
        )
        assert created.status_code == 202, created.text
        job = wait_for(client, created.json()["job_id"], timeout=600)
        assert job["state"] == "succeeded", job
        model_id = created.json()["model_id"]
        served = client.get(f"/v1/models/{model_id}").json()["settings"]
        assert (served["augment"], served["steps"]) == (16, 40), served
        files = [("images", (name, data, "image/png")) for _, name, data in queries]
        predictions = client.post(f"/v1/models/{model_id}/predictions", files=files).json()
        predicted = [p["label"] for p in predictions["predictions"]]
        correct = sum(p == c for p, (c, _, _) in zip(predicted, queries, strict=True))
        assert correct >= 20, f"{correct} of {len(queries)} held-out drawings correct"
