"""The Python half of scripts/compose_test.sh: drives the composed stack over HTTP with the
client, on real Omniglot drawings of the test alphabets (../shared/data/omniglot).

  compose_e2e.py adapt URL KEY          adapt 5 characters x 2 drawings, predict 5 others each;
                                        prints "JOB MODEL" (fails below 60% accuracy)
  compose_e2e.py check URL KEY JOB MODEL  the job succeeded and the model answers
  compose_e2e.py start URL KEY          start a long adaptation; prints its job id
  compose_e2e.py wait URL KEY JOB STATE [ATTEMPT]  wait until the job is in STATE (running,
                                        succeeded), on at least ATTEMPT; any other end fails
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from fewshot_client import FewShotClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.data import omniglot_drawings  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "omniglot"
SHOTS, QUERIES = 2, 5


def _characters() -> list[tuple[str, list[tuple[str, bytes]]]]:
    card = json.loads((ROOT / "models/pretrained/adml-omniglot.json").read_text())
    drawings = omniglot_drawings(DATA, card["data"]["split"]["test"])
    chosen = sorted(drawings)[::13][:5]
    return [(name, sorted(drawings[name].items())) for name in chosen]


def _support(api: FewShotClient, tmp: Path) -> list[tuple[str, Path]]:
    pairs = []
    for index, (name, files) in enumerate(_characters()):
        for file_name, data in files[:SHOTS]:
            path = tmp / f"c{index}_{Path(file_name).name}"
            path.write_bytes(data)
            pairs.append((name, path))
    return pairs


def adapt(url: str, key: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="compose-e2e-"))
    with FewShotClient(url, key) as api:
        created = api.adapt(_support(api, tmp), steps=20)
        job = api.wait(created["job_id"], poll_s=1.0)
        assert job["state"] == "succeeded", job
        queries, truth = [], []
        for index, (name, files) in enumerate(_characters()):
            for file_name, data in files[SHOTS : SHOTS + QUERIES]:
                path = tmp / f"q{index}_{Path(file_name).name}"
                path.write_bytes(data)
                queries.append(path)
                truth.append(name)
        labels = [p["label"] for p in api.predict(created["model_id"], queries)]
        accuracy = sum(a == b for a, b in zip(labels, truth, strict=True)) / len(truth)
        assert accuracy >= 0.6, f"accuracy {accuracy:.2f} on {len(truth)} held-out drawings"
        print(f"{created['job_id']} {created['model_id']}", flush=True)
        print(f"accuracy {accuracy:.2f} on {len(truth)} held-out drawings", file=sys.stderr)


def check(url: str, key: str, job_id: str, model_id: str) -> None:
    with FewShotClient(url, key) as api:
        assert api.job(job_id)["state"] == "succeeded"
        assert api.model(model_id)["state"] == "ready"
        query = next(iter(_characters()))[1][SHOTS + QUERIES][1]
        path = Path(tempfile.mkdtemp(prefix="compose-e2e-")) / "check.png"
        path.write_bytes(query)
        assert api.predict(model_id, [path])[0]["label"]


def start(url: str, key: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="compose-e2e-"))
    with FewShotClient(url, key) as api:
        # long enough that a SIGTERM sent once it runs finds it mid-job on a loaded machine
        print(api.adapt(_support(api, tmp), steps=200)["job_id"], flush=True)


def wait(url: str, key: str, job_id: str, state: str, attempt: str = "1") -> None:
    deadline = time.monotonic() + 300
    with FewShotClient(url, key) as api:
        while time.monotonic() < deadline:
            job = api.job(job_id)
            if job["state"] == state:
                if job["attempt"] < int(attempt):
                    raise SystemExit(f"job {job_id} {state} on attempt {job['attempt']}")
                return
            if job["state"] in ("succeeded", "failed", "cancelled"):
                raise SystemExit(f"job {job_id} ended {job['state']}: {job.get('error')}")
            time.sleep(0.2)
    raise SystemExit(f"job {job_id} not {state} after 300 s")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"adapt": adapt, "check": check, "start": start, "wait": wait}[command](*args)
