// A model's report in the page: the sentence, the recommendation, and the details as one matrix
// per adaptation (a row per attack, a column per eps, clean accuracy once, the worst case last).
"use strict";

import { $, element } from "./core.js";

const percent = (share) => `${(100 * share).toFixed(0)}%`;

// The cell's 95% interval: Wilson bounds (reports); mean ± ci95 for cells that carry only that.
function interval(cell) {
  const [low, high] = cell.low === undefined || cell.low === null
    ? [Math.max(cell.mean - cell.ci95, 0), Math.min(cell.mean + cell.ci95, 1)] : [cell.low, cell.high];
  return `${(100 * low).toFixed(0)}-${percent(high)}`;
}

function figure(cell) {
  if (!cell) return element("td", { text: "not run", class: "not-run" });
  return element("td", {}, [
    element("span", { class: "accuracy", text: percent(cell.mean) }),
    element("small", { text: ` ${interval(cell)}` }),
  ]);
}

// Rows: clean (eps 0, once), each attack in the suite's order, the worst case; columns: eps > 0
// (an eps the job did not ask for is the sanity check's).
export function matrix(cells, caption, variant, threat = {}) {
  const asked = threat.eps_grid || [];
  const byKey = new Map(cells.map((cell) => [`${cell.attack}@${cell.eps}`, cell]));
  const grid = [...new Set(cells.map((cell) => cell.eps))].filter((eps) => eps > 0).sort((a, b) => a - b);
  const measured = new Set(cells.map((cell) => cell.attack));
  const inOrder = [...Object.keys(threat.attacks || {}), ...measured];  // the suite's order first
  const attacks = [...new Set(inOrder)].filter((name) => measured.has(name) && name !== "clean" && name !== "worst");
  const clean = cells.find((cell) => cell.attack === "clean");
  const head = element("tr", {}, [element("th", { text: "attack", scope: "col" }),
    ...grid.map((eps) => element("th", { text: `eps ${eps}${asked.length && !asked.includes(eps) ? " (check)" : ""}`, scope: "col" }))]);
  const rows = [];
  if (clean) {
    rows.push(element("tr", { class: "clean" }, [element("th", { text: "no attack", scope: "row" }),
      Object.assign(figure(clean), { colSpan: Math.max(grid.length, 1) })]));
  }
  for (const attack of [...attacks, "worst"]) {
    rows.push(element("tr", { class: attack === "worst" ? "worst" : "" }, [
      element("th", { text: attack === "worst" ? "worst case" : attack, scope: "row" }),
      ...grid.map((eps) => figure(byKey.get(`${attack}@${eps}`))),
    ]));
  }
  const images = clean ? `, ${clean.n} images` : "";
  return element("table", { class: `matrix report-${variant}` }, [
    element("caption", { text: `${caption}${images}` }),
    element("thead", {}, [head]), element("tbody", {}, rows),
  ]);
}

export function renderReport(report) {
  const summary = report.summary || {};
  $("#report-summary").textContent = summary.text || "";
  $("#report-summary").classList.toggle("untrusted", summary.trustworthy === false);
  $("#report-recommendation").textContent = report.recommendation ? report.recommendation.text : "";
  if (!report.available) return;
  $("#report-details").hidden = false;
  $("#report-source").textContent = `${report.examples} examples: ${report.source}`;
  for (const variant of ["robust", "clean_only"]) {
    const served = report.served === variant ? " (served)" : "";
    const caption = (variant === "robust" ? "robust adaptation (clean + FGSM)" : "clean-only fine-tune") + served;
    $("#report-tables").append(matrix(report[variant], caption, variant, report.threat_model));
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
