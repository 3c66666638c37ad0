/* What every console screen shares: the signed-in user, the API with its bearer token,
 * translations, times in the viewer's time zone, the live events socket, and a small
 * helper to build elements. Screens import from here; nothing here knows a screen.
 */

export const TOKEN_KEY = "wavepick.token";
export const USER_KEY = "wavepick.username";
export const LOCALE_KEY = "wavepick.locale";
export const LOCALES = ["en-US", "zh-CN"];

/* ---------- translations ---------- */

const messages = {"en-US": {}, "zh-CN": {}};
const localeListeners = new Set();

export let locale = pickLocale();

function pickLocale() {
  const stored = localStorage.getItem(LOCALE_KEY);
  if (LOCALES.includes(stored)) return stored;
  return (navigator.language || "").toLowerCase().startsWith("zh") ? "zh-CN" : "en-US";
}

/* Add a screen's strings: {"en-US": {key: text}, "zh-CN": {key: text}}. Keys are shared
 * by every screen, so a screen prefixes its own ("board.title"). */
export function register(strings) {
  for (const [code, table] of Object.entries(strings)) Object.assign(messages[code], table);
}

/* The text for `key` in the viewer's language, with {name} placeholders filled in. */
export function t(key, values) {
  let text = messages[locale][key] ?? messages["en-US"][key] ?? key;
  for (const [name, value] of Object.entries(values || {})) {
    text = text.replaceAll(`{${name}}`, String(value));
  }
  return text;
}

export function setLocale(code) {
  if (!LOCALES.includes(code) || code === locale) return;
  locale = code;
  localStorage.setItem(LOCALE_KEY, code);
  for (const listener of localeListeners) listener(code);
}

/* Call `listener` whenever the language changes (screens re-render their text). */
export function onLocale(listener) {
  localeListeners.add(listener);
}

/* Fill every [data-i18n] element under `root` (its text) and [data-i18n-label] (its
 * aria-label), [data-i18n-placeholder] (its placeholder). */
export function translate(root = document) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("[data-i18n-label]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nLabel));
  }
  for (const node of root.querySelectorAll("[data-i18n-placeholder]")) {
    node.setAttribute("placeholder", t(node.dataset.i18nPlaceholder));
  }
}

/* ---------- times and numbers, the viewer's way ---------- */

export const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

/* An ISO time from the server (UTC) in the viewer's time zone and language. */
export function formatTime(iso, options = {dateStyle: "short", timeStyle: "medium"}) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return new Intl.DateTimeFormat(locale, options).format(date);
}

export function formatNumber(value, options = {}) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return new Intl.NumberFormat(locale, options).format(value);
}

export function formatPercent(fraction) {
  return formatNumber(fraction, {style: "percent", maximumFractionDigits: 1});
}

/* ---------- the API ---------- */

export class ApiError extends Error {
  /* An answer that was not 2xx: `problem` is its problem+json body ({title, detail,
   * status, errors?}) when it had one. */
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

let onUnauthorized = () => {};

/* What to do when the server says the session is over (the console shows sign-in). */
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

/* `fetch` with the bearer token. JSON bodies may be given as `json`. Answers JSON (or the
 * raw Response with `raw: true`); throws ApiError for anything but 2xx. */
export async function api(path, {json, raw, headers, ...options} = {}) {
  const all = {Authorization: `Bearer ${token()}`, ...(headers || {})};
  if (json !== undefined) {
    all["Content-Type"] = "application/json";
    options.body = JSON.stringify(json);
  }
  const response = await fetch(path, {...options, headers: all});
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    onUnauthorized();
  }
  if (!response.ok) {
    let problem = null;
    try {
      problem = await response.json();
    } catch {
      problem = null;
    }
    throw new ApiError(response.status, problem);
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

/* Every item of a paginated list (`{items, total}` pages of `limit`). */
export async function apiAll(path, limit = 500) {
  const items = [];
  for (let offset = 0; ; offset += limit) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(`${path}${sep}limit=${limit}&offset=${offset}`);
    items.push(...page.items);
    if (items.length >= page.total || page.items.length === 0) return items;
  }
}

/* ---------- who is signed in, and where they are looking ---------- */

export const session = {
  user: null, // GET /api/v1/users/me
  warehouses: [], // codes the user may see (admins: every warehouse)
  warehouse: null, // the one the console shows; null: all of the user's
};

const warehouseListeners = new Set();

export function setWarehouse(code) {
  session.warehouse = code || null;
  for (const listener of warehouseListeners) listener(session.warehouse);
}

export function onWarehouse(listener) {
  warehouseListeners.add(listener);
}

/* The `warehouse=` query for the warehouse in view ("" when all). */
export function warehouseQuery(prefix = "?") {
  return session.warehouse ? `${prefix}warehouse=${encodeURIComponent(session.warehouse)}` : "";
}

/* ---------- live events (docs/events.md) ---------- */

const eventListeners = new Map(); // type -> Set of listeners ("*": every event)

/* Call `listener(frame)` for every event of `type` ("*": all) that reaches the console.
 * On every (re)connection "subscribed" comes first: reload what the screen shows. */
export function onEvent(type, listener) {
  if (!eventListeners.has(type)) eventListeners.set(type, new Set());
  eventListeners.get(type).add(listener);
}

export function dispatchEvent(frame) {
  for (const key of [frame.type, "*"]) {
    for (const listener of eventListeners.get(key) || []) {
      try {
        listener(frame);
      } catch (err) {
        console.error("wavepick console: event listener failed", frame.type, err);
      }
    }
  }
}

/* ---------- building elements ---------- */

/* h("td", {class: "num", dataset: {id: 3}}, "text", child, ...) */
export function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "class") node.className = value;
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/* Say something to the viewer in the console's message bar (kind: info, error). */
export function notify(message, kind = "info") {
  const bar = document.getElementById("notice");
  if (!bar) return;
  bar.textContent = message;
  bar.dataset.kind = kind;
  bar.hidden = !message;
}

/* An ApiError (or any error) as one sentence for the viewer, with row errors when the
 * problem has them. */
export function describeError(err) {
  if (!(err instanceof ApiError)) return String(err?.message || err);
  const problem = err.problem;
  const head = problem.detail || problem.title || `HTTP ${err.status}`;
  const rows = Array.isArray(problem.errors) ? problem.errors : [];
  return rows.length ? `${head}: ${rows.map(formatRowError).join("; ")}` : head;
}

function formatRowError(error) {
  if (typeof error === "string") return error;
  const where = error.row ?? error.line ?? (error.loc ? error.loc.join(".") : "");
  return where !== "" ? `${where}: ${error.msg || error.message || error.detail}` : (error.msg || error.message || "");
}
