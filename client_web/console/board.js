/* The live floor board: one card per picker on shift, kept up to date by the events
 * socket alone (docs/events.md), never by polling.
 *
 * On every `subscribed` frame (each (re)connection) the board loads the pickers with an
 * assignment in progress from GET /api/v1/floor, then applies events from there:
 *   picker_status  picking/waiting/signed_off/connected/heard/offline: the card's
 *                  assignment and progress, what the headset last heard (with its
 *                  confidence), re-prompts and dialog state; `offline` warns
 *   pick_confirmed a line closed: lines done +1 (once per line id; a line the load already
 *                  counted is not counted again), lines = done + remaining
 *   assignment_completed  every line closed
 * A picker's frames from before their last sign-off (by `at`) are dropped: a headset's
 * `heard` is published once kept, and may arrive after the sign-off that followed it.
 * A picker with no event for two minutes is shown idle (a client-side timer).
 *
 * Tests read the cards: `.picker-card[data-picker="<username>"]`, with `data-status`,
 * `data-warn` ("", "idle", "offline") and fields `[data-field="…"]`: assignment,
 * warehouse, lines_done, lines, picks_per_hour, heard, confidence, reprompts,
 * dialog_state, last_event, status, warning.
 */

import * as core from "./core.js";

const {h, t} = core;

const IDLE_MS = 2 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;
const DIALOG_STATES = [
  "assignment", "location", "quantity", "serial", "short", "deliver", "no_work", "sign_off",
  "signed_off",
];

const strings = {
  "en-US": {
    "board.nav": "Floor",
    "board.title": "Live floor",
    "board.summary": "{count} pickers on shift",
    "board.summary.one": "1 picker on shift",
    "board.empty": "No picker is on shift in this view. Cards appear as pickers sign on.",
    "board.loading": "Loading the floor…",
    "board.view": "View",
    "board.view.cards": "Cards",
    "board.view.table": "Table",
    "board.picker": "Picker",
    "board.assignment": "Assignment",
    "board.warehouse": "Warehouse",
    "board.progress": "Picks done",
    "board.progressOf": "{done} of {lines} lines",
    "board.rate": "Picks per hour",
    "board.heard": "Last heard",
    "board.confidence": "Confidence",
    "board.reprompts": "Re-prompts",
    "board.dialog": "Dialog",
    "board.lastEvent": "Last activity",
    "board.none": "–",
    "board.status.picking": "Picking",
    "board.status.waiting": "Waiting for work",
    "board.status.connected": "Headset on",
    "board.status.heard": "Picking",
    "board.status.completed": "Assignment done",
    "board.status.offline": "Offline",
    "board.warn.idle": "Idle: nothing for 2 minutes",
    "board.warn.offline": "Offline: the headset went away",
    "board.heardRejected": "not accepted",
    "board.dialog.assignment": "Assignment",
    "board.dialog.location": "Going to slot",
    "board.dialog.quantity": "Quantity",
    "board.dialog.serial": "Serial",
    "board.dialog.short": "Short",
    "board.dialog.deliver": "Delivering",
    "board.dialog.no_work": "No work",
    "board.dialog.sign_off": "Signing off",
    "board.dialog.signed_off": "Signed off",
  },
  "zh-CN": {
    "board.nav": "现场",
    "board.title": "实时现场",
    "board.summary": "在岗拣货员 {count} 人",
    "board.summary.one": "在岗拣货员 1 人",
    "board.empty": "当前视图中没有在岗的拣货员。拣货员登录后会显示卡片。",
    "board.loading": "正在加载现场…",
    "board.view": "视图",
    "board.view.cards": "卡片",
    "board.view.table": "表格",
    "board.picker": "拣货员",
    "board.assignment": "任务",
    "board.warehouse": "仓库",
    "board.progress": "已拣",
    "board.progressOf": "{lines} 行中已完成 {done} 行",
    "board.rate": "每小时拣货数",
    "board.heard": "最近听到",
    "board.confidence": "置信度",
    "board.reprompts": "重新提示",
    "board.dialog": "对话",
    "board.lastEvent": "最近活动",
    "board.none": "–",
    "board.status.picking": "拣货中",
    "board.status.waiting": "等待任务",
    "board.status.connected": "耳机已连接",
    "board.status.heard": "拣货中",
    "board.status.completed": "任务完成",
    "board.status.offline": "离线",
    "board.warn.idle": "空闲：2 分钟无活动",
    "board.warn.offline": "离线：耳机已断开",
    "board.heardRejected": "未接受",
    "board.dialog.assignment": "任务",
    "board.dialog.location": "前往货位",
    "board.dialog.quantity": "数量",
    "board.dialog.serial": "序列号",
    "board.dialog.short": "缺货",
    "board.dialog.deliver": "送货",
    "board.dialog.no_work": "无任务",
    "board.dialog.sign_off": "正在退出",
    "board.dialog.signed_off": "已退出",
  },
};

