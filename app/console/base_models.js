// Base models: the picker (what each knows) and the tenant's own, meta-trained from an archive.
"use strict";

import { $, api, element, fillRows, guarded, say, state } from "./core.js";
import { renderClasses } from "./classes.js";
import { describe, followJob } from "./jobs.js";

export function showKnows() {
  const base = state.bases[$("#base-model").value];
  if (!base) return;
  const domain = base.domain;
  const colour = base.input.channels === 1 ? "grayscale" : "colour";
  $("#base-knows").textContent = `What this model knows: ${domain.description}. ` +
    `It sees ${base.input.size}x${base.input.size} ${colour} images${base.input.inverted ? ", ink as light on dark" : ""} (thumbnails show them so)` +
    (domain.detector ? "; images unlike its training images are refused unless you tick \u201cadapt anyway\u201d."
      : "; it cannot tell when an image is unlike its training images.") +
    (base.one_shot_adaptation ? ` With one image per class, a robust adaptation that leaves Steps, Learning rate, FGSM eps and Augmented copies empty uses ${base.one_shot_adaptation.augment} copies and ${base.one_shot_adaptation.steps} steps, measured more robust for this model (and slower).` : "");
  renderClasses();
}

export async function loadSetup() {
  const bases = await (await api("GET", "/v1/base-models")).json();
  const select = $("#base-model");
  const ready = bases.base_models.filter((base) => (base.state || "ready") === "ready");
  state.bases = Object.fromEntries(ready.map((base) => [base.name, base]));
  renderOwnBases(bases.base_models.filter((base) => base.scope === "tenant"));
  select.replaceChildren(...ready.map((base) =>
    element("option", { value: base.name, text: `${base.name}${base.name === bases.default ? " (default)" : ""}` })));
  select.value = bases.default;
  showKnows();
  const limits = await (await api("GET", "/v1/limits")).json();
  $("#steps").max = limits.adapt_steps.max;
  $("#eps").min = limits.eps.min;
  $("#eps").max = limits.eps.max;
  $("#lr").min = limits.lr.min;
  $("#lr").max = limits.lr.max;
  $("#augment").max = limits.augment.max;
  $("#limits").textContent = `${limits.classes.min}-${limits.classes.max} classes, ` +
    `1-${limits.shots_per_class.max} images per class, steps up to ${limits.adapt_steps.max}, ` +
    `eps up to ${limits.eps.max}, augmented copies up to ${limits.augment.max} ` +
    `(each copy adds one pass over the images per step); formats ${limits.image_formats.join(", ")}`;
}

function renderOwnBases(own) {
  fillRows($("#own-bases tbody"), "No base models of your own yet.", own.map((base) => {
    const metrics = base.metrics || {};
    const worstKey = Object.keys(metrics).find((key) => key.startsWith("test_worst@"));
    const figures = worstKey ? `${(100 * metrics.test_clean).toFixed(0)}% / ${(100 * metrics[worstKey]).toFixed(0)}% at eps ${Number(worstKey.split("@")[1]).toFixed(3)}` : "";
    const left = base.progress && base.progress.seconds_left !== null ? `, about ${Math.ceil(base.progress.seconds_left / 60)} min left` : "";
    const latest = (base.validation || [])[0];
    const validated = latest && base.state === "training" ? `, validation ${(100 * latest.val_clean).toFixed(0)}% at step ${latest.iteration}` : "";
    const progress = base.progress ? ` (step ${base.progress.step} of ${base.progress.total}${left}${validated})` : "";
    const remove = element("button", { type: "button", text: "Delete", "aria-label": `delete base model ${base.name}` });
    remove.addEventListener("click", guarded(async () => {
      await api("DELETE", `/v1/base-models/${encodeURIComponent(base.name)}`);
      await loadSetup();
    }, "#own-base-error"));
    return element("tr", {}, [
      element("td", { text: base.name, "data-label": "name" }), element("td", { text: `${base.state}${progress}`, "data-label": "state" }),
      element("td", { text: base.domain ? base.domain.description : (base.settings || {}).description || "", "data-label": "knows" }),
      element("td", { text: figures, "data-label": "test accuracy" }), element("td", {}, [remove]),
    ]);
  }));
}

export async function createOwnBase(event) {
  event.preventDefault();
  say("#own-base-error", null);
  const form = new FormData();
  const archive = $("#own-base-archive").files[0];
  if (!archive) throw new Error("Choose a .zip or .tar archive with one folder of images per class.");
  form.append("archive", archive, archive.name);
  form.append("name", $("#own-base-name").value.trim());
  if ($("#own-base-description").value.trim()) form.append("description", $("#own-base-description").value.trim());
  form.append("channels", $("#own-base-channels").value);
  form.append("image_size", $("#own-base-size").value);
  form.append("iterations", $("#own-base-iterations").value);
  const button = $("#own-base-form button[type=submit]");
  button.disabled = true;
  try {
    const created = await (await api("POST", "/v1/base-models", form)).json();
    $("#own-base-state").textContent = `meta-training ${created.name}: ${created.split.train.length} classes to train on, ` +
      `${created.split.val.length} to validate, ${created.split.test.length} to test`;
    let shown = 0;
    const job = await followJob(created.job_id, (update) => {
      $("#own-base-state").textContent = `meta-training ${created.name}: ${describe(update)}`;
      if (Date.now() - shown > 5000) {  // the table's validation figures, now and then
        shown = Date.now();
        api("GET", "/v1/base-models").then((r) => r.json())
          .then((all) => renderOwnBases(all.base_models.filter((base) => base.scope === "tenant"))).catch(() => {});
      }
    });
    if (job.error) throw Object.assign(new Error(job.error.message), { code: job.error.code });
  } finally {
    button.disabled = false;
    await loadSetup();
  }
}
