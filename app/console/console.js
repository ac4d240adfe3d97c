// The console: plain JS on the public API. Errors are shown as the API words them.
"use strict";

const $ = (selector) => document.querySelector(selector);
const state = { key: sessionStorage.getItem("fewshot-key") || "", classes: [], modelId: null, bases: {} };

function showError(text) { $("#errors").textContent = text; }

async function api(method, path, body) {
  const headers = state.key ? { Authorization: `Bearer ${state.key}` } : {};
  const response = await fetch(path, { method, headers, body });
  if (!response.ok) {
    let text = `HTTP ${response.status}`;
    let details = [];
    let code = "http_error";
    try {
      const error = (await response.json()).error;
      text = `${error.code}: ${error.message}`;
      code = error.code;
      details = error.details || [];
    } catch (_) { /* not JSON: keep the status */ }
    showError(text);
    throw Object.assign(new Error(text), { code, details });
  }
  showError("");
  return response;
}

function element(tag, attributes = {}, children = []) {
  const made = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") made.textContent = value;
    else made.setAttribute(name, value);
  }
  for (const child of children) made.append(child);
  return made;
}

// A drop zone is also a keyboard-operable button (Enter or Space) opening its file chooser.
function wireZone(zone, input, onFiles) {
  zone.addEventListener("click", () => input.click());
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); }
  });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    onFiles([...event.dataTransfer.files]);
  });
  input.addEventListener("change", () => { onFiles([...input.files]); input.value = ""; });
}

function dropZone(label, onFiles) {
  const input = element("input", { type: "file", multiple: "", accept: "image/*", hidden: "" });
  const zone = element("div", { class: "zone", tabindex: "0", role: "button", "aria-label": label, text: label });
  wireZone(zone, input, onFiles);
  return [zone, input];
}

function renderClasses() {
  const holder = $("#classes");
  holder.replaceChildren();
  state.classes.forEach((cls, index) => {
    const name = element("input", { "aria-label": `name of class ${index + 1}`, value: cls.name });
    name.addEventListener("input", () => { cls.name = name.value.trim(); });
    const count = element("small", { text: `${cls.files.length} image(s), ${cls.valFiles.length} validation` });
    const thumbs = element("div", { class: "thumbs" });
    for (const file of cls.files) {
      const reason = cls.problems.get(file);
      const shown = modelView(file, reason ? `${file.name}: ${reason}` : `${file.name} (as the model sees it)`);
      if (reason) shown.classList.add("refused");
      thumbs.append(shown);
    }
    const problems = element("ul", { class: "problems" });
    for (const [file, reason] of cls.problems) problems.append(element("li", { text: `${file.name}: ${reason}` }));
    const [zone, input] = dropZone(`Drop images of class ${index + 1} here, or press Enter`, (files) => {
      cls.files.push(...files); renderClasses();
    });
    const [valZone, valInput] = dropZone(`Validation images of class ${index + 1} (optional)`, (files) => {
      cls.valFiles.push(...files); renderClasses();
    });
    valZone.classList.add("validation");
    const remove = element("button", { type: "button", text: "Remove class" });
    remove.addEventListener("click", () => { state.classes.splice(index, 1); renderClasses(); });
    holder.append(element("div", { class: "class-card" }, [name, zone, input, count, thumbs, problems, valZone, valInput, remove]));
  });
}

// What the base model sees of a file: centre square, its size, grayscale for a 1-channel model.
function modelView(file, title) {
  const base = state.bases[$("#base-model").value];
  const size = base ? base.input.size : 28;
  const canvas = element("canvas", { width: size, height: size, class: "preview", title, role: "img", "aria-label": title });
  createImageBitmap(file).then((bitmap) => {
    const side = Math.min(bitmap.width, bitmap.height);
    const context = canvas.getContext("2d");
    context.fillStyle = "#fff";
    context.fillRect(0, 0, size, size);
    context.drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side, 0, 0, size, size);
    if (base && (base.input.channels === 1 || base.input.inverted)) {
      const pixels = context.getImageData(0, 0, size, size);
      for (let i = 0; i < pixels.data.length; i += 4) {
        const [r, g, b] = pixels.data.slice(i, i + 3);
        const gray = 0.299 * r + 0.587 * g + 0.114 * b;
        const shown = base.input.inverted ? [255 - gray, 255 - gray, 255 - gray] : [gray, gray, gray];
        if (base.input.channels === 1) pixels.data.set(shown, i);
        else if (base.input.inverted) pixels.data.set([255 - r, 255 - g, 255 - b], i);
      }
      context.putImageData(pixels, 0, 0);
    }
  }).catch(() => canvas.classList.add("refused"));  // not an image: the API will name it
  return canvas;
}

function showKnows() {
  const base = state.bases[$("#base-model").value];
  if (!base) return;
  const domain = base.domain;
  const colour = base.input.channels === 1 ? "grayscale" : "colour";
  $("#base-knows").textContent = `What this model knows: ${domain.description}. ` +
    `It sees ${base.input.size}x${base.input.size} ${colour} images${base.input.inverted ? ", ink as light on dark" : ""} (thumbnails show them so)` +
    (domain.detector ? "; images unlike its training images are refused unless you tick \u201cadapt anyway\u201d."
      : "; it cannot tell when an image is unlike its training images.");
  renderClasses();
}