/* ---------- state ---------- */

const cards = new Map(); // picker -> card state
let loaded = false;
let loading = null; // the load in flight
let generation = 0; // the latest load: only it applies what it found
let pending = []; // events that arrived while it ran, applied after it
// when each picker last signed off: a headset's frame from before it (published a moment
// after the fact) must not bring the card back
const signedOff = new Map();
let layout = "cards";
let el = null;

function blankCard(picker, warehouse) {
  return {
    picker, warehouse, status: "waiting", assignment: null, lines: null, linesDone: null,
    doneLines: new Set(), lastPickAt: 0, ratePicks: 0, recentPicks: [], heard: null,
    reprompts: null, dialogState: null, offline: false, lastEventAt: Date.now(),
  };
}

function inView(warehouse) {
  return !core.session.warehouse || warehouse === core.session.warehouse;
}

/* ---------- loading (on every `subscribed`, and when the warehouse in view changes) ---------- */

async function reload() {
  const started = loadFloor();
  loading = started;
  try {
    await started;
  } finally {
    if (loading === started) loading = null;
  }
}

async function loadFloor() {
  const mine = ++generation;
  pending = [];
  const rows = await core.apiAll(`/api/v1/floor${core.warehouseQuery()}`);
  if (mine !== generation) return; // a newer load (another warehouse) takes over
  const now = Date.now();
  const previous = new Map(cards);
  cards.clear();
  for (const row of rows) {
    const before = previous.get(row.picker);
    const card = blankCard(row.picker, row.warehouse);
    const lastPick = row.last_pick_at ? Date.parse(row.last_pick_at) : 0;
    Object.assign(card, {
      status: "picking", assignment: row.assignment, lines: row.lines, linesDone: row.lines_done,
      lastPickAt: lastPick, ratePicks: row.picks_last_hour,
      lastEventAt: Math.max(lastPick, row.started_at ? Date.parse(row.started_at) : 0,
        before?.lastEventAt || 0) || now,
    });
    if (before && before.assignment === row.assignment) {
      // what only the headset says is not in the load: keep it
      Object.assign(card, {heard: before.heard, reprompts: before.reprompts,
        dialogState: before.dialogState, offline: before.offline});
    }
    cards.set(row.picker, card);
  }
  for (const [picker, card] of previous) {
    // pickers without an assignment are not in the load: keep those still in view
    if (!cards.has(picker) && card.assignment === null && inView(card.warehouse)) {
      cards.set(picker, card);
    }
  }
  loaded = true;
  const waiting = pending;
  pending = [];
  for (const frame of waiting) apply(frame);
  render();
}

/* ---------- events ---------- */

function onFrame(frame) {
  if (!frame.warehouse || !inView(frame.warehouse)) return;
  if (loading) {
    pending.push(frame);
    return;
  }
  if (!loaded) return;
  apply(frame);
  render();
}

function apply(frame) {
  const handler = HANDLERS[frame.type];
  if (handler && !fromBeforeSignOff(frame)) handler(frame);
}

function fromBeforeSignOff(frame) {
  const at = Date.parse(frame.at);
  return frame.picker !== undefined && at <= (signedOff.get(frame.picker) ?? -Infinity);
}

function cardFor(frame) {
  let card = cards.get(frame.picker);
  if (!card) {
    card = blankCard(frame.picker, frame.warehouse);
    cards.set(frame.picker, card);
  }
  card.warehouse = frame.warehouse;
  card.lastEventAt = Math.max(card.lastEventAt, Date.now());
  return card;
}

function takeAssignment(card, frame) {
  if (frame.assignment === null || frame.assignment === undefined) return;
  if (card.assignment !== frame.assignment) {
    card.assignment = frame.assignment;
    card.doneLines = new Set();
    card.lastPickAt = 0;
  }
  if (frame.lines !== null && frame.lines !== undefined) card.lines = frame.lines;
  if (frame.lines_done !== null && frame.lines_done !== undefined) card.linesDone = frame.lines_done;
}

