// The vpa web app: hash routes (#/ the job list, #/jobs/<id> a job, #/keys the API keys),
// no build step.
import { API, api, onUnauthorized, storedKey, storeKey } from "./api.js";
import { announce, h, replace } from "./dom.js";
import { showJob } from "./job.js";
import { showKeys } from "./keys.js";
import { showList } from "./list.js";

const main = document.getElementById("main");
const forget = document.getElementById("forget-key");
let leave = () => {};
let prompting = false;

function route() {
  leave();
  leave = () => {};
  prompting = false;
  const match = location.hash.match(/^#\/jobs\/([0-9a-fA-F-]{36})$/);
  const keys = location.hash === "#/keys";
  markNav(keys ? "#/keys" : match ? "" : "#/");
  if (match) leave = showJob(main, match[1]) || leave;
  else if (keys) leave = showKeys(main) || leave;
  else leave = showList(main) || leave;
}

// The header's link to the page shown says so (aria-current).
function markNav(href) {
  for (const link of document.querySelectorAll("header nav a[href^='#/']")) {
    if (link.getAttribute("href") === href) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function showKeyPrompt(message) {
  if (prompting) return;
  leave();
  leave = () => {};
  prompting = true;
  document.title = "API key · vpa";
  const input = h("input", {
    id: "api-key", name: "api-key", type: "password", autocomplete: "current-password",
    required: true, minlength: "16", spellcheck: "false",
  });
  const error = h("p", { id: "key-error", class: "error", role: "alert" }, message || "");
  input.setAttribute("aria-describedby", "key-help key-error");
  const form = h("form", { class: "card key-form", "aria-labelledby": "key-title" },
    h("h1", { id: "key-title" }, "Sign in"),
    h("p", { id: "key-help" },
      "This vpa server needs an API key. It is kept in this browser (localStorage) until ",
      "you choose “Forget key”."),
    h("label", { for: "api-key" }, "API key"),
    input,
    error,
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    try {
      await api(`${API}/jobs/?limit=1`, { key });
    } catch (err) {
      error.textContent = err.status === 401 ? "That key is not valid." : err.message;
      input.focus();
      return;
    }
    storeKey(key);
    announce("Signed in.");
    route();
  });
  replace(main, form);
  input.focus();
}

function syncForget() {
  forget.hidden = !storedKey();
}

onUnauthorized(() => {
  const had = storedKey();
  showKeyPrompt(had ? "The stored key was refused: enter a valid one." : "");
});

forget.addEventListener("click", () => {
  storeKey("");
  announce("The API key was removed from this browser.");
  route();
});

document.addEventListener("vpa:key", syncForget);
window.addEventListener("hashchange", () => { route(); main.focus(); });
syncForget();
route();
