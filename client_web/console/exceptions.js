/* The exceptions inbox: shorts, damage, wrong items and calls for help from the floor,
 * newest first, live from the events socket (docs/events.md).
 *
 * On every `subscribed` frame the list is loaded from GET /api/v1/exceptions (status and
 * warehouse filters); events apply from there, by exception id, so one that the load
 * already had changes nothing: `exception_opened` adds a row at the top, highlighted,
 * with a short chime (WebAudio oscillator; every chime counts in
 * `window.wavepickConsole.sounds`), `exception_resolved` takes it out of the open list.
 *
 * Each open row has a "Join call" link (call.html?exception=<id>, a new tab) and a form
 * to resolve it: what was decided (required) and the outcome (noted, short_accepted,
 * adjusted with location/quantity/reason, recount, reassigned to a picker) → POST
 * /exceptions/{id}/resolve;
 * a refusal (problem+json) is said in the row.
 *
 * Tests read `.exception-item[data-exception="<id>"]` (`data-status`, `data-new`) and its
 * `[data-field="…"]`: kind, picker, sku, location, quantity, note, opened_at, warehouse,
 * resolution, resolved_by, resolved_at; the form's controls are named resolution,
 * outcome, location, quantity, reason; `.exception-error` says a refusal.
 */

import * as core from "./core.js";

const {h, t} = core;

const KINDS = ["short", "damage", "wrong_item", "help", "recount"];
const OUTCOMES = ["noted", "short_accepted", "adjusted", "recount", "reassigned"];
const REASONS = ["count_correction", "found", "lost", "damaged", "expired", "other"];
const SOUND_KEY = "wavepick.exceptions.sound";
const RESOLVED_SHOWN = 100;