const HANDLERS = {
  picker_status(frame) {
    if (frame.status === "signed_off" || frame.dialog_state === "signed_off") {
      cards.delete(frame.picker);
      const at = Date.parse(frame.at);
      if (at > (signedOff.get(frame.picker) ?? -Infinity)) signedOff.set(frame.picker, at);
      return;
    }
    const card = cardFor(frame);
    card.offline = frame.status === "offline";
    if (frame.status === "waiting") {
      Object.assign(card, {status: "waiting", assignment: null, lines: null, linesDone: null,
        doneLines: new Set()});
    } else if (!card.offline) {
      const same = card.assignment !== null && card.assignment === frame.assignment;
      takeAssignment(card, frame);
      if (card.assignment === null) card.status = card.status === "waiting" ? "waiting" : "connected";
      else if (!(same && card.status === "completed")) card.status = "picking";
    }
    if (frame.heard) card.heard = frame.heard;
    if (frame.reprompts !== null && frame.reprompts !== undefined) card.reprompts = frame.reprompts;
    if (frame.dialog_state) card.dialogState = frame.dialog_state;
  },
  pick_confirmed(frame) {
    const card = cardFor(frame);
    card.offline = false;
    if (card.assignment !== frame.assignment) {
      takeAssignment(card, {assignment: frame.assignment});
      card.linesDone = null;
    }
    if (card.status !== "completed") card.status = "picking";
    const at = Date.parse(frame.at) || Date.now();
    // once per line: the load already counted lines closed up to its last pick
    if (card.doneLines.has(frame.line) || (card.lastPickAt && at <= card.lastPickAt)) return;
    card.doneLines.add(frame.line);
    card.linesDone = (card.linesDone ?? 0) + 1;
    card.lines = card.linesDone + frame.remaining;
    card.recentPicks.push(at);
  },
  pick_skipped(frame) {
    const card = cardFor(frame);
    card.offline = false;
    if (card.linesDone !== null) card.lines = card.linesDone + frame.remaining;
  },
  assignment_completed(frame) {
    const card = cardFor(frame);
    card.offline = false;
    takeAssignment(card, {assignment: frame.assignment, lines: frame.lines,
      lines_done: frame.lines});
    card.status = "completed";
  },
  exception_opened(frame) {
    if (cards.has(frame.picker)) cardFor(frame);
  },
};

/* ---------- what a card shows ---------- */

function picksPerHour(card) {
  const since = Date.now() - HOUR_MS;
  card.recentPicks = card.recentPicks.filter((at) => at > since);
  return card.ratePicks + card.recentPicks.length;
}

function warning(card) {
  if (card.offline) return "offline";
  if (Date.now() - card.lastEventAt >= IDLE_MS) return "idle";
  return "";
}

function statusText(card) {
  if (card.offline) return t("board.status.offline");
  return t(`board.status.${card.status}`);
}

function dialogText(state) {
  if (!state) return t("board.none");
  return DIALOG_STATES.includes(state) ? t(`board.dialog.${state}`) : state;
}

function heardText(card) {
  if (!card.heard) return t("board.none");
  const text = `“${card.heard.text}”`;
  return card.heard.accepted ? text : `${text} (${t("board.heardRejected")})`;
}

function confidenceText(card) {
  return card.heard ? core.formatPercent(card.heard.confidence) : t("board.none");
}

function num(value) {
  return value === null || value === undefined ? t("board.none") : core.formatNumber(value);
}

function fields(card) {
  return {
    assignment: card.assignment === null ? t("board.none") : String(card.assignment),
    warehouse: card.warehouse,
    lines_done: num(card.linesDone),
    lines: num(card.lines),
    picks_per_hour: core.formatNumber(picksPerHour(card)),
    heard: heardText(card),
    confidence: confidenceText(card),
    reprompts: num(card.reprompts),
    dialog_state: dialogText(card.dialogState),
    last_event: core.formatTime(new Date(card.lastEventAt).toISOString(), {timeStyle: "medium"}),
    status: statusText(card),
  };
}

function field(name, text) {
  return h("span", {"data-field": name}, text);
}

function renderCard(card) {
  const values = fields(card);
  const warn = warning(card);
  const titleId = `board-card-${card.picker.replace(/[^\w-]/g, "_")}`;
  const done = card.linesDone ?? 0;
  const lines = card.lines ?? 0;
  const item = (label, ...content) => [h("dt", {}, t(label)), h("dd", {}, ...content)];
  return h("article", {
    class: "card picker-card", "data-picker": card.picker, "data-status": card.status,
    "data-warn": warn, "aria-labelledby": titleId,
  },
  h("header", {class: "picker-head"},
    h("h3", {id: titleId}, card.picker),
    h("span", {class: `badge ${warn === "offline" ? "bad" : warn ? "warn" : "ok"}`},
      field("status", values.status))),
  h("p", {class: "picker-warning", hidden: !warn},
    field("warning", warn ? t(`board.warn.${warn}`) : "")),
  h("dl", {class: "picker-facts"},
    item("board.assignment", field("assignment", values.assignment), " · ",
      field("warehouse", values.warehouse)),
    item("board.progress", field("lines_done", values.lines_done), " / ",
      field("lines", values.lines)),
    item("board.rate", field("picks_per_hour", values.picks_per_hour)),
    item("board.heard", field("heard", values.heard), " ",
      h("span", {class: "muted", hidden: !card.heard}, "(", field("confidence", values.confidence),
        ")")),
    item("board.reprompts", field("reprompts", values.reprompts)),
    item("board.dialog", field("dialog_state", values.dialog_state)),
    item("board.lastEvent", field("last_event", values.last_event))),
  h("progress", {class: "picker-progress", max: String(Math.max(lines, 1)),
    value: String(Math.min(done, Math.max(lines, 1))),
    "aria-label": t("board.progressOf", {done, lines})}));
}

