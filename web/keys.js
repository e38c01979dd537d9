// The API keys page (#/keys): the admin makes keys (each shown once), lists them and
// revokes them. Any other key gets 403 from /api/v1/keys and sees only that; with keys
// off (no ADMIN_API_KEY) the API answers 409 and the page says so.
import { API, api } from "./api.js";
import { announce, field, h, replace, when } from "./dom.js";

const MAX_LIMIT = 1_000_000;

export function showKeys(main) {
  document.title = "API keys · vpa";
  const state = { closed: false };
  replace(main, h("p", { class: "muted" }, "Loading the API keys…"));
  api(`${API}/keys`).then((keys) => {
    if (!state.closed) keysPage(main, keys);
  }).catch((err) => {
    if (state.closed || err.status === 401) return; // 401: the key prompt is shown
    replace(main, refusal(err));
  });
  return () => { state.closed = true; };
}

function refusal(err) {
  const text = err.status === 403 ? "Only the admin key manages API keys."
    : err.status === 409 ? `API keys are off on this server: ${err.message}.`
      : `The API keys could not be loaded: ${err.message}`;
  const more = err.status === 403
    ? "Sign in with the admin key (ADMIN_API_KEY) to make, list and revoke keys." : null;
  return h("section", { class: "card", "aria-labelledby": "keys-title" },
    h("h1", { id: "keys-title" }, "API keys"),
    h("p", { id: "keys-refused", class: "error", role: "alert" }, text),
    more && h("p", { class: "muted" }, more));
}

function keysPage(main, keys) {
  const body = h("tbody", {});
  const empty = h("p", { class: "muted", id: "no-keys" }, "No keys yet.");
  const confirm = revokeDialog();
  const addRow = (key, first) => {
    const row = keyRow(key, confirm);
    if (first) body.prepend(row); else body.append(row);
    empty.hidden = true;
  };
  const created = h("div", { id: "created-key-box", "aria-live": "polite" });
  replace(main,
    h("h1", { id: "keys-title" }, "API keys"),
    createForm((key) => { addRow(key, true); showCreated(created, key); }),
    created,
    h("section", { class: "card", "aria-labelledby": "key-list-title" },
      h("h2", { id: "key-list-title" }, "Keys"),
      empty,
      h("table", { class: "keys", id: "key-table", "aria-labelledby": "key-list-title" },
        h("thead", {}, h("tr", {}, ["Name", "Prefix", "Created", "Limits", "Status", "Actions"]
          .map((name) => h("th", { scope: "col" }, name)))),
        body)),
    confirm.el);
  keys.forEach((key) => addRow(key, false)); // the API lists them newest first
  empty.hidden = keys.length > 0;
}

function numberField(id, label, help) {
  const input = h("input", {
    type: "number", min: "1", max: String(MAX_LIMIT), step: "1", inputmode: "numeric",
    placeholder: "default",
  });
  return [input, field(id, label, input, help)];
}