const strings = {
  "en-US": {
    "exceptions.nav": "Exceptions",
    "exceptions.title": "Exceptions inbox",
    "exceptions.show": "Show",
    "exceptions.filter.open": "Open",
    "exceptions.filter.resolved": "Resolved",
    "exceptions.sound": "Sound for new exceptions",
    "exceptions.count.open": "{count} open",
    "exceptions.count.resolved": "{count} resolved (latest first)",
    "exceptions.empty.open": "No open exceptions. New ones appear here as the floor reports them.",
    "exceptions.empty.resolved": "Nothing resolved yet.",
    "exceptions.loading": "Loading exceptions…",
    "exceptions.new": "New",
    "exceptions.kind.short": "Short",
    "exceptions.kind.damage": "Damage",
    "exceptions.kind.wrong_item": "Wrong item",
    "exceptions.kind.help": "Help request",
    "exceptions.kind.recount": "Recount",
    "exceptions.number": "Exception {id}",
    "exceptions.picker": "Reported by",
    "exceptions.sku": "SKU",
    "exceptions.location": "Location",
    "exceptions.quantity": "Quantity",
    "exceptions.note": "Note",
    "exceptions.openedAt": "Opened at",
    "exceptions.warehouse": "Warehouse",
    "exceptions.resolvedBy": "Resolved by",
    "exceptions.resolvedAt": "Resolved at",
    "exceptions.resolutionShown": "Decision",
    "exceptions.joinCall": "Join call",
    "exceptions.joinCallLabel": "Join call about exception {id} (opens a new tab)",
    "exceptions.resolution": "Resolution (reason)",
    "exceptions.outcome": "Outcome",
    "exceptions.outcome.noted": "Noted, nothing changes",
    "exceptions.outcome.short_accepted": "Accept the short (write off)",
    "exceptions.outcome.adjusted": "Adjust stock",
    "exceptions.outcome.recount": "Send a recount",
    "exceptions.outcome.reassigned": "Give the rest to another picker",
    "exceptions.picker": "Picker who takes over",
    "exceptions.adjustLocation": "At location (default: the slot)",
    "exceptions.adjustQuantity": "Change (+/− units)",
    "exceptions.reason": "Reason",
    "exceptions.reason.count_correction": "Count correction",
    "exceptions.reason.found": "Found",
    "exceptions.reason.lost": "Lost",
    "exceptions.reason.damaged": "Damaged",
    "exceptions.reason.expired": "Expired",
    "exceptions.reason.other": "Other",
    "exceptions.resolve": "Resolve",
    "exceptions.resolving": "Resolving…",
    "exceptions.needResolution": "Say what was decided before resolving.",
    "exceptions.resolved": "Exception {id} resolved.",
    "exceptions.none": "–",
  },
  "zh-CN": {
    "exceptions.nav": "异常",
    "exceptions.title": "异常收件箱",
    "exceptions.show": "显示",
    "exceptions.filter.open": "未处理",
    "exceptions.filter.resolved": "已处理",
    "exceptions.sound": "新异常提示音",
    "exceptions.count.open": "未处理 {count} 条",
    "exceptions.count.resolved": "已处理 {count} 条（最新在前）",
    "exceptions.empty.open": "没有未处理的异常。现场报告的新异常会显示在这里。",
    "exceptions.empty.resolved": "还没有已处理的异常。",
    "exceptions.loading": "正在加载异常…",
    "exceptions.new": "新",
    "exceptions.kind.short": "缺货",
    "exceptions.kind.damage": "破损",
    "exceptions.kind.wrong_item": "错货",
    "exceptions.kind.help": "求助",
    "exceptions.kind.recount": "复盘",
    "exceptions.number": "异常 {id}",
    "exceptions.picker": "报告人",
    "exceptions.sku": "SKU",
    "exceptions.location": "货位",
    "exceptions.quantity": "数量",
    "exceptions.note": "备注",
    "exceptions.openedAt": "报告时间",
    "exceptions.warehouse": "仓库",
    "exceptions.resolvedBy": "处理人",
    "exceptions.resolvedAt": "处理时间",
    "exceptions.resolutionShown": "决定",
    "exceptions.joinCall": "加入通话",
    "exceptions.joinCallLabel": "加入通话：异常 {id}（在新标签页打开）",
    "exceptions.resolution": "处理结果（原因）",
    "exceptions.outcome": "处理方式",
    "exceptions.outcome.noted": "已记录，不做更改",
    "exceptions.outcome.short_accepted": "确认缺货（核销）",
    "exceptions.outcome.adjusted": "调整库存",
    "exceptions.outcome.recount": "安排复盘",
    "exceptions.outcome.reassigned": "将剩余任务转给其他拣货员",
    "exceptions.picker": "接手的拣货员",
    "exceptions.adjustLocation": "货位（默认：该货位）",
    "exceptions.adjustQuantity": "变动（+/− 件）",
    "exceptions.reason": "原因",
    "exceptions.reason.count_correction": "盘点更正",
    "exceptions.reason.found": "找到",
    "exceptions.reason.lost": "丢失",
    "exceptions.reason.damaged": "破损",
    "exceptions.reason.expired": "过期",
    "exceptions.reason.other": "其他",
    "exceptions.resolve": "处理",
    "exceptions.resolving": "正在处理…",
    "exceptions.needResolution": "请先填写处理结果。",
    "exceptions.resolved": "异常 {id} 已处理。",
    "exceptions.none": "–",
  },
};

/* ---------- state ---------- */

const items = new Map(); // id -> exception (the ExceptionOut fields)
const rows = new Map(); // id -> <li>
const fresh = new Set(); // ids that arrived live: highlighted
let filter = "open";
let loaded = false;
let loading = null;
let generation = 0;
let pending = [];
let audio = null;
let el = null;

function inView(warehouse) {
  return !core.session.warehouse || warehouse === core.session.warehouse;
}

function soundOn() {
  return localStorage.getItem(SOUND_KEY) !== "off";
}

/* ---------- the chime ---------- */

function chime() {
  if (!soundOn()) return;
  try {
    audio ||= new AudioContext();
    if (audio.state === "suspended") audio.resume().catch(() => {});
    const now = audio.currentTime;
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.type = "sine";
    tone.frequency.setValueAtTime(880, now);
    tone.frequency.setValueAtTime(660, now + 0.15);
    gain.gain.setValueAtTime(0.0001, now);
    gain.gain.exponentialRampToValueAtTime(0.25, now + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.4);
    tone.connect(gain).connect(audio.destination);
    tone.start(now);
    tone.stop(now + 0.45);
  } catch (err) {
    console.warn("wavepick console: no sound for a new exception", err);
    return;
  }
  const hook = window.wavepickConsole;
  if (hook && "sounds" in hook) hook.sounds += 1;
}

/* ---------- loading ---------- */

async function reload() {
  const started = load();
  loading = started;
  render();
  try {
    await started;
  } finally {
    if (loading === started) loading = null;
    render();
  }
}