function renderTable(list) {
  const columns = [
    ["board.picker", ""], ["board.assignment", ""], ["board.warehouse", ""],
    ["board.progress", "num"], ["board.rate", "num"], ["board.heard", ""],
    ["board.confidence", "num"], ["board.reprompts", "num"], ["board.dialog", ""],
    ["board.lastEvent", ""],
  ];
  return h("div", {class: "table-wrap"}, h("table", {class: "board-table"},
    h("thead", {}, h("tr", {}, columns.map(([label, cls]) =>
      h("th", {scope: "col", class: cls || null}, t(label))))),
    h("tbody", {}, list.map((card) => {
      const values = fields(card);
      const warn = warning(card);
      return h("tr", {"data-row-picker": card.picker, "data-warn": warn},
        h("th", {scope: "row"}, card.picker, " ",
          h("span", {class: `badge ${warn === "offline" ? "bad" : warn ? "warn" : "ok"}`},
            warn ? t(`board.warn.${warn}`) : statusText(card))),
        h("td", {}, values.assignment), h("td", {}, values.warehouse),
        h("td", {class: "num"}, `${values.lines_done} / ${values.lines}`),
        h("td", {class: "num"}, values.picks_per_hour), h("td", {}, values.heard),
        h("td", {class: "num"}, values.confidence), h("td", {class: "num"}, values.reprompts),
        h("td", {}, values.dialog_state), h("td", {}, values.last_event));
    }))));
}

function render() {
  if (!el) return;
  el.title.textContent = t("board.title");
  el.viewLabel.textContent = t("board.view");
  el.cardsOption.textContent = t("board.view.cards");
  el.tableOption.textContent = t("board.view.table");
  const list = [...cards.values()].filter((card) => inView(card.warehouse))
    .sort((a, b) => a.picker.localeCompare(b.picker));
  el.summary.textContent = !loaded ? t("board.loading")
    : list.length === 1 ? t("board.summary.one") : t("board.summary", {count: list.length});
  el.empty.textContent = t("board.empty");
  el.empty.hidden = !loaded || list.length > 0;
  el.cards.hidden = layout !== "cards";
  el.table.hidden = layout !== "table";
  if (layout === "cards") {
    el.cards.replaceChildren(...list.map(renderCard));
    el.table.replaceChildren();
  } else {
    el.table.replaceChildren(list.length ? renderTable(list) : "");
    el.cards.replaceChildren();
  }
}

/* ---------- the screen ---------- */

export const screen = {
  id: "board",
  label: "board.nav",
  strings,
  mount(section) {
    const title = h("h2", {id: "screen-board-title"}, t("board.title"));
    const viewLabel = h("label", {for: "board-view"}, t("board.view"));
    const cardsOption = h("option", {value: "cards"}, t("board.view.cards"));
    const tableOption = h("option", {value: "table"}, t("board.view.table"));
    const view = h("select", {id: "board-view"}, cardsOption, tableOption);
    view.addEventListener("change", () => {
      layout = view.value;
      render();
    });
    const summary = h("p", {id: "board-summary", class: "muted board-summary"});
    const empty = h("p", {id: "board-empty", class: "panel", hidden: true});
    const cardList = h("div", {id: "board-cards", class: "cards board-cards"});
    const table = h("div", {id: "board-table", hidden: true});
    section.append(
      h("div", {class: "screen-head"}, title,
        h("div", {class: "row"}, h("span", {class: "board-view"}, viewLabel, view))),
      summary, empty, cardList, table);
    el = {title, viewLabel, cardsOption, tableOption, summary, empty, cards: cardList, table};

    core.onEvent("subscribed", () => {
      reload().catch((err) => core.notify(core.describeError(err), "error"));
    });
    core.onEvent("*", (frame) => {
      if (frame.type !== "subscribed" && frame.type !== "error") onFrame(frame);
    });
    core.onLocale(render);
    core.onWarehouse(() => {
      if (loaded || loading) reload().catch((err) => core.notify(core.describeError(err), "error"));
    });
    // idle warnings and picks per hour age on their own: look again every few seconds
    setInterval(() => {
      if (loaded && !section.hidden) render();
    }, 5000);
    render();
  },
  show() {
    render();
  },
};
