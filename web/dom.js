// Small DOM helpers: building elements without innerHTML (no markup from data, ever).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name in el && typeof value !== "string") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

// A labelled form control: its label, the control (given `id` and `name`), its help line.
export function field(id, label, control, help) {
  control.id = id;
  control.name = id;
  if (help) control.setAttribute("aria-describedby", `${id}-help`);
  return h("div", { class: "field" },
    h("label", { for: id }, label), control,
    help ? h("small", { id: `${id}-help`, class: "muted" }, help) : null);
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// "1:05", "1:02:03" for seconds
export function clock(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

export function bytes(n) {
  if (!Number.isFinite(n)) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

// Say something to screen readers (and show it in the page's status line).
export function announce(message) {
  const el = document.getElementById("announcer");
  if (el) el.textContent = message;
}

// A progress bar (role=progressbar) that `setProgress` updates.
export function progressBar(label, value = 0) {
  const fill = h("span", { class: "fill" });
  const bar = h("div", {
    class: "progress", role: "progressbar", "aria-label": label,
    "aria-valuemin": "0", "aria-valuemax": "100",
  }, fill);
  setProgress(bar, value);
  return bar;
}

export function setProgress(bar, value) {
  const pct = Math.max(0, Math.min(100, Number(value) || 0));
  const shown = Math.round(pct);
  bar.setAttribute("aria-valuenow", String(shown));
  bar.setAttribute("aria-valuetext", `${shown}%`);
  bar.firstElementChild.style.width = `${pct}%`;
}

// Whether `data` (a job or a live update) is older than what `current` already shows: a
// job fetched while updates kept coming must not take the page back.
export function stale(current, data) {
  const seen = Date.parse(current.updated_at || "");
  const given = Date.parse(data.updated_at || "");
  return Number.isFinite(seen) && Number.isFinite(given) && given < seen;
}

export const TERMINAL = new Set(["completed", "failed", "cancelled"]);
