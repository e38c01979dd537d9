// A job's page: status and progress (live from /ws/<id>), the player, the transcript, the
// analysis, the clips and the event log.
import { API, api, linkQuery, withLink, wsUrl } from "./api.js";
import { TERMINAL, announce, h, progressBar, replace, setProgress, stale, when } from "./dom.js";
import { analysisSection, clipsSection, eventsSection, playerFor, transcriptSection } from "./results.js";

const RESULT_STAGES = new Set(["transcribe", "analyze", "clips"]);

export function showJob(main, jobId) {
  const state = { closed: false, socket: null, lastSeq: 0, shownFinal: false };
  const head = h("section", { class: "card", "aria-labelledby": "job-title" });
  const body = h("div", { class: "results" });
  const events = h("section", { class: "card", "aria-labelledby": "events-title" });
  replace(main, h("p", {}, h("a", { href: "#/" }, "← All jobs")), head, body, events);
  const header = jobHeader(head, jobId, () => load());
  let eventList = null;

  const load = async () => {
    let job;
    try {
      job = await api(`${API}/jobs/${jobId}`);
    } catch (err) {
      if (err.status !== 401) replace(head, h("h1", { id: "job-title" }, "Job not found"), h("p", {}, err.message));
      return;
    }
    header.update(job);
    document.title = `${job.video_title || "Job"} · vpa`;
    const log = await api(`${API}/jobs/${jobId}/events`);
    eventList = eventsSection(events, log);
    state.lastSeq = log.length ? log[log.length - 1].seq : 0;
    if (job.status === "completed" || job.segments || job.generated_clips?.length) {
      await renderResults(body, job);
      state.shownFinal = TERMINAL.has(job.status);
    }
    if (!TERMINAL.has(job.status)) connect();
  };

  const connect = () => {
    if (state.closed || state.socket) return;
    const socket = new WebSocket(wsUrl(`/ws/${jobId}?after_seq=${state.lastSeq}`));
    state.socket = socket;
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "job_update") {
        header.update({ ...message.data, current_stage: message.data.stage,
                        status_message: message.data.message });
        // a stage's results are stored when it ends: show them while later stages run
        if (message.event === "stage_completed" && RESULT_STAGES.has(message.data.stage)) {
          api(`${API}/jobs/${jobId}`).then((job) => renderResults(body, job)).catch(() => {});
        }
        if (message.seq > state.lastSeq) {
          state.lastSeq = message.seq;
          eventList?.add({ seq: message.seq, type: message.event, stage: message.data.stage,
                           message: message.data.message, created_at: message.data.updated_at });
        }
      } else if (message.type === "job_finished") {
        header.update(message.data);
        announce(`Job ${message.data.status}.`);
        state.socket = null;
        if (!state.shownFinal) load();
      }
    });
    socket.addEventListener("close", () => {
      if (state.socket !== socket) return;
      state.socket = null;
      if (!state.closed) setTimeout(connect, 1000);
    });
  };

  load();
  return () => { state.closed = true; const s = state.socket; state.socket = null; s?.close(); };
}

function jobHeader(section, jobId, reload) {
  const title = h("h1", { id: "job-title" }, "Job");
  const status = h("span", { class: "badge", id: "job-status" });
  const bar = progressBar("Job progress");
  const percent = h("span", { class: "percent", "aria-hidden": "true" });
  const stage = h("p", { class: "muted", id: "job-stage" });
  const message = h("p", { class: "message", id: "job-message" });
  const facts = h("dl", { class: "facts" });
  const actions = h("div", { class: "actions" });
  replace(section, h("div", { class: "job-head" }, title, status),
    h("div", { class: "job-progress" }, bar, percent), stage, message, facts, actions);
  const current = {};

  const act = async (verb) => {
    try {
      if (verb === "delete") {
        await api(`${API}/jobs/${jobId}`, { method: "DELETE" });
        announce("Job deleted.");
        location.hash = "#/";
        return;
      }
      await api(`${API}/jobs/${jobId}/${verb}`, { method: "POST" });
      reload();
    } catch (err) {
      message.textContent = `${verb} failed: ${err.message}`;
    }
  };

  const update = (data) => {
    if (stale(current, data)) return;
    Object.assign(current, Object.fromEntries(Object.entries(data).filter(([, v]) => v !== undefined)));
    title.textContent = current.video_title || current.youtube_url || `Job ${jobId.slice(0, 8)}`;
    status.textContent = current.status;
    status.className = `badge status-${current.status}`;
    setProgress(bar, current.progress);
    percent.textContent = `${Math.round(current.progress || 0)}%`;
    stage.textContent = current.current_stage ? `Stage: ${current.current_stage}` : "";
    message.textContent = current.error_message
      ? `${current.error_message}${current.error_code ? ` (${current.error_code})` : ""}`
      : current.status_message || "";
    message.classList.toggle("error", Boolean(current.error_message));
    const rows = [["Type", current.job_type], ["Source", current.youtube_url],
      ["Created", when(current.created_at)], ["Completed", when(current.completed_at)],
      ["Language", current.language]].filter(([, v]) => v);
    replace(facts, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
    const buttons = [];
    if (!TERMINAL.has(current.status)) buttons.push(["cancel", "Cancel job"]);
    if (["failed", "cancelled"].includes(current.status)) buttons.push(["retry", "Retry job"]);
    if (TERMINAL.has(current.status)) buttons.push(["delete", "Delete job"]);
    replace(actions, buttons.map(([verb, text]) => h("button", {
      type: "button", class: verb === "delete" ? "danger" : "secondary", onclick: () => act(verb),
    }, text)), current.status === "completed"
      ? h("a", { class: "button secondary", id: "zip-link", href: "#", download: "" }, "Download all (zip)")
      : null);
    const zip = actions.querySelector("#zip-link");
    if (zip) linkQuery(jobId).then((q) => { zip.href = withLink(`${API}/jobs/${jobId}/download`, q); });
  };
  return { update };
}

async function renderResults(body, job) {
  const artifacts = await api(`${API}/jobs/${job.id}/artifacts`);
  const query = await linkQuery(job.id);
  const player = playerFor(artifacts, query);
  const sections = [];
  if (player) sections.push(h("section", { class: "card player", "aria-label": "Player" }, player.el));
  if (job.segments?.length) sections.push(transcriptSection(job.segments, player, job.speakers));
  if (job.analysis_results) sections.push(analysisSection(job.analysis_results, job.duration, player));
  if (job.generated_clips?.length) sections.push(clipsSection(job.generated_clips, query));
  sections.push(downloadsSection(artifacts, query));
  replace(body, sections);
}

function downloadsSection(artifacts, query) {
  return h("section", { class: "card", "aria-labelledby": "files-title" },
    h("h2", { id: "files-title" }, "Files"),
    h("ul", { class: "files" }, artifacts.map((a) => h("li", {},
      h("a", { href: withLink(a.download_url, query), download: a.filename }, a.filename),
      h("span", { class: "muted" }, ` ${a.kind}`)))));
}
