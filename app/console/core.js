// Shared pieces of the console: the API call, DOM helpers, errors shown where they happen.
"use strict";

export const $ = (selector, root = document) => root.querySelector(selector);
export const state = {
  key: sessionStorage.getItem("fewshot-key") || "",
  classes: [],
  modelId: null,
  bases: {},
  jobId: null,
};

// An API answer that is not 2xx: its status, the API's code, message and per-item details.
export class ApiFailure extends Error {
  constructor(status, code, message, details = []) {
    super(message);
    Object.assign(this, { status, code, details });
  }
}

export async function api(method, path, body) {
  const headers = state.key ? { Authorization: `Bearer ${state.key}` } : {};
  let response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch (_) {
    throw new ApiFailure(0, "network_error", "the service did not answer: check that it runs and try again");
  }
  if (!response.ok) {
    let failure = new ApiFailure(response.status, "http_error", `the service answered HTTP ${response.status}`);
    try {
      const error = (await response.json()).error;
      failure = new ApiFailure(response.status, error.code, error.message, error.details || []);
    } catch (_) { /* not the API's JSON: keep the status */ }
    throw failure;
  }
  return response;
}

export function element(tag, attributes = {}, children = []) {
  const made = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") made.textContent = value;
    else if (value !== false && value !== null && value !== undefined) made.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) made.append(child);
  return made;
}

// A table body's rows, or one row that says there are none yet (not bare headers).
export function fillRows(body, emptyText, rows) {
  const columns = body.closest("table").querySelectorAll("thead th").length || 1;
  const none = element("tr", { class: "empty" }, [element("td", { colspan: columns, text: emptyText })]);
  body.replaceChildren(...(rows.length ? rows : [none]));
}

// More rows in a table body that may still say "none yet".
export function appendRows(body, rows) {
  for (const row of body.querySelectorAll("tr.empty")) row.remove();
  body.append(...rows);
}

// Human words first (the API's message, capitalised), its code after, for bug reports.
export function words(error) {
  if (error instanceof ApiFailure) {
    const message = error.message.charAt(0).toUpperCase() + error.message.slice(1);
    return `${message} (${error.code})`;
  }
  return String((error && error.message) || error);
}

// Show an error in the box beside what caused it, and bring it into view; no error: clear it.
export function say(box, error) {
  const target = typeof box === "string" ? $(box) : box;
  target.textContent = error ? words(error) : "";
  if (error) target.scrollIntoView({ block: "center" });
}

// Run an async action; an error it throws is shown in `box` (a selector or an element).
export function guarded(action, box) {
  return (...args) => action(...args).catch((error) => say(box, error));
}

export function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

export function duration(seconds) {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
  return `${Math.round(seconds / 60)} min`;
}

// A drop zone is also a keyboard-operable button (Enter or Space) opening its file chooser.
export function wireZone(zone, input, onFiles) {
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
