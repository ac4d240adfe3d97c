// The console: plain JS modules on the public API, no build step, nothing fetched off-site.
"use strict";

import { $, ApiFailure, api, guarded, say, state, wireZone } from "./core.js";
import { addClass, checkClasses, markProblems, warnAboutReport } from "./classes.js";
import { cancelJob, describe, followJob } from "./jobs.js";
import { createOwnBase, loadSetup, showKnows } from "./base_models.js";
import { openModel, predict, refreshModels, showReport } from "./models.js";

function setRunning(running) {
  $("#submit").disabled = running;
  $("#cancel").hidden = !running;
  $("#cancel").disabled = false;
  $("#job-spinner").hidden = !running;
}

async function submitAdaptation() {
  say("#submit-error", null);
  const checked = checkClasses();
  if (checked.count) {
    const parts = [];
    if (checked.tooFewClasses) parts.push("Add images to at least 2 classes.");
    if (checked.count > (checked.tooFewClasses ? 1 : 0)) parts.push("Fix the problems marked in the classes above before starting.");
    say("#submit-error", new Error(parts.join(" ")));
    const first = document.querySelector(".class-card.has-problems");
    if (first) first.scrollIntoView({ block: "center" });
    return;
  }
  const form = new FormData();
  const sent = { images: [], val_images: [] };  // [class, file] in upload order, per field
  for (const cls of state.classes) {
    cls.problems.clear();
    for (const file of cls.files) { form.append("images", file, file.name); form.append("labels", cls.name); sent.images.push([cls, file]); }
    for (const file of cls.valFiles) { form.append("val_images", file, file.name); form.append("val_labels", cls.name); sent.val_images.push([cls, file]); }
  }
  if ($("#allow-ood").checked) form.append("allow_out_of_domain", "true");
  for (const name of ["steps", "lr", "eps", "augment"]) {
    if ($(`#${name}`).value !== "") form.append(name, $(`#${name}`).value);
  }
  form.append("adaptation", $("#adaptation").value);
  form.append("report", $("#report-level").value);
  form.append("base_model", $("#base-model").value);
  setRunning(true);
  $("#cancel").hidden = true;  // nothing to cancel until the job exists
  $("#job-state").textContent = "uploading…";
  try {
    let created;
    try {
      created = await (await api("POST", "/v1/adaptations", form)).json();
    } catch (error) {
      $("#job-state").textContent = "";  // nothing was uploaded
      if (markProblems(error.details || [], sent)) error.message += ": see the images marked above";
      throw error;
    }
    state.jobId = created.job_id;
    $("#cancel").hidden = false;
    $("#job-warnings").textContent = (created.warnings || []).join(" ");
    await refreshModels();
    let opened = null;  // the model opens once published: it answers while its report runs
    const job = await followJob(created.job_id, (update) => {
      $("#job-progress").max = update.progress.total || 1;
      $("#job-progress").value = update.progress.step;
      $("#job-state").textContent = `Adaptation ${describe(update)}`;
      if (update.model_ready && !opened) {
        opened = refreshModels().then(() => openModel(created.model_id));
        opened.catch((error) => say("#models-error", error));
      }
    });
    if (opened) await opened.catch(() => {});
    await refreshModels();
    if (job.state === "succeeded" && !opened) await openModel(created.model_id);
    else if (job.model_ready && state.modelId === created.model_id) await showReport(created.model_id);
    if (job.error && job.state !== "succeeded") throw new ApiFailure(200, job.error.code, job.error.message);
  } finally {
    state.jobId = null;
    setRunning(false);
    $("#submit").focus();  // focus was on the disabled button: give it back
  }
}

async function cancelRunning() {
  if (!state.jobId) return;
  $("#cancel").disabled = true;
  const answer = await cancelJob(state.jobId);
  $("#job-state").textContent = `Adaptation ${answer.state === "cancelled" ? "cancelled" : "cancelling…"}`;
}

async function useKey() {
  say("#errors", null);
  await loadSetup();
  await refreshModels();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#api-key").value = state.key;
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.key = $("#api-key").value.trim();
    sessionStorage.setItem("fewshot-key", state.key);
    guarded(useKey, "#errors")();
  });
  $("#add-class").addEventListener("click", addClass);
  $("#base-model").addEventListener("change", showKnows);
  $("#report-level").addEventListener("change", warnAboutReport);
  $("#own-base-form").addEventListener("submit", (event) => guarded(createOwnBase, "#own-base-error")(event));
  $("#submit").addEventListener("click", guarded(submitAdaptation, "#submit-error"));
  $("#cancel").addEventListener("click", guarded(cancelRunning, "#submit-error"));
  $("#refresh-models").addEventListener("click", guarded(refreshModels, "#models-error"));
  wireZone($("#predict-zone"), $("#predict-files"), guarded(predict, "#predict-error"));
  addClass(false);
  addClass(false);
  guarded(useKey, "#errors")();
});
