"""Adapt, predict and plot the robustness report end to end, with the Python client.

    pip install ./client    # robust-fewshot-client: httpx only, no torch (docs/client.md)
    python docs/examples/quickstart.py SUPPORT_DIR QUERY_IMAGE [--url URL] [--api-key KEY]

SUPPORT_DIR holds one folder of images per class (a few per class); QUERY_IMAGE is classified.
Writes report.png beside the current directory. Run it cell by cell in a notebook if you like:
each numbered step is one cell.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fewshot_client import FewShotClient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("support", type=Path)
    parser.add_argument("query", type=Path)
    parser.add_argument("--url", default=os.environ.get("FEWSHOT_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--api-key", default=os.environ.get("FEWSHOT_API_KEY"))
    parser.add_argument("--out", type=Path, default=Path("report.png"))
    args = parser.parse_args()

    with FewShotClient(args.url, api_key=args.api_key) as api:
        # 1. upload the support set: one adaptation job, answered at once with its ids
        created = api.adapt_folder(args.support)
        print("job", created["job_id"], "-> model", created["model_id"])

        # 2. wait for the worker: adversarial fine-tuning, then the robustness report
        def show(job: dict) -> None:
            print(f"  {job['state']:>9}  step {job['progress']['step']}/{job['progress']['total']}")

        api.wait(created["job_id"], poll_s=1.0, on_progress=show)

        # 3. predict, and ask whether each label survives an attack (APGD-CE-20)
        for prediction in api.predict(created["model_id"], [args.query], robustness=True):
            top = prediction["top"][0]
            survives = prediction["robustness"]["label_survives"]
            print(
                f"{args.query.name}: {top['label']} (p={top['probability']:.2f}), "
                f"survives an attack at eps {prediction['robustness']['eps']}: {survives}"
            )

        # 4. the report: its sentence, its recommendation, the worst case per eps, the chart
        report = api.report(created["model_id"])
        print(report["summary"]["text"])
        if report["recommendation"]:
            print(report["recommendation"]["text"])
        if report["available"]:
            for cell in report[report["served"]]:
                if cell["attack"] in ("clean", "worst"):
                    print(
                        f"  {cell['attack']:>5} eps {cell['eps']:<4} {100 * cell['mean']:5.1f}% "
                        f"(95% interval {100 * cell['low']:.0f}-{100 * cell['high']:.0f}%)"
                    )
        args.out.write_bytes(api.report_png(created["model_id"]))
        print("chart written to", args.out)


if __name__ == "__main__":
    main()
