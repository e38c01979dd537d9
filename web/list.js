// The job list: the submission form, every job with its progress, live from the
// broadcast socket, and cancel / retry / delete.
import { API, api, wsUrl } from "./api.js";
import { TERMINAL, announce, clock, h, progressBar, replace, setProgress, stale, when } from "./dom.js";
import { submitForm } from "./submit.js";

const ACTIVE = new Set(["pending", "queued", "processing"]);

export function showList(main) {
  document.title = "Jobs · vpa";
  const list = h("ul", { class: "jobs", id: "job-list", "aria-label": "Jobs" });
  const empty = h("p", { class: "muted", id: "no-jobs" }, "No jobs yet.");
  const rows = new Map();
  const state = { closed: false, socket: null, retryMs: 500 };

  const render = (job) => {
    let row = rows.get(job.id);
    if (!row) {
      row = jobRow(job, refresh);
      rows.set(job.id, row);
      list.prepend(row.el);
      empty.hidden = true;
    }
    row.update(job);
  };
  const refresh = async () => {
    const page = await api(`${API}/jobs/?limit=50`);
    for (const job of page.data.slice().reverse()) render(job);
    for (const [id, row] of rows) {
      if (!page.data.some((j) => j.id === id) && row.deleted) { row.el.remove(); rows.delete(id); }
    }
    empty.hidden = rows.size > 0;
  };

  const connect = () => {
    if (state.closed) return;
    const socket = new WebSocket(wsUrl("/ws/jobs/broadcast"));
    state.socket = socket;
    socket.addEventListener("message", async (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "connected") { state.retryMs = 500; list.dataset.live = "true"; }
      if (message.type !== "job_update") return;
      const data = message.data || {};
      if (rows.has(message.job_id)) rows.get(message.job_id).update(data);
      else {
        try { render(await api(`${API}/jobs/${message.job_id}`)); } catch { /* deleted */ }
      }
    });
    socket.addEventListener("close", () => {
      list.dataset.live = "false";
      if (state.closed) return;
      setTimeout(() => { refresh().catch(() => {}); connect(); }, state.retryMs);
      state.retryMs = Math.min(state.retryMs * 2, 10_000);
    });
  };

  replace(main,
    submitForm(render),
    h("section", { class: "card", "aria-labelledby": "jobs-title" },
      h("div", { class: "section-head" },
        h("h2", { id: "jobs-title" }, "Jobs"),
        h("button", { type: "button", class: "secondary", onclick: () => refresh().catch(() => {}) }, "Refresh")),
      empty, list));

  refresh().then(connect).catch((err) => {
    if (err.status !== 401) replace(empty, `The jobs could not be loaded: ${err.message}`);
  });
  return () => { state.closed = true; state.socket?.close(); };
}

function jobRow(job, refresh) {
  const title = h("a", { href: `#/jobs/${job.id}`, class: "job-title" });
  const status = h("span", { class: "badge" });
  const stage = h("span", { class: "stage muted" });
  const meta = h("span", { class: "muted" }, `${job.job_type.replace("_", " ")} · ${when(job.created_at)}`);
  const bar = progressBar(`Progress of job ${job.id.slice(0, 8)}`);
  const percent = h("span", { class: "percent", "aria-hidden": "true" });
  const message = h("p", { class: "message" });
  const actions = h("div", { class: "actions" });
  const el = h("li", { class: "job", dataset: { jobId: job.id } },
    h("div", { class: "job-head" }, title, status),
    h("div", { class: "job-meta" }, meta, stage),
    h("div", { class: "job-progress" }, bar, percent),
    message, actions);
  const current = {};
  const row = { el, deleted: false };

  const act = async (verb, label) => {
    try {
      if (verb === "delete") {
        await api(`${API}/jobs/${job.id}`, { method: "DELETE" });
        el.remove();
        row.deleted = true;
        announce(`Job ${label} deleted.`);
        return;
      }
      const updated = await api(`${API}/jobs/${job.id}/${verb}`, { method: "POST" });
      row.update(updated);
      announce(`Job ${label}: ${updated.status}.`);
    } catch (err) {
      message.textContent = `${verb} failed: ${err.message}`;
      refresh().catch(() => {});
    }
  };

  row.update = (data) => {
    if (stale(current, data)) return;
    Object.assign(current, Object.fromEntries(
      Object.entries(data).filter(([, v]) => v !== undefined)));
    if (data.stage !== undefined) current.current_stage = data.stage;
    if (data.message !== undefined) current.status_message = data.message;
    const name = current.video_title || current.youtube_url || job.id;
    title.textContent = name;
    status.textContent = current.status;
    status.className = `badge status-${current.status}`;
    stage.textContent = current.current_stage ? `stage: ${current.current_stage}` : "";
    setProgress(bar, current.progress);
    bar.setAttribute("aria-label", `Progress of ${name}`);
    percent.textContent = `${Math.round(current.progress || 0)}%`;
    message.textContent = current.error_message || current.status_message || "";
    message.classList.toggle("error", Boolean(current.error_message));
    el.dataset.status = current.status;
    const buttons = [];
    if (ACTIVE.has(current.status)) buttons.push(["cancel", "Cancel"]);
    if (current.status === "failed" || current.status === "cancelled") buttons.push(["retry", "Retry"]);
    if (TERMINAL.has(current.status)) buttons.push(["delete", "Delete"]);
    replace(actions, buttons.map(([verb, text]) => h("button", {
      type: "button", class: verb === "delete" ? "danger" : "secondary",
      "aria-label": `${text} ${name}`, onclick: () => act(verb, name),
    }, text)));
    if (current.duration) meta.title = `duration ${clock(current.duration)}`;
  };
  return row;
}
