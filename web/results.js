// A finished job's results: the player, the transcript that seeks and follows it, the
// analysis, the clips and the event log.
import { withLink } from "./api.js";
import { sentimentChart } from "./chart.js";
import { clock, h, when } from "./dom.js";

const PLAYABLE = ["source", "video_subtitled", "audio"];

// The job's own media: its source (video or audio), else its extracted audio.
export function playerFor(artifacts, query) {
  const media = PLAYABLE.map((kind) => artifacts.find((a) => a.kind === kind &&
    /^(video|audio)\//.test(a.content_type))).find(Boolean);
  if (!media) return null;
  const video = media.content_type.startsWith("video/");
  const el = h(video ? "video" : "audio", {
    id: "player", controls: true, preload: "metadata", playsinline: true,
    src: withLink(media.download_url, query), "aria-label": `Player: ${media.filename}`,
  });
  return { el, seek(t) { el.currentTime = t; el.play().catch(() => {}); } };
}

function seekButton(seconds, player, label) {
  return h("button", {
    type: "button", class: "ts", dataset: { start: String(seconds) },
    "aria-label": `${label} at ${clock(seconds)}`, disabled: !player,
    onclick: () => player?.seek(Number(seconds)),
  }, clock(seconds));
}

// A diarized job's speakers (`job.speakers`: talk time inside the diarization's turns).
function speakersList(speakers) {
  if (!speakers?.length) return null;
  return h("ul", { class: "speakers", id: "speakers", "aria-label": "Speakers" },
    speakers.map((p) => h("li", {}, h("span", { class: "speaker" }, p.speaker),
      h("span", { class: "muted" }, ` ${clock(p.talk_time)} talk time · ${p.turns} turn${p.turns === 1 ? "" : "s"}`))));
}

export function transcriptSection(segments, player, speakers) {
  const follow = h("input", { type: "checkbox", id: "follow", checked: true });
  const items = segments.map((s) => h("li", { dataset: { start: s.start, end: s.end } },
    seekButton(s.start, player, "Play from"),
    s.speaker ? h("span", { class: "speaker" }, s.speaker) : null,
    h("span", { class: "text" }, s.text.trim())));
  const list = h("ol", { class: "transcript", id: "transcript" }, items);
  if (player) {
    let active = null;
    player.el.addEventListener("timeupdate", () => {
      const t = player.el.currentTime;
      const found = items.find((li) => t >= Number(li.dataset.start) && t < Number(li.dataset.end));
      if (found === active) return;
      active?.classList.remove("active");
      active?.removeAttribute("aria-current");
      active = found || null;
      if (!active) return;
      active.classList.add("active");
      active.setAttribute("aria-current", "true");
      if (follow.checked) active.scrollIntoView({ block: "nearest", behavior: "smooth" });
    });
  }
  return h("section", { class: "card", "aria-labelledby": "transcript-title" },
    h("div", { class: "section-head" }, h("h2", { id: "transcript-title" }, "Transcript"),
      h("div", { class: "check" }, follow, h("label", { for: "follow" }, "Follow playback"))),
    speakersList(speakers), list);
}

function chips(id, title, values) {
  if (!values?.length) return null;
  return h("div", { class: "facet", id },
    h("h3", {}, title), h("ul", { class: "chips" }, values.map((v) => h("li", {}, v))));
}

export function analysisSection(a, duration, player) {
  const timeline = a.sentiment_timeline || [];
  const chart = timeline.length ? sentimentChart(timeline, duration) : null;
  chart?.addEventListener("click", (e) => {
    const start = e.target?.getAttribute?.("data-start");
    if (start !== null && start !== undefined) player?.seek(Number(start));
  });
  const entities = (a.entities || []).map((e) => `${e.text} (${e.label}${e.count > 1 ? ` ×${e.count}` : ""})`);
  return h("section", { class: "card", "aria-labelledby": "analysis-title", id: "analysis" },
    h("h2", { id: "analysis-title" }, "Analysis"),
    a.summary ? h("p", { class: "summary" }, a.summary) : null,
    h("p", { class: "muted" }, [
      a.sentiment ? `Sentiment: ${a.sentiment}` : null,
      a.sentiment_score !== null && a.sentiment_score !== undefined ? ` (${a.sentiment_score})` : null,
      a.word_count ? ` · ${a.word_count} words` : null,
      a.speaking_rate_wpm ? ` · ${Math.round(a.speaking_rate_wpm)} words a minute` : null,
    ]),
    chart ? h("figure", { class: "chart-wrap", id: "sentiment" }, chart,
      h("figcaption", { class: "muted" }, "Sentiment over time (up: positive, down: negative)")) : null,
    a.speakers?.length ? h("div", { id: "speaker-analysis" }, h("h3", {}, "Speakers"),
      h("ul", { class: "speakers" }, a.speakers.map((p) => h("li", {},
        h("span", { class: "speaker" }, p.speaker),
        h("span", { class: "muted" }, [` ${Math.round(100 * p.talk_share)}% of the talk`,
          p.sentiment ? ` · ${p.sentiment}` : null,
          p.keywords?.length ? ` · ${p.keywords.join(", ")}` : null]))))) : null,
    h("div", { class: "facets" },
      chips("topics", "Topics", a.topics),
      chips("keywords", "Keywords", a.keywords),
      chips("entities", "Entities", entities)),
    a.chapters?.length ? h("div", { id: "chapters" }, h("h3", {}, "Chapters"),
      h("ol", { class: "chapters" }, a.chapters.map((c) => h("li", {},
        c.start !== null ? seekButton(c.start, player, `Chapter ${c.title}`) : null,
        h("strong", {}, ` ${c.title}`), c.summary ? h("p", {}, c.summary) : null)))) : null,
    a.notes?.length ? h("ul", { class: "muted notes" }, a.notes.map((n) => h("li", {}, n))) : null);
}

export function clipsSection(clips, query) {
  return h("section", { class: "card", "aria-labelledby": "clips-title", id: "clips" },
    h("h2", { id: "clips-title" }, "Clips"),
    h("div", { class: "clips" }, clips.map((c, i) => {
      const name = c.title || `Clip ${i + 1}`;
      return h("article", { class: "clip", "aria-labelledby": `clip-${i}-title` },
        c.video_url ? h("video", {
          controls: true, preload: "metadata", playsinline: true,
          src: withLink(c.video_url, query), poster: withLink(c.thumbnail_url, query),
          "aria-label": `Clip: ${name}`,
        }) : null,
        h("h3", { id: `clip-${i}-title` }, name),
        h("p", { class: "muted" }, `${clock(c.start)}–${clock(c.end)} · score ${Number(c.score).toFixed(2)}`,
          c.speakers?.length ? ` · ${c.speakers.join(", ")}` : null),
        c.reason ? h("p", { class: "reason" }, c.reason) : null,
        h("p", { class: "downloads" },
          c.video_url ? h("a", { href: withLink(c.video_url, query), download: "" }, "Video") : null,
          c.subtitles_url ? h("a", { href: withLink(c.subtitles_url, query), download: "" }, "Subtitles") : null,
          c.thumbnail_url ? h("a", { href: withLink(c.thumbnail_url, query), download: "" }, "Thumbnail") : null));
    })));
}

export function eventsSection(section, events) {
  const list = h("ol", { class: "events", id: "events" });
  const add = (e) => list.append(h("li", {},
    h("time", { datetime: e.created_at || "" }, when(e.created_at)), " ",
    h("span", { class: "badge" }, e.type), e.stage ? ` ${e.stage}` : "",
    e.message ? h("span", { class: "muted" }, ` — ${e.message}`) : null));
  events.forEach(add);
  section.replaceChildren(h("h2", { id: "events-title" }, "Event log"), list);
  return { add };
}