function createForm(onCreated) {
  const name = h("input", {
    type: "text", required: true, autocomplete: "off", spellcheck: "false",
  });
  const [rate, rateField] = numberField("key-rate", "Requests per minute",
    "Optional, 1 to 1,000,000; empty: the server's RATE_LIMIT_PER_MINUTE.");
  const [jobs, jobsField] = numberField("key-jobs", "Active jobs at most",
    "Optional, 1 to 1,000,000; empty: the server's MAX_ACTIVE_JOBS_PER_KEY.");
  const error = h("p", { id: "key-form-error", class: "error", role: "alert" });
  const submit = h("button", { type: "submit" }, "Create key");
  const form = h("form", { class: "card", id: "key-form", "aria-labelledby": "new-key-title" },
    h("h2", { id: "new-key-title" }, "New key"),
    field("key-name", "Name", name, "Who or what uses the key, 1 to 200 characters."),
    h("div", { class: "row" }, rateField, jobsField),
    error, submit);
  name.setAttribute("aria-describedby", "key-name-help key-form-error"); // its errors too
  const limit = (input) => (input.value === "" ? undefined : Number(input.value));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    try {
      const key = await api(`${API}/keys`, { method: "POST", json: {
        name: name.value, rate_limit_per_minute: limit(rate), max_active_jobs: limit(jobs),
      } });
      form.reset();
      onCreated(key);
    } catch (err) {
      if (err.status !== 401) error.textContent = `The key was not created: ${err.message}`;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function showCreated(box, key) {
  const input = h("input", {
    id: "created-key", type: "text", readonly: true, value: key.key, spellcheck: "false",
    "aria-describedby": "created-key-warning",
  });
  const copied = h("span", { class: "muted", role: "status" });
  const copy = async () => {
    input.select();
    try {
      if (!navigator.clipboard) throw new Error("no clipboard here");
      await navigator.clipboard.writeText(key.key);
      copied.textContent = "Copied.";
    } catch {
      copied.textContent = "Copy it by hand: the key is selected.";
    }
  };
  const section = h("section", { class: "card created", "aria-labelledby": "created-title" },
    h("h2", { id: "created-title" }, `New key “${key.name}”`),
    h("p", { id: "created-key-warning", class: "warning" },
      "Copy this key now: it will not be shown again (vpa keeps only its hash)."),
    h("label", { for: "created-key" }, "The new API key"),
    h("div", { class: "copy-row" }, input,
      h("button", { type: "button", onclick: copy }, "Copy")),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "secondary", onclick: () => replace(box) },
        "Done, hide it"), copied));
  replace(box, section);
  announce(`Key “${key.name}” created: copy it now, it will not be shown again.`);
  input.focus();
  input.select();
}

function limits(key) {
  const rate = key.rate_limit_per_minute;
  const jobs = key.max_active_jobs;
  if (rate == null && jobs == null) return "default";
  return `requests/min: ${rate ?? "default"} · active jobs: ${jobs ?? "default"}`;
}

function keyRow(key, confirm) {
  const status = h("td", { "data-label": "Status" });
  const actions = h("td", { "data-label": "Actions" });
  const row = h("tr", { dataset: { keyId: key.id } },
    h("th", { scope: "row", "data-label": "Name" }, key.name),
    h("td", { "data-label": "Prefix" }, h("code", {}, `${key.key_prefix}…`)),
    h("td", { "data-label": "Created" }, when(key.created_at)),
    h("td", { "data-label": "Limits" }, limits(key)),
    status, actions);
  const show = (current) => {
    row.dataset.status = current.revoked_at ? "revoked" : "active";
    replace(status, current.revoked_at
      ? h("span", { class: "badge status-failed" }, `revoked ${when(current.revoked_at)}`)
      : h("span", { class: "badge status-completed" }, "active"));
    replace(actions, current.revoked_at ? null : h("button", {
      type: "button", class: "danger", "aria-label": `Revoke ${current.name}`,
      onclick: () => confirm.ask(current, async () => {
        const revoked = await api(`${API}/keys/${current.id}`, { method: "DELETE" });
        show(revoked);
        announce(`Key “${current.name}” revoked.`);
      }),
    }, "Revoke"));
  };
  show(key);
  return row;
}

// One <dialog> for every row: "Revoke <name>?", then the DELETE.
function revokeDialog() {
  const what = h("p", { id: "revoke-what" });
  const error = h("p", { class: "error", role: "alert" });
  const yes = h("button", { type: "button", class: "danger" }, "Revoke");
  const no = h("button", { type: "button", class: "secondary" }, "Keep it");
  const el = h("dialog", { id: "revoke-dialog", "aria-labelledby": "revoke-title",
    "aria-describedby": "revoke-what" },
  h("h2", { id: "revoke-title" }, "Revoke this key?"), what, error,
  h("div", { class: "actions" }, yes, no));
  let pending = null;
  no.addEventListener("click", () => el.close());
  el.addEventListener("close", () => { pending = null; });
  yes.addEventListener("click", async () => {
    if (!pending) return;
    yes.disabled = true;
    try {
      await pending();
      el.close();
    } catch (err) {
      if (err.status === 401) el.close(); // the key prompt is shown
      else error.textContent = `Not revoked: ${err.message}`;
    } finally {
      yes.disabled = false;
    }
  });
  const ask = (key, revoke) => {
    pending = revoke;
    error.textContent = "";
    replace(what, `“${key.name}” (${key.key_prefix}…) stops working at once, on every `,
      "request and for every client using it. This cannot be undone.");
    el.showModal();
    no.focus();
  };
  return { el, ask };
}
