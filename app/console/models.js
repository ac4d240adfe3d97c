// Models: the list (kept fresh while some are pending), one model's report and predictions.
"use strict";

import { $, api, appendRows, element, fillRows, guarded, plural, say, state } from "./core.js";
import { renderReport } from "./report.js";

let refreshTimer = null;

export async function refreshModels() {
  const listed = await (await api("GET", "/v1/models")).json();
  fillRows($("#models tbody"), "No models yet: adapt to your images above.", listed.models.map((model) => {
    const open = element("button", { type: "button", text: "Open", "aria-label": `open model ${model.model_id}` });
    open.addEventListener("click", guarded(() => openModel(model.model_id), "#models-error"));
    return element("tr", {}, [
      element("td", { text: model.name ? `${model.name} (${model.model_id})` : model.model_id, class: "id", "data-label": "model" }),
      element("td", { text: model.report_state === "pending" ? "ready (report pending)" : model.state, "data-label": "state" }),
      element("td", { text: model.classes.join(", "), "data-label": "classes" }),
      element("td", { text: new Date(model.created * 1000).toLocaleString(), "data-label": "created" }), element("td", {}, [open]),
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
  fillRows($("#predictions tbody"), NO_PREDICTIONS, []);
}

const NO_PREDICTIONS = "No predictions yet: drop images above to classify them.";

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
  // no figures (none asked for, pending, unavailable, untrusted): the sentence above says why
  if (!report.available || (report.summary || {}).trustworthy === false) return;
  const chart = await (await api("GET", `/v1/models/${modelId}/report.png`)).blob();
  if (state.modelId !== modelId) return;
  if ($("#report-chart").src.startsWith("blob:")) URL.revokeObjectURL($("#report-chart").src);
  $("#report-chart").src = URL.createObjectURL(chart);
  $("#report-chart").hidden = false;
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
  $("#predict-state").textContent = `Classifying ${plural(files.length, "image")}${robust ? " and attacking each to check its robustness" : ""}…`;
  const modelId = state.modelId;
  const started = performance.now();
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
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  $("#predict-state").textContent = `${plural(files.length, "image")} classified in ${seconds} s` +
    `${robust ? ", each attacked (APGD) to check its robustness" : ""}.`;
  appendRows($("#predictions tbody"), answer.predictions.map((prediction, index) => {
    const survives = prediction.robustness ? (prediction.robustness.label_survives ? "yes" : "no") : "not checked";
    const inDomain = prediction.in_domain === null || prediction.in_domain === undefined ? "unknown"
      : (prediction.in_domain ? "yes" : `no: ${prediction.domain_warning}`);
    return element("tr", {}, [
      element("td", { class: "image", text: files[index].name, "data-label": "image" }),
      element("td", { class: "label", text: prediction.label, "data-label": "label" }),
      element("td", { text: prediction.top.map((t) => `${t.label} ${t.probability.toFixed(2)}`).join(", "), "data-label": "probabilities" }),
      element("td", { class: "survives", text: survives, "data-label": "survives attack" }),
      element("td", { class: prediction.in_domain === false ? "in-domain error" : "in-domain", text: inDomain, "data-label": "in domain" }),
    ]);
  }));
}
