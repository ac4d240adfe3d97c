"""``FewShotClient``: every endpoint of the API, job polling, errors in the API's own words.

with FewShotClient("http://127.0.0.1:8000", api_key="fsk_...") as api:
    created = api.adapt_folder("support/")          # a folder per class
    job = api.wait(created["job_id"], on_progress=print)
    api.predict(created["model_id"], ["query.png"])
"""

from __future__ import annotations

import io
import mimetypes
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
FINISHED = {"succeeded", "failed", "cancelled"}


class ApiError(Exception):
    """The API answered an error: its HTTP status, stable code and message."""

    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(f"{code} ({status}): {message}")
        self.status, self.code, self.message = status, code, message
        self.details = details or []  # per item, e.g. each out-of-domain image


class JobFailed(Exception):
    """A job ended failed or cancelled; ``job`` is its last state."""

    def __init__(self, job: dict[str, Any]) -> None:
        error = job.get("error") or {}
        super().__init__(f"job {job['job_id']} {job['state']}: {error.get('message', '')}")
        self.job = job


def labelled_folder(folder: Path) -> list[tuple[str, Path]]:
    """(label, image) for a folder with one subfolder of images per class."""
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    pairs = [
        (cls.name, image)
        for cls in sorted(p for p in folder.iterdir() if p.is_dir())
        for image in sorted(cls.iterdir())
        if image.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not pairs:
        raise ValueError(f"{folder} holds no class folders with images in them")
    return pairs


def zip_folder(folder: Path) -> bytes:
    """A zip of ``folder``'s class subfolders and their images (nothing else), in memory."""
    pairs = labelled_folder(folder)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for label, image in pairs:
            archive.write(image, f"{label}/{image.name}")
    return buffer.getvalue()


def _file(field: str, path: Path) -> tuple[str, tuple[str, bytes, str]]:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return field, (path.name, path.read_bytes(), kind)


class FewShotClient:
    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 120.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def __enter__(self) -> FewShotClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        if response.is_success:
            return response
        try:
            error = response.json()["error"]
            raise ApiError(
                response.status_code, error["code"], error["message"], error.get("details")
            )
        except (ValueError, KeyError, TypeError):
            raise ApiError(response.status_code, "http_error", response.text[:500]) from None

    # reading
    def base_models(self) -> dict[str, Any]:
        return self._call("GET", "/v1/base-models").json()

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/jobs/{job_id}").json()

    def models(self, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        return self._call("GET", "/v1/models", params={"limit": limit, "offset": offset}).json()

    def model(self, model_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/models/{model_id}").json()

    def report(self, model_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/models/{model_id}/report").json()

    def report_png(self, model_id: str) -> bytes:
        return self._call("GET", f"/v1/models/{model_id}/report.png").content

    def ready(self) -> dict[str, Any]:
        return self._call("GET", "/readyz").json()

    # writing
    def adapt(
        self,
        support: Sequence[tuple[str, Path]],
        validation: Sequence[tuple[str, Path]] = (),
        **settings: Any,
    ) -> dict[str, Any]:
        """Upload (label, image) pairs; ``settings``: base_model, steps, lr, eps, augment,
        adaptation (robust or clean_only), report (full, quick or none), allow_out_of_domain.
        The 202 body."""
        files = [_file("images", path) for _, path in support]
        files += [_file("val_images", path) for _, path in validation]
        data = {
            "labels": [label for label, _ in support],
            "val_labels": [label for label, _ in validation],
            **{name: str(value) for name, value in settings.items() if value is not None},
        }
        return self._call("POST", "/v1/adaptations", files=files, data=data).json()

    def adapt_folder(
        self, folder: Path | str, validation: Path | str | None = None, **settings: Any
    ) -> dict[str, Any]:
        """:meth:`adapt` on a folder of class folders; ``validation``, another such folder
        (same class names), is sent as the validation images of the robustness report."""
        held_out = () if validation is None else labelled_folder(Path(validation))
        return self.adapt(labelled_folder(Path(folder)), held_out, **settings)

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/jobs/{job_id}/cancel").json()

    def delete_model(self, model_id: str) -> None:
        self._call("DELETE", f"/v1/models/{model_id}")

    def predict(
        self,
        model_id: str,
        images: Iterable[Path | str],
        *,
        robustness: bool = False,
        eps: float | None = None,
        top_k: int | None = None,
    ) -> list[dict[str, Any]]:
        files = [_file("images", Path(image)) for image in images]
        data = {"robustness": "true" if robustness else "false"}
        if eps is not None:
            data["eps"] = str(eps)
        if top_k is not None:
            data["top_k"] = str(top_k)
        path = f"/v1/models/{model_id}/predictions"
        return self._call("POST", path, files=files, data=data).json()["predictions"]

    def evaluate(self, model_id: str, labelled: Sequence[tuple[str, Path]]) -> dict[str, Any]:
        files = [_file("images", path) for _, path in labelled]
        data = {"labels": [label for label, _ in labelled]}
        return self._call(
            "POST", f"/v1/models/{model_id}/evaluations", files=files, data=data
        ).json()

    def create_base_model(self, folder: Path | str, name: str, **settings: Any) -> dict[str, Any]:
        """Zip ``folder`` (one subfolder of images per class) in memory and upload it;
        ``settings``: description, channels, image_size, eps, iterations. The 202 body."""
        archive = zip_folder(Path(folder))
        data = {"name": name, **{k: str(v) for k, v in settings.items() if v is not None}}
        files = [("archive", (f"{name}.zip", archive, "application/zip"))]
        return self._call("POST", "/v1/base-models", files=files, data=data).json()

    def delete_base_model(self, name: str) -> None:
        self._call("DELETE", f"/v1/base-models/{name}")

    def wait(
        self,
        job_id: str,
        *,
        poll_s: float = 0.5,
        timeout_s: float = 3600,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        until: str = "finished",
    ) -> dict[str, Any]:
        """Poll until the job finishes (``until="finished"``) or, for an adaptation, until its
        model is published (``until="model"``: it answers predictions while the job goes on
        with the report); the job then, or JobFailed / TimeoutError."""
        if until not in ("finished", "model"):
            raise ValueError(f"until must be 'finished' or 'model', got {until!r}")
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if on_progress is not None:
                on_progress(job)
            model_gone = (job.get("error") or {}).get("code") == "model_deleted"
            if until == "model" and job.get("model_ready") and not model_gone:
                return job  # it answers, whatever became of its report
            if job["state"] in FINISHED:
                if job["state"] != "succeeded":
                    raise JobFailed(job)
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['state']} after {timeout_s} s")
            time.sleep(poll_s)