async function load() {
  const mine = ++generation;
  pending = [];
  const base = `/api/v1/exceptions?status=${filter}${core.warehouseQuery("&")}`;
  let found;
  if (filter === "open") {
    found = await core.apiAll(base);
  } else {
    // the list is oldest first: its last page holds the latest resolved
    const {total} = await core.api(`${base}&limit=1`);
    const offset = Math.max(0, total - RESOLVED_SHOWN);
    found = (await core.api(`${base}&limit=${RESOLVED_SHOWN}&offset=${offset}`)).items;
  }
  if (mine !== generation) return;
  items.clear();
  for (const exception of found) items.set(exception.id, exception);
  for (const id of [...fresh]) if (!items.has(id)) fresh.delete(id);
  loaded = true;
  const waiting = pending;
  pending = [];
  for (const frame of waiting) apply(frame);
  rebuild();
}

/* ---------- events ---------- */

function onFrame(frame) {
  if (!inView(frame.warehouse)) return;
  if (frame.type === "exception_opened") chimeIfNew(frame);
  if (loading) {
    pending.push(frame);
    return;
  }
  if (loaded) apply(frame);
}

function chimeIfNew(frame) {
  if (!items.has(frame.exception) || items.get(frame.exception).status !== "open") chime();
}

function apply(frame) {
  if (frame.type === "exception_opened") {
    if (filter !== "open" || items.has(frame.exception)) return;
    const exception = {
      id: frame.exception, kind: frame.kind, status: "open", warehouse: frame.warehouse,
      assignment: frame.assignment, pick_line: frame.line, quantity: frame.quantity,
      reported_by: frame.picker, note: frame.note || "", created_at: frame.at, sku: frame.sku,
      location: frame.location,
    };
    items.set(exception.id, exception);
    fresh.add(exception.id);
    place(exception);
  } else if (frame.type === "exception_resolved") {
    const known = items.get(frame.exception);
    if (filter === "open") {
      if (known) remove(frame.exception);
    } else if (!known) {
      reload().catch(showError);
    }
  }
  renderCount();
}

/* ---------- rows ---------- */

function remove(id) {
  items.delete(id);
  fresh.delete(id);
  rows.get(id)?.remove();
  rows.delete(id);
  renderCount();
}

/* Put an exception's row in its place: newest (highest id) first. */
function place(exception) {
  const row = buildRow(exception);
  const old = rows.get(exception.id);
  if (old) {
    old.replaceWith(row);
  } else {
    const after = [...rows.keys()].filter((id) => id < exception.id).sort((a, b) => b - a)[0];
    const next = after === undefined ? null : rows.get(after);
    el.list.insertBefore(row, next);
  }
  rows.set(exception.id, row);
}

/* Every row again (after a load, or in another language), keeping what was typed. */
function rebuild() {
  const typed = new Map();
  for (const [id, row] of rows) {
    const form = row.querySelector("form");
    if (form) typed.set(id, Object.fromEntries(new FormData(form)));
  }
  rows.clear();
  el.list.replaceChildren();
  const ordered = [...items.values()].sort((a, b) => b.id - a.id);
  for (const exception of ordered) {
    const row = buildRow(exception, typed.get(exception.id));
    el.list.append(row);
    rows.set(exception.id, row);
  }
  renderCount();
}

function fact(label, name, value) {
  return h("div", {class: "fact"},
    h("dt", {}, t(label)), h("dd", {"data-field": name}, value ?? t("exceptions.none")));
}

