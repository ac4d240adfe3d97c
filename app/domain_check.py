"""Out-of-domain uploads: refused with 422 ``out_of_domain`` (each image and why), or accepted
with a warning when the request says ``allow_out_of_domain=true``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.datastructures import FormData, UploadFile

from app.errors import ApiError
from app.uploads import files_of, form_flag
from models.report import plural
from models.service import BaseModel, LabelledImages

SHOWN = 5  # images named in the message; ``details`` lists them all


def foreign_images(
    base: BaseModel, uploads: Sequence[tuple[str, list[UploadFile], LabelledImages | None]]
) -> tuple[list[dict[str, Any]], int]:
    """Each out-of-domain image as {field, index (from 1), filename, reason}; images checked."""
    found, checked = [], 0
    for field, files, labelled in uploads:
        if labelled is None:
            continue
        verdicts = base.check_domain(labelled.images)
        if verdicts is None:
            continue
        checked += len(verdicts)
        for number, (upload, verdict) in enumerate(zip(files, verdicts, strict=True), start=1):
            if not verdict.in_domain:
                found.append(
                    {
                        "field": field,
                        "index": number,
                        "filename": upload.filename or "unnamed",
                        "reason": verdict.reason,
                    }
                )
    return found, checked


def support_warnings(
    form: FormData,
    base: BaseModel,
    support: LabelledImages,
    validation: LabelledImages | None,
) -> list[str]:
    """Warnings for the model's record; 422 when images are foreign and the form does not allow
    it. Nothing is stored before this returns."""
    allow = form_flag(form, "allow_out_of_domain")
    uploads = [
        ("images", files_of(form, "images"), support),
        ("val_images", files_of(form, "val_images"), validation),
    ]
    foreign, checked = foreign_images(base, uploads)
    if not foreign:
        return []
    knows = base.domain_summary()["description"]
    named = ", ".join(f"{f['field']} #{f['index']} ({f['filename']})" for f in foreign[:SHOWN])
    more = f" and {len(foreign) - SHOWN} more" if len(foreign) > SHOWN else ""
    which = f"{len(foreign)} of {plural(checked, 'image')} {'does' if len(foreign) == 1 else 'do'}"
    if not allow:
        raise ApiError(
            422,
            "out_of_domain",
            f"{which} not look like what base model {base.name} "
            f"knows ({knows}): {named}{more}. First: {foreign[0]['reason']}. Use a base model "
            "made for this kind of image, or send allow_out_of_domain=true to adapt anyway "
            "(the model and its report then carry a warning).",
            details=foreign,
        )
    return [
        f"{which} not look like what base model {base.name} knows "
        f"({knows}): {named}{more}. They were accepted because the request allowed it; "
        "accuracy and robustness figures may not hold for such images."
    ]