function addClass() {
  state.classes.push({ name: `class ${state.classes.length + 1}`, files: [], valFiles: [], problems: new Map() });
  renderClasses();
}

async function loadSetup() {
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
  $("#limits").textContent = `${limits.classes.min}-${limits.classes.max} classes, ` +
    `1-${limits.shots_per_class.max} images per class, steps up to ${limits.adapt_steps.max}, ` +
    `eps up to ${limits.eps.max}; formats ${limits.image_formats.join(", ")}`;
}

async function submitAdaptation() {
  const form = new FormData();
  const sent = { images: [], val_images: [] };  // [class, file] in upload order, per field
  for (const cls of state.classes) {
    cls.problems.clear();
    for (const file of cls.files) { form.append("images", file, file.name); form.append("labels", cls.name); sent.images.push([cls, file]); }
    for (const file of cls.valFiles) { form.append("val_images", file, file.name); form.append("val_labels", cls.name); sent.val_images.push([cls, file]); }
  }
  if ($("#allow-ood").checked) form.append("allow_out_of_domain", "true");
  for (const name of ["steps", "lr", "eps"]) {
    if ($(`#${name}`).value !== "") form.append(name, $(`#${name}`).value);
  }
  form.append("base_model", $("#base-model").value);
  let created;
  try {
    created = await (await api("POST", "/v1/adaptations", form)).json();
  } catch (error) {
    markProblems(error.details || [], sent);
    throw error;
  }
  $("#job-warnings").textContent = (created.warnings || []).join(" ");
  await followJob(created.job_id);
  await refreshModels();
  await openModel(created.model_id);
}

// The API's per-image details (field, index from 1, reason) shown beside the class that sent them.
function markProblems(details, sent) {
  for (const detail of details) {
    const entry = (sent[detail.field] || [])[detail.index - 1];
    if (entry) entry[0].problems.set(entry[1], detail.reason);
  }
  renderClasses();
  const first = document.querySelector(".class-card .problems li");
  if (first) first.closest(".class-card").scrollIntoView({ block: "center" });
}

async function followJob(jobId) {
  const bar = $("#job-progress");
  bar.hidden = false;
  for (;;) {
    const job = await (await api("GET", `/v1/jobs/${jobId}`)).json();
    bar.max = job.progress.total || 1;
    bar.value = job.progress.step;
    $("#job-state").textContent = `job ${jobId}: ${job.state} (step ${job.progress.step} of ${job.progress.total})`;
    if (job.state === "succeeded") return job;
    if (job.state === "failed" || job.state === "cancelled") {
      const message = job.error ? `${job.error.code}: ${job.error.message}` : `job ${job.state}`;
      showError(message);
      throw new Error(message);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function refreshModels() {
  const listed = await (await api("GET", "/v1/models")).json();
  const body = $("#models tbody");
  body.replaceChildren(...listed.models.map((model) => {
    const open = element("button", { type: "button", text: "Open", "aria-label": `open model ${model.model_id}` });
    open.addEventListener("click", () => openModel(model.model_id));
    return element("tr", {}, [
      element("td", { text: model.model_id }), element("td", { text: model.state }),
      element("td", { text: model.classes.join(", ") }),
      element("td", { text: new Date(model.created * 1000).toLocaleString() }), element("td", {}, [open]),
    ]);
  }));
}

async function openModel(modelId) {
  state.modelId = modelId;
  $("#model-view").hidden = false;
  $("#model-id").textContent = modelId;
  $("#predictions tbody").replaceChildren();
  const report = await (await api("GET", `/v1/models/${modelId}/report`)).json();
  $("#model-warnings").textContent = (report.warnings || []).map((w) => `Warning: ${w}`).join(" ");
  renderReport(report);
  const chart = await (await api("GET", `/v1/models/${modelId}/report.png`)).blob();
  $("#report-chart").src = URL.createObjectURL(chart);
  $("#report-chart").hidden = false;
}

function interval(cell) {
  if (cell.low === undefined || cell.low === null) return `± ${(100 * cell.ci95).toFixed(1)}`;
  return `${(100 * cell.low).toFixed(0)}-${(100 * cell.high).toFixed(0)}%`;
}

function renderReport(report) {
  const summary = report.summary || {};
  $("#report-summary").textContent = summary.text || "";
  $("#report-summary").classList.toggle("untrusted", summary.trustworthy === false);
  $("#report-recommendation").textContent = report.recommendation ? report.recommendation.text : "";
  $("#report-source").textContent = report.available ? `${report.examples} examples: ${report.source}` : "";
  const tables = $("#report-tables");
  const notes = $("#report-notes");
  tables.replaceChildren();
  notes.replaceChildren();
  if (!report.available) return;
  for (const variant of ["robust", "clean_only"]) {
    const rows = report[variant].map((cell) => element("tr", {}, [
      element("td", { text: cell.attack }), element("td", { text: String(cell.eps) }),
      element("td", { text: `${(100 * cell.mean).toFixed(1)}%` }), element("td", { text: interval(cell) }),
      element("td", { text: String(cell.n) }),
    ]));
    const served = report.served === variant ? " (served)" : "";
    tables.append(element("table", { class: `report-${variant}` }, [
      element("caption", { text: (variant === "robust" ? "robust adaptation (clean + FGSM)" : "clean-only fine-tune") + served }),
      element("thead", {}, [element("tr", {}, ["attack", "eps", "accuracy", "95% interval", "images"].map((t) => element("th", { text: t })))]),
      element("tbody", {}, rows),
    ]));
  }
  for (const [name, reason] of Object.entries(report.attacks_skipped || {})) {
    notes.append(element("li", { text: `Skipped ${name}: ${reason}` }));
  }
  for (const [variant, checks] of Object.entries(report.checks || {})) {
    for (const check of checks) {
      notes.append(element("li", { class: check.passed ? "" : "error", text: `Sanity check ${check.passed ? "passed" : "FAILED"} (${variant}) ${check.name}: ${check.detail}` }));
    }
  }
}

function renderOwnBases(own) {
  $("#own-bases tbody").replaceChildren(...own.map((base) => {
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
    }));
    return element("tr", {}, [
      element("td", { text: base.name }), element("td", { text: `${base.state}${progress}` }),
      element("td", { text: base.domain ? base.domain.description : (base.settings || {}).description || "" }),
      element("td", { text: figures }), element("td", {}, [remove]),
    ]);
  }));
}