function buildRow(exception, typed) {
  const id = exception.id;
  const titleId = `exception-${id}-title`;
  const isNew = fresh.has(id);
  const row = h("li", {
    class: `panel exception-item${isNew ? " new" : ""}`, "data-exception": String(id),
    "data-status": exception.status, "data-new": isNew ? "true" : null,
    "aria-labelledby": titleId,
  },
  h("header", {class: "exception-head"},
    h("h3", {id: titleId},
      h("span", {class: "badge warn", "data-field": "kind"},
        KINDS.includes(exception.kind) ? t(`exceptions.kind.${exception.kind}`) : exception.kind),
      " ", t("exceptions.number", {id})),
    isNew ? h("span", {class: "badge new-badge"}, t("exceptions.new")) : null),
  h("dl", {class: "exception-facts"},
    fact("exceptions.picker", "picker", exception.reported_by),
    fact("exceptions.sku", "sku", exception.sku),
    fact("exceptions.location", "location", exception.location),
    fact("exceptions.quantity", "quantity",
      exception.quantity === null || exception.quantity === undefined
        ? null : core.formatNumber(exception.quantity)),
    fact("exceptions.note", "note", exception.note || null),
    fact("exceptions.openedAt", "opened_at", core.formatTime(exception.created_at)),
    fact("exceptions.warehouse", "warehouse", exception.warehouse),
    exception.status === "resolved" ? [
      fact("exceptions.resolutionShown", "resolution", exception.resolution),
      fact("exceptions.resolvedBy", "resolved_by", exception.resolved_by),
      fact("exceptions.resolvedAt", "resolved_at", core.formatTime(exception.resolved_at)),
    ] : null),
  exception.status === "open" ? actions(exception, typed) : null);
  return row;
}

function actions(exception, typed = {}) {
  const id = exception.id;
  const prefix = `exception-${id}`;
  const outcomes = OUTCOMES.filter((outcome) => {
    if (outcome === "noted") return true;
    if (outcome === "reassigned") return Boolean(exception.assignment);
    if (!exception.pick_line) return false;
    return outcome !== "short_accepted" || exception.kind === "short";
  });
  const control = (name, label, input) => h("div", {class: `field field-${name}`},
    h("label", {for: `${prefix}-${name}`}, t(label)), input);
  const resolution = h("input", {id: `${prefix}-resolution`, name: "resolution",
    maxlength: "2000", autocomplete: "off", "aria-describedby": `${prefix}-error`});
  resolution.value = typed.resolution || "";
  const outcome = h("select", {id: `${prefix}-outcome`, name: "outcome"},
    outcomes.map((value) => h("option", {value}, t(`exceptions.outcome.${value}`))));
  outcome.value = outcomes.includes(typed.outcome) ? typed.outcome : "noted";
  const location = h("input", {id: `${prefix}-location`, name: "location", maxlength: "64",
    autocomplete: "off", placeholder: exception.location || ""});
  location.value = typed.location || "";
  const quantity = h("input", {id: `${prefix}-quantity`, name: "quantity", type: "number",
    step: "1", inputmode: "numeric"});
  quantity.value = typed.quantity || "";
  const reason = h("select", {id: `${prefix}-reason`, name: "reason"},
    REASONS.map((value) => h("option", {value}, t(`exceptions.reason.${value}`))));
  reason.value = REASONS.includes(typed.reason) ? typed.reason : "count_correction";
  const adjust = h("div", {class: "row adjust"},
    control("location", "exceptions.adjustLocation", location),
    control("quantity", "exceptions.adjustQuantity", quantity),
    control("reason", "exceptions.reason", reason));
  const picker = h("input", {id: `${prefix}-picker`, name: "picker", maxlength: "64",
    autocomplete: "off", autocapitalize: "none", spellcheck: "false"});
  picker.value = typed.picker || "";
  const handOver = h("div", {class: "row hand-over"},
    control("picker", "exceptions.picker", picker));
  const showAdjust = () => {
    adjust.hidden = outcome.value !== "adjusted";
    handOver.hidden = outcome.value !== "reassigned";
  };
  outcome.addEventListener("change", showAdjust);
  showAdjust();
  const error = h("p", {id: `${prefix}-error`, class: "message exception-error", role: "alert",
    hidden: true});
  const submit = h("button", {type: "submit", class: "primary"}, t("exceptions.resolve"));
  const form = h("form", {class: "resolve-form", novalidate: true,
    "aria-label": t("exceptions.resolve")},
  h("div", {class: "row"},
    control("resolution", "exceptions.resolution", resolution),
    control("outcome", "exceptions.outcome", outcome)),
  adjust, handOver, error,
  h("div", {class: "row"}, submit));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    resolve(exception, {form, resolution, outcome, location, quantity, reason, picker, error,
      submit});
  });
  const call = h("a", {class: "button-link", href: `call.html?exception=${id}`,
    target: "_blank", rel: "opener", "aria-label": t("exceptions.joinCallLabel", {id})},
  t("exceptions.joinCall"));
  return h("div", {class: "exception-actions"}, h("div", {class: "row"}, call), form);
}

