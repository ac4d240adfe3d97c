"""GET /v1/models/{id}/report.png: the chart of a real report, scoped to its tenant."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from tests.app.test_api import assert_error, support, wait_for

pytestmark = pytest.mark.redis


def test_report_png(settings, worker_thread):
    with TestClient(create_app(settings)) as client:
        files, data = support(classes=2, shots=2)
        named = {**data, "steps": "2", "name": "my letters"}
        created = client.post("/v1/adaptations", files=files, data=named).json()
        unnamed = client.post("/v1/adaptations", files=files, data={**data, "report": "none"})
        assert wait_for(client, created["job_id"])["state"] == "succeeded"
        response = client.get(f"/v1/models/{created['model_id']}/report.png")
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        chart = Image.open(io.BytesIO(response.content))
        assert chart.format == "PNG" and chart.info["Title"] == "my letters"  # its name
        # no report: a small image with the sentence, titled with the id when it has no name
        plain = unnamed.json()
        assert wait_for(client, plain["job_id"])["state"] == "succeeded"
        small = client.get(f"/v1/models/{plain['model_id']}/report.png").content
        message = Image.open(io.BytesIO(small))
        assert message.info["Title"] == plain["model_id"]  # its id (already reads "model_...")
        assert message.height < 300, message.size  # a drawn chart is 672 px high
        assert_error(client.get("/v1/models/model_nope/report.png"), 404, "model_not_found")
        services = client.app.state.services
        cached = services.report_pngs.get(created["model_id"])
        assert cached == response.content  # drawn once, then served from memory
        again = client.get(f"/v1/models/{created['model_id']}/report.png")
        assert again.content == response.content
        model_id = created["model_id"]
        chart = services.models.get(model_id, "local").report_chart
        assert chart is not None  # kept in the artifact store beside its report
        assert services.models.artifacts.get(chart) == response.content
        with TestClient(create_app(settings)) as other:  # another process: drawn by the first
            report = services.models.get(model_id, "local").report_blob
            services.models.artifacts.delete([report.name])  # the chart alone answers
            assert other.get(f"/v1/models/{model_id}/report.png").content == response.content
        assert client.delete(f"/v1/models/{created['model_id']}").status_code == 204
        assert services.report_pngs.get(created["model_id"]) is None
        gone = client.get(f"/v1/models/{created['model_id']}/report.png")
        assert_error(gone, 404, "model_not_found")
        assert list(services.models.artifacts.list(f"models/{model_id}/")) == []
