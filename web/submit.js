// The new-job form: a URL or a file (chosen or dropped), the job type and its options.
import { API, api } from "./api.js";
import { announce, bytes, field, h } from "./dom.js";

const JOB_TYPES = [
  ["full_processing", "Full processing (audio, transcript, analysis, clips)"],
  ["transcription", "Transcription"],
  ["analysis", "Analysis"],
  ["clip_generation", "Clips"],
  ["audio_extraction", "Audio extraction"],
];

function select(choices, chosen) {
  return h("select", {}, choices.map(([value, text]) =>
    h("option", { value, selected: value === chosen }, text)));
}

const pairs = (values) => values.map((v) => [v, v]);

export function submitForm(onCreated) {
  const url = h("input", { type: "url", placeholder: "https://…", inputmode: "url" });
  const file = h("input", { type: "file", accept: "video/*,audio/*" });
  const fileName = h("p", { class: "muted", id: "file-chosen", "aria-live": "polite" });
  const jobType = select(JOB_TYPES, "full_processing");
  const priority = h("input", { type: "number", min: "0", max: "10", step: "1", value: "5" });
  const language = h("input", { type: "text", placeholder: "auto", maxlength: "16" });
  const preset = select([["accurate", "Accurate (beam 5)"], ["fast", "Fast (beam 1)"]], "accurate");
  const audioFormat = select(pairs(["mp3", "wav", "flac"]), "mp3");
  const clipDuration = h("input", { type: "number", min: "1", max: "600", step: "1", placeholder: "30" });
  const maxClips = h("input", { type: "number", min: "1", max: "100", step: "1", placeholder: "5" });
  const outputFormat = select(pairs(["mp4", "webm"]), "mp4");
  const aspect = select(pairs(["source", "16:9", "9:16", "1:1"]), "source");
  const captions = h("input", { type: "checkbox" });
  const speakers = h("input", { type: "checkbox", id: "diarization" });
  const status = h("p", { class: "form-status", role: "status", "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, "Submit job");
  let dropped = null;

  const drop = h("div", { class: "drop" },
    field("media-url", "Media URL", url, "A page or file URL (http or https)."),
    h("p", { class: "or", "aria-hidden": "true" }, "or"),
    field("media-file", "A file from this device", file, "Or drop a video or audio file here."),
    fileName);
  const showFile = (f) => { fileName.textContent = f ? `${f.name} (${bytes(f.size)})` : ""; };
  file.addEventListener("change", () => { dropped = null; showFile(file.files[0]); });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    dropped = e.dataTransfer?.files?.[0] || null;
    showFile(dropped);
  });

  const options = () => {
    const o = {};
    if (language.value.trim()) o.language = language.value.trim();
    o.transcription_preset = preset.value;
    o.audio_format = audioFormat.value;
    if (clipDuration.value) o.clip_duration = Number(clipDuration.value);
    if (maxClips.value) o.max_clips = Number(maxClips.value);
    if (speakers.checked && jobType.value !== "audio_extraction") o.diarization = true;
    const clips = ["full_processing", "clip_generation"].includes(jobType.value);
    if (clips) {
      o.output_format = outputFormat.value;
      o.aspect_ratio = aspect.value;
      if (captions.checked) o.burn_captions = true;
    }
    return o;
  };

  const form = h("form", { class: "card", id: "new-job", "aria-labelledby": "new-job-title" },
    h("h1", { id: "new-job-title" }, "New job"),
    drop,
    h("div", { class: "row" },
      field("job-type", "Job type", jobType),
      field("priority", "Priority (0–10)", priority)),
    h("details", {},
      h("summary", {}, "Options"),
      h("div", { class: "row" },
        field("language", "Language", language, "e.g. en; empty: detect"),
        field("preset", "Transcription", preset, "Fast: about 1.6x quicker, more errors"),
        field("audio-format", "Audio format", audioFormat),
        field("clip-duration", "Clip length (s)", clipDuration),
        field("max-clips", "Clips at most", maxClips),
        field("output-format", "Clip format", outputFormat),
        field("aspect-ratio", "Clip aspect ratio", aspect)),
      h("div", { class: "check" }, captions,
        h("label", { for: "burn-captions" }, "Burn captions into clips")),
      h("div", { class: "check" }, speakers,
        h("label", { for: "diarization" }, "Tell speakers apart (Speaker 1, Speaker 2, …)"))),
    h("div", { class: "actions" }, submit), status);
  captions.id = "burn-captions";

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = dropped || file.files[0];
    let source = url.value.trim();
    if (!chosen && !source) {
      status.textContent = "Enter a media URL or choose a file.";
      url.focus();
      return;
    }
    submit.disabled = true;
    try {
      if (chosen) {
        status.textContent = `Uploading ${chosen.name}…`;
        const body = new FormData();
        body.append("file", chosen, chosen.name);
        source = (await api(`${API}/uploads`, { method: "POST", form: body })).url;
      }
      const job = await api(`${API}/jobs/`, {
        method: "POST",
        json: { youtube_url: source, job_type: jobType.value, priority: Number(priority.value || 5),
                options: options() },
      });
      status.textContent = `Job ${job.id.slice(0, 8)} submitted.`;
      announce(`Job submitted: ${job.job_type.replace("_", " ")}.`);
      url.value = "";
      file.value = "";
      dropped = null;
      showFile(null);
      onCreated(job);
    } catch (err) {
      status.textContent = `Not submitted: ${err.message}`;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
