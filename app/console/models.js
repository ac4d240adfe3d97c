// Models: the list (kept fresh while some are pending), one model's report and predictions.
"use strict";

import { $, api, element, guarded, plural, say, state } from "./core.js";

let refreshTimer = null;

export async function refreshModels() {
  const listed = await (await api("GET", "/v1/models")).json();
  $("#models tbody").replaceChildren(...listed.models.map((model) => {
    const open = element("button", { type: "button", text: "Open", "aria-label": `open model ${model.model_id}` });
    open.addEventListener("click", guarded(() => openModel(model.model_id), "#models-error"));
    return element("tr", {}, [
      element("td", { text: model.name ? `${model.name} (${model.model_id})` : model.model_id, class: "id" }),
      element("td", { text: model.report_state === "pending" ? "ready (report pending)" : model.state }),
      element("td", { text: model.classes.join(", ") }),
      element("td", { text: new Date(model.created * 1000).toLocaleString() }), element("td", {}, [open]),
    ]);
  }));
  clearTimeout(refreshTimer);
  if (listed.models.some((model) => model.state === "pending" || model.report_state === "pending")) {
    refreshTimer = setTimeout(guarded(refreshModels, "#models-error"), 3000);
  }
}

function clearReport() {
  for (const id of ["#report-summary", "#report-recommendation", "#report-source"]) $(id).textContent = "";
  $("#report-summary").classList.remove("untrusted");
  $("#report-chart").hidden = true;
  if ($("#report-chart").src.startsWith("blob:")) URL.revokeObjectURL($("#report-chart").src);
  $("#report-chart").removeAttribute("src");
  $("#report-details").hidden = true;
  $("#report-tables").replaceChildren();
  $("#report-notes").replaceChildren();
}

function clearModelView() {
  clearReport();
  for (const id of ["#model-warnings", "#predict-error", "#predict-state"]) $(id).textContent = "";
  $("#predictions tbody").replaceChildren();
}

export async function openModel(modelId) {
  state.modelId = modelId;
  clearModelView();
  $("#model-view").hidden = false;
  $("#model-id").textContent = modelId;
  $("#model-title").scrollIntoView({ block: "start" });
  $("#model-title").focus();
  const model = await (await api("GET", `/v1/models/${modelId}`)).json();
  if (state.modelId !== modelId) return;  // another model was opened meanwhile
  $("#model-warnings").textContent = (model.warnings || []).map((w) => `Warning: ${w}`).join(" ");
  $("#predict-zone").hidden = model.state !== "ready";
  if (model.state !== "ready") {
    $("#report-summary").textContent = model.state === "pending"
      ? "This model is still being adapted: predictions open once it is adapted, and its report follows."
      : `This model is ${model.state}${model.error ? `: ${model.error.message}` : ""}.`;
    return;
  }
  await showReport(modelId);
}

// The model's report (again, once its job has finished it); a pending one says so, no chart.
export async function showReport(modelId) {
  const report = await (await api("GET", `/v1/models/${modelId}/report`)).json();
  if (state.modelId !== modelId) return;  // another model was opened meanwhile
  clearReport();
  renderReport(report);
  if (report.pending) return;
  const chart = await (await api("GET", `/v1/models/${modelId}/report.png`)).blob();
  if (state.modelId !== modelId) return;
  if ($("#report-chart").src.startsWith("blob:")) URL.revokeObjectURL($("#report-chart").src);
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
  if (!report.available) return;
  $("#report-details").hidden = false;
  $("#report-source").textContent = `${report.examples} examples: ${report.source}`;
  for (const variant of ["robust", "clean_only"]) {
    const rows = report[variant].map((cell) => element("tr", {}, [
      element("td", { text: cell.attack }), element("td", { text: String(cell.eps) }),
      element("td", { text: `${(100 * cell.mean).toFixed(1)}%` }), element("td", { text: interval(cell) }),
      element("td", { text: String(cell.n) }),
    ]));
    const served = report.served === variant ? " (served)" : "";
    $("#report-tables").append(element("table", { class: `report-${variant}` }, [
      element("caption", { text: (variant === "robust" ? "robust adaptation (clean + FGSM)" : "clean-only fine-tune") + served }),
      element("thead", {}, [element("tr", {}, ["attack", "eps", "accuracy", "95% interval", "images"].map((t) => element("th", { text: t })))]),
      element("tbody", {}, rows),
    ]));
  }
  const notes = $("#report-notes");
  for (const [name, reason] of Object.entries(report.attacks_skipped || {})) {
    notes.append(element("li", { text: `Skipped ${name}: ${reason}` }));
  }
  for (const [variant, checks] of Object.entries(report.checks || {})) {
    for (const check of checks) {
      notes.append(element("li", { class: check.passed ? "" : "error", text: `Sanity check ${check.passed ? "passed" : "FAILED"} (${variant}) ${check.name}: ${check.detail}` }));
    }
  }
}

export async function predict(files) {
  if (!files.length) return;
  const form = new FormData();
  for (const file of files) form.append("images", file, file.name);
  const robust = $("#predict-robust").checked;
  form.append("robustness", robust ? "true" : "false");
  const zone = $("#predict-zone");
  say("#predict-error", null);
  zone.setAttribute("aria-busy", "true");
  $("#predict-state").textContent = `Classifying ${plural(files.length, "image")}${robust ? " and attacking each to check its robustness (about a second per image)" : ""}…`;
  const modelId = state.modelId;
  let answer;
  try {
    answer = await (await api("POST", `/v1/models/${modelId}/predictions`, form)).json();
  } catch (error) {
    const named = (error.details || []).map((d) => `${files[d.index - 1] ? files[d.index - 1].name : `image ${d.index}`}: ${d.reason}`);
    if (named.length) error.message = `${error.message} (${named.join("; ")})`;
    throw error;
  } finally {
    zone.removeAttribute("aria-busy");
    $("#predict-state").textContent = "";
  }
  if (state.modelId !== modelId) return;  // another model is shown now
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