async function createOwnBase(event) {
  event.preventDefault();
  const form = new FormData();
  const archive = $("#own-base-archive").files[0];
  if (!archive) { showError("choose a .zip or .tar archive with one folder per class"); return; }
  form.append("archive", archive, archive.name);
  form.append("name", $("#own-base-name").value.trim());
  if ($("#own-base-description").value.trim()) form.append("description", $("#own-base-description").value.trim());
  form.append("channels", $("#own-base-channels").value);
  form.append("image_size", $("#own-base-size").value);
  form.append("iterations", $("#own-base-iterations").value);
  const created = await (await api("POST", "/v1/base-models", form)).json();
  $("#own-base-state").textContent = `meta-training ${created.name}: ${created.split.train.length} classes to train on, ` +
    `${created.split.val.length} to validate, ${created.split.test.length} to test`;
  for (;;) {
    const job = await (await api("GET", `/v1/jobs/${created.job_id}`)).json();
    $("#own-base-state").textContent = `meta-training ${created.name}: ${job.state} (step ${job.progress.step} of ${job.progress.total})`;
    if (["succeeded", "failed", "cancelled"].includes(job.state)) {
      if (job.error) showError(`${job.error.code}: ${job.error.message}`);
      break;
    }
    renderOwnBases((await (await api("GET", "/v1/base-models")).json()).base_models.filter((base) => base.scope === "tenant"));
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  await loadSetup();
}

async function predict(files) {
  const form = new FormData();
  for (const file of files) form.append("images", file, file.name);
  form.append("robustness", $("#predict-robust").checked ? "true" : "false");
  const answer = await (await api("POST", `/v1/models/${state.modelId}/predictions`, form)).json();
  const body = $("#predictions tbody");
  answer.predictions.forEach((prediction, index) => {
    const survives = prediction.robustness ? (prediction.robustness.label_survives ? "yes" : "no") : "not checked";
    const inDomain = prediction.in_domain === null || prediction.in_domain === undefined ? "unknown"
      : (prediction.in_domain ? "yes" : `no: ${prediction.domain_warning}`);
    body.append(element("tr", {}, [
      element("td", { text: files[index].name }), element("td", { class: "label", text: prediction.label }),
      element("td", { text: prediction.top.map((t) => `${t.label} ${t.probability.toFixed(2)}`).join(", ") }),
      element("td", { class: "survives", text: survives }),
      element("td", { class: prediction.in_domain === false ? "in-domain error" : "in-domain", text: inDomain }),
    ]));
  });
}

function guarded(action) {
  return (...args) => action(...args).catch((error) => { if (!$("#errors").textContent) showError(String(error)); });
}

document.addEventListener("DOMContentLoaded", () => {
  $("#api-key").value = state.key;
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.key = $("#api-key").value.trim();
    sessionStorage.setItem("fewshot-key", state.key);
    guarded(async () => { await loadSetup(); await refreshModels(); })();
  });
  $("#add-class").addEventListener("click", addClass);
  $("#base-model").addEventListener("change", showKnows);
  $("#own-base-form").addEventListener("submit", (event) => guarded(createOwnBase)(event));
  $("#submit").addEventListener("click", guarded(submitAdaptation));
  $("#refresh-models").addEventListener("click", guarded(refreshModels));
  wireZone($("#predict-zone"), $("#predict-files"), guarded(predict));
  addClass();
  addClass();
  guarded(async () => { await loadSetup(); await refreshModels(); })();
});