async function resolve(exception, parts) {
  const {resolution, outcome, location, quantity, reason, picker, error, submit} = parts;
  const text = resolution.value.trim();
  const say = (message) => {
    error.textContent = message;
    error.hidden = !message;
  };
  resolution.removeAttribute("aria-invalid");
  if (!text) {
    resolution.setAttribute("aria-invalid", "true");
    say(t("exceptions.needResolution"));
    resolution.focus();
    return;
  }
  const body = {resolution: text, outcome: outcome.value};
  if (outcome.value === "adjusted") {
    if (location.value.trim()) body.location = location.value.trim();
    if (quantity.value !== "") body.quantity = Number(quantity.value);
    body.reason = reason.value;
  }
  if (outcome.value === "reassigned") body.picker = picker.value.trim() || null;
  say("");
  submit.disabled = true;
  submit.textContent = t("exceptions.resolving");
  try {
    await core.api(`/api/v1/exceptions/${exception.id}/resolve`, {
      method: "POST", json: body, headers: {"Idempotency-Key": idempotencyKey()},
    });
  } catch (err) {
    say(core.describeError(err));
    submit.disabled = false;
    submit.textContent = t("exceptions.resolve");
    return;
  }
  if (filter === "open") remove(exception.id);
  core.notify(t("exceptions.resolved", {id: exception.id}));
  el.title.focus();
}

function idempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

function showError(err) {
  core.notify(core.describeError(err), "error");
}

/* ---------- the frame of the screen ---------- */

function renderCount() {
  if (!el) return;
  const shown = rows.size;
  el.count.textContent = !loaded || loading ? t("exceptions.loading")
    : t(`exceptions.count.${filter}`, {count: core.formatNumber(shown)});
  el.empty.textContent = t(`exceptions.empty.${filter}`);
  el.empty.hidden = !loaded || Boolean(loading) || shown > 0;
}

function render() {
  if (!el) return;
  el.title.textContent = t("exceptions.title");
  el.showLabel.textContent = t("exceptions.show");
  el.openOption.textContent = t("exceptions.filter.open");
  el.resolvedOption.textContent = t("exceptions.filter.resolved");
  el.soundLabel.textContent = t("exceptions.sound");
  renderCount();
}

export const screen = {
  id: "exceptions",
  label: "exceptions.nav",
  strings,
  mount(section) {
    const title = h("h2", {id: "screen-exceptions-title", tabindex: "-1"}, t("exceptions.title"));
    const showLabel = h("span", {}, t("exceptions.show"));
    const openOption = h("option", {value: "open"});
    const resolvedOption = h("option", {value: "resolved"});
    const select = h("select", {id: "exceptions-filter"}, openOption, resolvedOption);
    select.addEventListener("change", () => {
      filter = select.value;
      fresh.clear();
      reload().catch(showError);
    });
    const sound = h("input", {id: "exceptions-sound", type: "checkbox"});
    sound.checked = soundOn();
    sound.addEventListener("change", () => {
      localStorage.setItem(SOUND_KEY, sound.checked ? "on" : "off");
    });
    const soundLabel = h("span", {});
    const count = h("p", {id: "exceptions-count", class: "muted", role: "status"});
    const empty = h("p", {id: "exceptions-empty", class: "panel", hidden: true});
    const list = h("ul", {id: "exceptions-list", class: "exception-list"});
    section.append(
      h("div", {class: "screen-head"}, title,
        h("div", {class: "row exceptions-controls"},
          h("label", {for: "exceptions-filter", class: "inline"}, showLabel, select),
          h("label", {for: "exceptions-sound", class: "inline check"}, sound, soundLabel))),
      count, empty, list);
    el = {title, showLabel, openOption, resolvedOption, soundLabel, count, empty, list};

    core.onEvent("subscribed", () => reload().catch(showError));
    core.onEvent("exception_opened", onFrame);
    core.onEvent("exception_resolved", onFrame);
    core.onLocale(() => {
      render();
      if (loaded) rebuild();
    });
    core.onWarehouse(() => {
      if (loaded || loading) reload().catch(showError);
    });
    // a browser lets sound start only after a gesture: any click on the console will do
    document.addEventListener("pointerdown", () => {
      if (audio?.state === "suspended") audio.resume().catch(() => {});
    });
    render();
  },
  show() {
    render();
  },
};
