// The support-set editor: classes, their images as the model sees them, problems beside them.
"use strict";

import { $, element, plural, state, wireZone } from "./core.js";

let nextId = 1;

export function addClass(focus = true) {
  const id = nextId++;
  state.classes.push({ id, name: `class ${state.classes.length + 1}`, files: [], valFiles: [], problems: new Map(), issues: [], unreadable: new Set() });
  renderClasses(focus ? `name-${id}` : null);
}

function dropZone(label, focusKey, onFiles) {
  const input = element("input", { type: "file", multiple: true, accept: "image/*", hidden: true });
  const zone = element("div", { class: "zone", tabindex: "0", role: "button", "aria-label": label, text: label, "data-focus": focusKey });
  wireZone(zone, input, onFiles);
  return [zone, input];
}

// Each thumbnail is a button that removes its image; its title says why it was refused, if so.
function thumbnail(cls, list, file, index, label) {
  const reason = cls.problems.get(file) || (cls.unreadable.has(file) ? "not an image this browser can read" : null);
  const title = reason ? `${file.name}: ${reason}` : `${file.name} (as the model sees it)`;
  const button = element("button", { type: "button", class: "thumb", title, "aria-label": `remove ${file.name} from ${label}`, "data-focus": `thumb-${cls.id}-${index}` });
  const canvas = modelView(cls, file, title);
  if (reason) canvas.classList.add("refused");
  button.append(canvas);
  button.addEventListener("click", () => {
    list.splice(list.indexOf(file), 1);
    cls.problems.delete(file);
    cls.unreadable.delete(file);
    cls.issues = [];  // checked again at the next Start
    renderClasses(list.length ? `thumb-${cls.id}-${Math.min(index, list.length - 1)}` : `zone-${cls.id}`);
  });
  return button;
}

export function renderClasses(focusKey) {
  const holder = $("#classes");
  holder.replaceChildren();
  state.classes.forEach((cls, index) => {
    const label = `class ${index + 1}${cls.name ? ` (${cls.name})` : ""}`;
    const name = element("input", { "aria-label": `name of class ${index + 1}`, value: cls.name, "data-focus": `name-${cls.id}` });
    name.addEventListener("input", () => { cls.name = name.value.trim(); });
    const count = element("small", { text: `${plural(cls.files.length, "image")}, ${cls.valFiles.length} validation` });
    const thumbs = element("div", { class: "thumbs" });
    cls.files.forEach((file, i) => thumbs.append(thumbnail(cls, cls.files, file, i, label)));
    const valThumbs = element("div", { class: "thumbs" });
    cls.valFiles.forEach((file, i) => valThumbs.append(thumbnail(cls, cls.valFiles, file, 1000 + i, label)));
    const problems = element("ul", { class: "problems", role: "status" });
    for (const issue of cls.issues) problems.append(element("li", { text: issue }));
    for (const [file, reason] of cls.problems) problems.append(element("li", { text: `${file.name}: ${reason}` }));
    for (const file of cls.unreadable) problems.append(element("li", { text: `${file.name}: not an image this browser can read; click its thumbnail to remove it` }));
    const [zone, input] = dropZone(`Drop images of class ${index + 1} here, or press Enter`, `zone-${cls.id}`, (files) => {
      cls.files.push(...files); cls.issues = []; renderClasses(`zone-${cls.id}`);
    });
    const [valZone, valInput] = dropZone(`Validation images of class ${index + 1} (optional)`, `val-${cls.id}`, (files) => {
      cls.valFiles.push(...files); renderClasses(`val-${cls.id}`);
    });
    valZone.classList.add("validation");
    const remove = element("button", { type: "button", text: "Remove class", "aria-label": `remove ${label}` });
    remove.addEventListener("click", () => {
      state.classes.splice(index, 1);
      const next = state.classes[Math.min(index, state.classes.length - 1)];
      renderClasses(next ? `name-${next.id}` : "add-class");
    });
    const card = element("div", { class: cls.issues.length || cls.problems.size || cls.unreadable.size ? "class-card has-problems" : "class-card", "data-class": cls.id },
      [name, zone, input, count, thumbs, problems, valZone, valInput, valThumbs, remove]);
    holder.append(card);
  });
  const target = focusKey === "add-class" ? $("#add-class") : focusKey && holder.querySelector(`[data-focus="${focusKey}"]`);
  if (target) target.focus();
  warnAboutReport();
}

// Before Start: a report (full or quick) measures on held-out images; with one image in some
// class and no validation images there are none, and the job would end with no estimate.
export function warnAboutReport() {
  const filled = state.classes.filter((cls) => cls.files.length > 0);
  const oneShot = filled.some((cls) => cls.files.length === 1);
  const validation = state.classes.some((cls) => cls.valFiles.length > 0);
  const level = $("#report-level").value;
  $("#report-warning").textContent = oneShot && !validation && level !== "none"
    ? `A class has one image and there are no validation images: this job gets no robustness estimate (the ${level} report measures on held-out images). Add validation images (or a second image to every class), or choose report none.`
    : "";
}

// What the base model sees of a file: centre square, its size, grayscale for a 1-channel model.
function modelView(cls, file, title) {
  const base = state.bases[$("#base-model").value];
  const size = base ? base.input.size : 28;
  const canvas = element("canvas", { width: size, height: size, class: "preview", role: "img", "aria-label": title });
  if (cls.unreadable.has(file)) return canvas;
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
  }).catch(() => {
    cls.unreadable.add(file);
    renderClasses(document.activeElement && document.activeElement.getAttribute("data-focus"));
  });
  return canvas;
}

// Checks before anything is sent: problems are written beside their class; their count back.
export function checkClasses() {
  const seen = new Map();
  let count = 0;
  const filled = state.classes.filter((cls) => cls.files.length > 0);
  for (const cls of state.classes) {
    cls.issues = [];
    const key = cls.name.trim();
    if (!key) cls.issues.push("give this class a name: names are the labels");
    else if (seen.has(key)) cls.issues.push(`another class is also named "${key}"; names must differ`);
    else seen.set(key, cls);
    if (cls.files.length === 0) cls.issues.push("add at least one image, or remove this class");
    if (cls.unreadable.size) cls.issues.push(`remove the ${plural(cls.unreadable.size, "file")} this browser cannot read`);
    count += cls.issues.length;
  }
  if (filled.length < 2) count += 1;
  renderClasses();
  return { count, tooFewClasses: filled.length < 2 };
}

// The API's per-image details (field, index from 1, reason) shown beside the class that sent them.
export function markProblems(details, sent) {
  for (const detail of details) {
    const entry = (sent[detail.field] || [])[detail.index - 1];
    if (entry) entry[0].problems.set(entry[1], detail.reason);
  }
  renderClasses();
  const first = document.querySelector(".class-card.has-problems");
  if (first) first.scrollIntoView({ block: "center" });
  return Boolean(first);
}
