"""The Kubernetes manifests of deploy/k8s: valid against the API schemas (kubernetes-validate
bundles them: no cluster, no network), and wired as the compose file is (same images, probes
from /readyz, /healthz and worker.alive, non-root, a GPU per worker)."""

from __future__ import annotations

import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = "1.30.0"  # the oldest version the manifests are meant for


def documents() -> dict[str, dict]:
    found = {}
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            found[f"{document['kind']}/{document['metadata']['name']}"] = document
    return found


@pytest.mark.parametrize("name", sorted(documents()))
def test_each_manifest_is_valid_kubernetes(name):
    kubernetes_validate.validate(documents()[name], KUBERNETES, strict=True)


def test_a_broken_manifest_is_refused():
    broken = copy.deepcopy(documents()["Deployment/fewshot-api"])
    broken["spec"]["replicas"] = "two"  # only this is wrong
    with pytest.raises(kubernetes_validate.ValidationError, match="replicas"):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def _container(name: str) -> dict:
    return documents()[name]["spec"]["template"]["spec"]["containers"][0]


def test_probes_images_and_identity_match_the_compose_file():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    api, worker = _container("Deployment/fewshot-api"), _container("Deployment/fewshot-worker")
    assert api["image"] == compose["api"]["image"] and worker["image"] == compose["worker"]["image"]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz?workers=false"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert worker["livenessProbe"]["exec"]["command"] == ["python", "-m", "worker.alive"]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    for name in ("Deployment/fewshot-api", "Deployment/fewshot-worker", "StatefulSet/redis"):
        pod = documents()[name]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] and not pod["automountServiceAccountToken"]
        assert pod["containers"][0]["securityContext"]["capabilities"]["drop"] == ["ALL"]
    settings = documents()["ConfigMap/fewshot-settings"]["data"]
    assert settings["REDIS_URL"].startswith("redis://redis:6379/")
    assert documents()["Service/redis"]["spec"]["ports"][0]["port"] == 6379


def test_the_api_and_the_workers_share_the_artifact_store():
    location = documents()["ConfigMap/fewshot-settings"]["data"]["FEWSHOT_ARTIFACTS_URL"]
    claim = documents()["PersistentVolumeClaim/fewshot-artifacts"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for name in ("Deployment/fewshot-api", "Deployment/fewshot-worker"):
        pod = documents()[name]["spec"]["template"]["spec"]
        volumes = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
        assert volumes[mounts[location]] == "fewshot-artifacts", name
