// The API, as the app calls it: the stored key on every call, errors as messages.
//
// With ADMIN_API_KEY set on the server every API call needs a key: the app keeps the one
// the user enters in localStorage, sends it as `Authorization: Bearer`, and on WebSockets
// as `?api_key=` (a browser cannot set headers there). A 401 calls `onUnauthorized`, which
// brings the key prompt back. Media and download links carry a signed link instead of the
// key (POST /api/v1/jobs/{id}/links), since <video src> sends no header.

const KEY_STORAGE = "vpa.apiKey";
export const API = "/api/v1";

let unauthorized = () => {};

export function onUnauthorized(handler) { unauthorized = handler; }

export function storedKey() {
  try { return localStorage.getItem(KEY_STORAGE) || ""; } catch { return ""; }
}

export function storeKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch { /* storage off: the key lasts for this page only */ }
  document.dispatchEvent(new CustomEvent("vpa:key"));
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : describe(detail) || `HTTP ${status}`);
    this.status = status;
  }
}

function describe(detail) {
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  }
  if (detail && typeof detail === "object") return detail.message || JSON.stringify(detail);
  return "";
}

export async function api(path, { method = "GET", json, form, key } = {}) {
  const headers = { Accept: "application/json" };
  const useKey = key ?? storedKey();
  if (useKey) headers.Authorization = `Bearer ${useKey}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, cache: "no-store" });
  } catch (err) {
    throw new ApiError(0, `the server cannot be reached (${err.message})`);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok) {
    if (response.status === 401 && key === undefined) unauthorized();
    const detail = data && typeof data === "object" && "detail" in data ? data.detail : data;
    throw new ApiError(response.status, detail);
  }
  return data;
}

export function wsUrl(path) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const key = storedKey();
  if (key) url.searchParams.set("api_key", key);
  return url.href;
}

// A job's download links, signed when keys are on; refreshed before they expire.
const links = new Map();

export async function linkQuery(jobId) {
  const cached = links.get(jobId);
  if (cached && (!cached.expires || cached.expires - Date.now() > 60_000)) return cached.query;
  const link = await api(`${API}/jobs/${jobId}/links`, { method: "POST" });
  const expires = link.expires_at ? Date.parse(link.expires_at) : 0;
  links.set(jobId, { query: link.query, expires });
  return link.query;
}

export function withLink(url, query) {
  if (!url || !query) return url;
  return url + (url.includes("?") ? "&" : "?") + query;
}
