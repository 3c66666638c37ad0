/* Orders and waves: import orders from CSV (with the file's bad rows listed), the orders
 * with their allocation and why it went where it went, releasing waves, making them more
 * or less urgent, and giving a wave's assignments to pickers.
 *
 * API: POST /api/v1/orders/import (multipart `file`), GET /api/v1/orders?status=,
 * GET /api/v1/orders/{n}, POST /api/v1/orders/{n}/allocate, GET|POST /api/v1/waves,
 * GET|PATCH /api/v1/waves/{n}, GET /api/v1/assignments, PATCH /api/v1/assignments/{n}.
 *
 * Orders are seller-wide (allocation chooses their warehouse); waves and assignments follow
 * the warehouse in view.
 */

import * as core from "./core.js";

const {h, t} = core;

const ORDER_STATUSES = ["open", "backordered", "partially_allocated", "allocated", "released",
  "picking", "picked", "short", "shipped", "cancelled"];
const ALLOCATABLE = new Set(["open", "backordered", "partially_allocated"]);
const PAGE = 25;

const strings = {
  "en-US": {
    "orders.nav": "Orders and waves",
    "orders.import.title": "Import orders",
    "orders.import.file": "CSV file (one row per order line)",
    "orders.import.allocate": "Allocate right away",
    "orders.import.submit": "Import",
    "orders.import.busy": "Importing…",
    "orders.import.pick": "Choose a CSV file first.",
    "orders.import.done": "Imported {count} orders: {numbers}",
    "orders.import.failed": "Nothing was imported: {detail}",
    "orders.import.row": "Row {row}",
    "orders.import.order": "order {order}",
    "orders.import.sku": "SKU {sku}",
    "orders.import.more": "Only the first {count} problems are listed.",
    "orders.list.title": "Orders",
    "orders.list.note": "Orders are for every warehouse: allocation chooses where each line ships.",
    "orders.filter.status": "Status",
    "orders.filter.all": "Every status",
    "orders.refresh": "Refresh",
    "orders.col.order": "Order",
    "orders.col.status": "Status",
    "orders.col.country": "Ship to",
    "orders.col.priority": "Priority",
    "orders.col.lines": "Lines",
    "orders.col.created": "Created",
    "orders.col.actions": "Actions",
    "orders.details": "Details",
    "orders.detailsOf": "Details of order {order}",
    "orders.allocate": "Allocate",
    "orders.allocateOf": "Allocate order {order}",
    "orders.allocating": "Allocating…",
    "orders.allocated": "Order {order} is now {status}.",
    "orders.none": "No orders.",
    "orders.page": "{from}–{to} of {total}, newest first",
    "orders.newer": "Newer",
    "orders.older": "Older",
    "orders.detail.title": "Order {order}",
    "orders.detail.close": "Close",
    "orders.detail.summary": "{status} · ship to {country} · priority {priority} · {channel}",
    "orders.detail.lines": "Lines",
    "orders.detail.allocations": "Allocations",
    "orders.detail.noAllocations": "Nothing allocated yet.",
    "orders.detail.why": "Why these warehouses",
    "orders.detail.notAllocated": "Not allocated yet: allocate it to see which warehouse ships it and why.",
    "orders.detail.rules": "Rules, in order: {rules}",
    "orders.detail.firstRule": "By “{rule}”, {warehouse} ranks first.",
    "orders.detail.split": "Split: {split} — splitting this order is {allowed}.",
    "orders.detail.splitYes": "allowed",
    "orders.detail.splitNo": "not allowed",
    "orders.detail.destination": "Destination: {destination}; weight {weight} g",
    "orders.detail.decision": "Decision (as the server put it): {decision}",
    "orders.detail.ranking": "Warehouses as the rules ranked them",
    "orders.detail.allocatedAt": "Allocated {time}",
    "orders.col.line": "Line",
    "orders.col.sku": "SKU",
    "orders.col.quantity": "Quantity",
    "orders.col.allocatedQty": "Allocated",
    "orders.col.short": "Short",
    "orders.col.lot": "Lot",
    "orders.col.warehouse": "Warehouse",
    "orders.col.rank": "Rank",
    "orders.col.shipsAll": "Ships all",
    "orders.col.units": "Units available",
    "orders.col.distance": "Distance (km)",
    "orders.col.cost": "Shipping cost",
    "orders.col.chosen": "Chosen",
    "orders.yes": "yes",
    "orders.no": "no",
    "orders.rule.nearest": "nearest",
    "orders.rule.stock_first": "stock first",
    "orders.rule.cost_first": "cost first",
    "orders.split.allowed": "allowed",
    "orders.split.never": "never",
    "orders.split.above_value": "above a value",
    "orders.status.open": "open",
    "orders.status.backordered": "backordered",
    "orders.status.partially_allocated": "partially allocated",
    "orders.status.allocated": "allocated",
    "orders.status.released": "released",
    "orders.status.picking": "picking",
    "orders.status.picked": "picked",
    "orders.status.short": "short",
    "orders.status.shipped": "shipped",
    "orders.status.cancelled": "cancelled",
    "orders.status.ready": "ready",
    "orders.status.in_progress": "in progress",
    "orders.status.completed": "completed",
    "waves.release.title": "Release a wave",
    "waves.release.warehouse": "Warehouse",
    "waves.release.cutoff": "Ship by (carrier cut-off, your time)",
    "waves.release.carrier": "Carrier",
    "waves.release.zone": "Zone",
    "waves.release.maxPriority": "At least this urgent (1–9)",
    "waves.release.maxOrders": "At most orders",
    "waves.release.lines": "Lines per assignment",
    "waves.release.submit": "Release wave",
    "waves.release.busy": "Releasing…",
    "waves.release.done": "Wave {wave} released: {orders} orders in {assignments} assignments.",
    "waves.release.noWarehouse": "Choose a warehouse.",
    "waves.list.title": "Waves",
    "waves.col.wave": "Wave",
    "waves.col.warehouse": "Warehouse",
    "waves.col.status": "Status",
    "waves.col.priority": "Priority",
    "waves.col.progress": "Lines done",
    "waves.col.assignments": "Assignments",
    "waves.col.released": "Released",
    "waves.col.actions": "Actions",
    "waves.status.released": "released",
    "waves.status.completed": "completed",
    "waves.releasedBy": "{time} by {user}",
    "waves.priorityOf": "New priority of wave {wave} (1 most urgent)",
    "waves.setPriority": "Set priority",
    "waves.prioritySet": "Wave {wave} now has priority {priority}.",
    "waves.open": "Assignments",
    "waves.openOf": "Assignments of wave {wave}",
    "waves.none": "No waves in view.",
    "waves.detail.title": "Assignments of wave {wave} ({warehouse})",
    "waves.detail.close": "Close",
    "waves.col.assignment": "Assignment",
    "waves.col.picker": "Picker",
    "waves.col.lines": "Lines",
    "waves.col.staging": "Deliver to",
    "waves.pool": "anyone (pool)",
    "waves.pickerFor": "Picker for assignment {assignment}",
    "waves.assign": "Assign",
    "waves.unassign": "Back to pool",
    "waves.assigned": "Assignment {assignment} goes to {picker} at their next sign-on.",
    "waves.unassigned": "Assignment {assignment} is back in the pool.",
    "waves.pickerMissing": "Enter the picker's username.",
    "waves.started": "Started {time}",
  },
  "zh-CN": {
    "orders.nav": "订单与波次",
    "orders.import.title": "导入订单",
    "orders.import.file": "CSV 文件（每行一个订单行）",
    "orders.import.allocate": "立即分配",
    "orders.import.submit": "导入",
    "orders.import.busy": "正在导入…",
    "orders.import.pick": "请先选择 CSV 文件。",
    "orders.import.done": "已导入 {count} 个订单：{numbers}",
    "orders.import.failed": "未导入任何订单：{detail}",
    "orders.import.row": "第 {row} 行",
    "orders.import.order": "订单 {order}",
    "orders.import.sku": "SKU {sku}",
    "orders.import.more": "只列出前 {count} 个问题。",
    "orders.list.title": "订单",
    "orders.list.note": "订单不属于某个仓库：分配决定每一行从哪个仓库发货。",
    "orders.filter.status": "状态",
    "orders.filter.all": "全部状态",
    "orders.refresh": "刷新",
    "orders.col.order": "订单",
    "orders.col.status": "状态",
    "orders.col.country": "目的地",
    "orders.col.priority": "优先级",
    "orders.col.lines": "订单行",
    "orders.col.created": "创建时间",
    "orders.col.actions": "操作",
    "orders.details": "详情",
    "orders.detailsOf": "订单 {order} 的详情",
    "orders.allocate": "分配",
    "orders.allocateOf": "分配订单 {order}",
    "orders.allocating": "正在分配…",
    "orders.allocated": "订单 {order} 现在为：{status}。",
    "orders.none": "没有订单。",
    "orders.page": "共 {total} 个，第 {from}–{to} 个，最新在前",
    "orders.newer": "较新",
    "orders.older": "较早",
    "orders.detail.title": "订单 {order}",
    "orders.detail.close": "关闭",
    "orders.detail.summary": "{status} · 发往 {country} · 优先级 {priority} · {channel}",
    "orders.detail.lines": "订单行",
    "orders.detail.allocations": "分配结果",
    "orders.detail.noAllocations": "尚未分配。",
    "orders.detail.why": "为什么选这些仓库",
    "orders.detail.notAllocated": "尚未分配：分配后可看到由哪个仓库发货及原因。",
    "orders.detail.rules": "规则（按顺序）：{rules}",
    "orders.detail.firstRule": "按“{rule}”，{warehouse} 排第一。",
    "orders.detail.split": "拆单：{split} — 此订单{allowed}拆单。",
    "orders.detail.splitYes": "允许",
    "orders.detail.splitNo": "不允许",
    "orders.detail.destination": "目的地：{destination}；重量 {weight} 克",
    "orders.detail.decision": "决定（服务器原文）：{decision}",
    "orders.detail.ranking": "按规则排序的仓库",
    "orders.detail.allocatedAt": "分配于 {time}",
    "orders.col.line": "行",
    "orders.col.sku": "SKU",
    "orders.col.quantity": "数量",
    "orders.col.allocatedQty": "已分配",
    "orders.col.short": "缺货",
    "orders.col.lot": "批次",
    "orders.col.warehouse": "仓库",
    "orders.col.rank": "名次",
    "orders.col.shipsAll": "可全部发货",
    "orders.col.units": "可用数量",
    "orders.col.distance": "距离（公里）",
    "orders.col.cost": "运费",
    "orders.col.chosen": "已选",
    "orders.yes": "是",
    "orders.no": "否",
    "orders.rule.nearest": "最近",
    "orders.rule.stock_first": "库存优先",
    "orders.rule.cost_first": "成本优先",
    "orders.split.allowed": "允许",
    "orders.split.never": "从不",
    "orders.split.above_value": "超过金额时",
    "orders.status.open": "新建",
    "orders.status.backordered": "缺货待补",
    "orders.status.partially_allocated": "部分分配",
    "orders.status.allocated": "已分配",
    "orders.status.released": "已下发",
    "orders.status.picking": "拣货中",
    "orders.status.picked": "已拣货",
    "orders.status.short": "缺货",
    "orders.status.shipped": "已发货",
    "orders.status.cancelled": "已取消",
    "orders.status.ready": "待拣",
    "orders.status.in_progress": "进行中",
    "orders.status.completed": "已完成",
    "waves.release.title": "下发波次",
    "waves.release.warehouse": "仓库",
    "waves.release.cutoff": "最晚发货时间（承运商截单，您的时间）",
    "waves.release.carrier": "承运商",
    "waves.release.zone": "区域",
    "waves.release.maxPriority": "至少这么紧急（1–9）",
    "waves.release.maxOrders": "最多订单数",
    "waves.release.lines": "每个任务的行数",
    "waves.release.submit": "下发波次",
    "waves.release.busy": "正在下发…",
    "waves.release.done": "波次 {wave} 已下发：{orders} 个订单，{assignments} 个任务。",
    "waves.release.noWarehouse": "请选择仓库。",
    "waves.list.title": "波次",
    "waves.col.wave": "波次",
    "waves.col.warehouse": "仓库",
    "waves.col.status": "状态",
    "waves.col.priority": "优先级",
    "waves.col.progress": "已完成行",
    "waves.col.assignments": "任务",
    "waves.col.released": "下发",
    "waves.col.actions": "操作",
    "waves.status.released": "已下发",
    "waves.status.completed": "已完成",
    "waves.releasedBy": "{time}，{user}",
    "waves.priorityOf": "波次 {wave} 的新优先级（1 最紧急）",
    "waves.setPriority": "设置优先级",
    "waves.prioritySet": "波次 {wave} 的优先级现为 {priority}。",
    "waves.open": "任务",
    "waves.openOf": "波次 {wave} 的任务",
    "waves.none": "当前没有波次。",
    "waves.detail.title": "波次 {wave} 的任务（{warehouse}）",
    "waves.detail.close": "关闭",
    "waves.col.assignment": "任务",
    "waves.col.picker": "拣货员",
    "waves.col.lines": "行数",
    "waves.col.staging": "送往",
    "waves.pool": "任何人（任务池）",
    "waves.pickerFor": "任务 {assignment} 的拣货员",
    "waves.assign": "指派",
    "waves.unassign": "退回任务池",
    "waves.assigned": "任务 {assignment} 将在 {picker} 下次登录时交给其拣货。",
    "waves.unassigned": "任务 {assignment} 已退回任务池。",
    "waves.pickerMissing": "请输入拣货员的用户名。",
    "waves.started": "开始于 {time}",
  },
};

/* ---------- state: what the screen shows, kept so a new language re-renders it ---------- */

const state = {
  importResult: null, // {ok, count, numbers} | {ok: false, detail, errors}
  orders: null, // {items, total, offset}
  status: "",
  page: 0, // 0: newest
  order: null, // the order in the detail panel
  orderMessage: null, // {key, values, kind}
  waves: null, // [WaveSummary]
  waveMessage: null, // about the waves list (released, priority set)
  assignMessage: null, // about the assignments panel
  wave: null, // WaveOut in the assignments panel
  pickers: [], // usernames seen on assignments, for the picker field's suggestions
};
const el = {};
let section = null;

/* ---------- small builders ---------- */

/* A labelled field: <label for=id><span>text</span></label> then the control. */
function field(key, control, {wide = false} = {}) {
  return h("div", {class: wide ? "field wide" : "field"},
    h("label", {for: control.id, "data-i18n": key}, t(key)), control);
}

function hiddenLabel(forId, text) {
  return h("label", {for: forId, class: "visually-hidden"}, text);
}

function table(headKeys, rows, {caption} = {}) {
  return h("div", {class: "table-wrap"},
    h("table", {},
      caption ? h("caption", {class: "visually-hidden"}, caption) : null,
      h("thead", {}, h("tr", {}, headKeys.map(([key, cls]) =>
        h("th", {scope: "col", class: cls || null}, t(key))))),
      h("tbody", {}, rows)));
}

function statusText(status) {
  const key = `orders.status.${status}`;
  const text = t(key);
  return text === key ? status : text;
}

function say(target, message) {
  if (!message) {
    target.replaceChildren();
    target.hidden = true;
    return;
  }
  target.hidden = false;
  target.dataset.kind = message.kind || "info";
  target.replaceChildren(message.text ?? t(message.key, message.values));
}

/* ---------- import ---------- */

async function importCsv(event) {
  event.preventDefault();
  const file = el.importFile.files[0];
  if (!file) {
    state.importResult = {ok: false, detail: t("orders.import.pick"), errors: []};
    return renderImport();
  }
  const body = new FormData();
  body.append("file", file, file.name);
  const query = el.importAllocate.checked ? "?allocate=true" : "";
  el.importButton.disabled = true;
  el.importButton.textContent = t("orders.import.busy");
  try {
    const result = await core.api(`/api/v1/orders/import${query}`, {method: "POST", body});
    state.importResult = {ok: true, count: result.imported, numbers: result.orders};
    el.importFile.value = "";
    state.page = 0;
    await loadOrders();
  } catch (err) {
    const problem = err instanceof core.ApiError ? err.problem : {};
    state.importResult = {
      ok: false,
      detail: problem.detail || problem.title || core.describeError(err),
      errors: Array.isArray(problem.errors) ? problem.errors : [],
    };
  } finally {
    el.importButton.disabled = false;
    el.importButton.textContent = t("orders.import.submit");
    renderImport();
  }
}

function rowErrorText(error) {
  if (typeof error === "string") return error;
  const parts = [];
  if (error.row !== undefined && error.row !== null) parts.push(t("orders.import.row", {row: error.row}));
  if (error.order) parts.push(t("orders.import.order", {order: error.order}));
  if (error.sku) parts.push(t("orders.import.sku", {sku: error.sku}));
  const message = error.msg || error.message || error.detail || "";
  return parts.length ? `${parts.join(" · ")}: ${message}` : message;
}

function renderImport() {
  const result = state.importResult;
  const box = el.importResult;
  if (!result) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  box.hidden = false;
  box.dataset.kind = result.ok ? "ok" : "error";
  if (result.ok) {
    const shown = result.numbers.slice(0, 10).join(", ") + (result.numbers.length > 10 ? ", …" : "");
    box.replaceChildren(h("p", {id: "orders-import-done"},
      t("orders.import.done", {count: core.formatNumber(result.count), numbers: shown})));
    return;
  }
  const items = result.errors.map((error) => h("li", {class: "row-error"}, rowErrorText(error)));
  box.replaceChildren(
    h("p", {id: "orders-import-failed"}, t("orders.import.failed", {detail: result.detail})),
    items.length ? h("ul", {id: "orders-import-errors", class: "row-errors"}, items) : null,
    items.length >= 100 ? h("p", {class: "muted"}, t("orders.import.more", {count: items.length})) : null,
  );
}

/* ---------- orders ---------- */

let ordersAsked = 0; // only the answer to the latest question is shown

async function loadOrders() {
  const asked = ++ordersAsked;
  const status = state.status ? `&status=${encodeURIComponent(state.status)}` : "";
  // the API lists oldest first: read the total, then the page counted from the newest
  const head = await core.api(`/api/v1/orders?limit=1${status}`);
  const total = head.total;
  const pages = Math.max(1, Math.ceil(total / PAGE));
  state.page = Math.min(state.page, pages - 1);
  const end = total - state.page * PAGE;
  const offset = Math.max(0, end - PAGE);
  const limit = Math.max(1, end - offset);
  const page = await core.api(`/api/v1/orders?limit=${limit}&offset=${offset}${status}`);
  if (asked !== ordersAsked) return;
  state.orders = {items: page.items.slice().reverse(), total, from: total - end + 1, to: total - offset};
  renderOrders();
}

function renderOrders() {
  const data = state.orders;
  if (!data) return;
  if (!data.items.length) {
    el.ordersTable.replaceChildren(h("p", {class: "muted"}, t("orders.none")));
  } else {
    const rows = data.items.map((order) => h("tr", {dataset: {order: order.number, status: order.status}},
      h("th", {scope: "row"}, order.number),
      h("td", {}, h("span", {class: `badge ${badgeOf(order.status)}`}, statusText(order.status))),
      h("td", {}, [order.country, order.region].filter(Boolean).join(" / ")),
      h("td", {class: "num"}, order.priority),
      h("td", {}, order.lines.map((line) => `${line.sku} × ${line.quantity}`).join(", ")),
      h("td", {}, core.formatTime(order.created_at)),
      h("td", {class: "actions"},
        h("button", {type: "button", class: "details", "aria-label": t("orders.detailsOf", {order: order.number}),
          onclick: () => showOrder(order.number)}, t("orders.details")),
        ALLOCATABLE.has(order.status)
          ? h("button", {type: "button", class: "primary allocate",
            "aria-label": t("orders.allocateOf", {order: order.number}),
            onclick: (event) => allocate(order.number, event.currentTarget)}, t("orders.allocate"))
          : null)));
    el.ordersTable.replaceChildren(table([
      ["orders.col.order"], ["orders.col.status"], ["orders.col.country"], ["orders.col.priority", "num"],
      ["orders.col.lines"], ["orders.col.created"], ["orders.col.actions"],
    ], rows, {caption: t("orders.list.title")}));
  }
  el.ordersPage.textContent = data.total
    ? t("orders.page", {from: core.formatNumber(data.from), to: core.formatNumber(data.to),
      total: core.formatNumber(data.total)})
    : "";
  el.newer.disabled = state.page === 0;
  el.older.disabled = data.from <= 1;
}

function badgeOf(status) {
  if (["allocated", "released", "picking", "picked", "shipped", "completed"].includes(status)) return "ok";
  if (["backordered", "short", "cancelled"].includes(status)) return "bad";
  return "warn";
}

async function showOrder(number) {
  state.orderMessage = null;
  state.order = await core.api(`/api/v1/orders/${encodeURIComponent(number)}`);
  renderOrder();
  el.orderTitle.focus();
}

async function allocate(number, button) {
  if (button) {
    button.disabled = true;
    button.textContent = t("orders.allocating");
  }
  try {
    state.order = await core.api(`/api/v1/orders/${encodeURIComponent(number)}/allocate`, {method: "POST"});
    state.orderMessage = {key: "orders.allocated", values: {order: number, status: statusText(state.order.status)}};
    renderOrder();
    await loadOrders();
    el.orderTitle.focus();
  } catch (err) {
    core.notify(core.describeError(err), "error");
    if (button) {
      button.disabled = false;
      button.textContent = t("orders.allocate");
    }
  }
}

function renderOrder() {
  const order = state.order;
  el.orderPanel.hidden = !order;
  if (!order) return;
  el.orderTitle.textContent = t("orders.detail.title", {order: order.number});
  say(el.orderMessage, state.orderMessage && {...state.orderMessage,
    values: {...state.orderMessage.values, status: statusText(order.status)}});
  const explanation = order.allocation_explanation;
  const chosen = new Set(order.allocations.map((a) => a.warehouse));
  const parts = [
    h("p", {}, t("orders.detail.summary", {status: statusText(order.status), country: order.country,
      priority: order.priority, channel: order.channel || "—"})),
    ALLOCATABLE.has(order.status)
      ? h("p", {}, h("button", {type: "button", class: "primary", id: "order-allocate",
        onclick: (event) => allocate(order.number, event.currentTarget)}, t("orders.allocate")))
      : null,
    h("h4", {}, t("orders.detail.lines")),
    table([["orders.col.line", "num"], ["orders.col.sku"], ["orders.col.lot"], ["orders.col.quantity", "num"],
      ["orders.col.allocatedQty", "num"], ["orders.col.short", "num"]],
    order.lines.map((line) => h("tr", {},
      h("td", {class: "num"}, line.line), h("td", {}, line.sku), h("td", {}, line.lot || "—"),
      h("td", {class: "num"}, line.quantity), h("td", {class: "num"}, line.quantity_allocated),
      h("td", {class: "num"}, line.quantity_short)))),
    h("h4", {}, t("orders.detail.allocations")),
    order.allocations.length
      ? table([["orders.col.line", "num"], ["orders.col.sku"], ["orders.col.warehouse"], ["orders.col.quantity", "num"]],
        order.allocations.map((a) => h("tr", {class: "allocation", dataset: {warehouse: a.warehouse}},
          h("td", {class: "num"}, a.line), h("td", {}, a.sku), h("td", {}, a.warehouse),
          h("td", {class: "num"}, a.quantity))))
      : h("p", {class: "muted"}, t("orders.detail.noAllocations")),
    h("h4", {}, t("orders.detail.why")),
    explanation ? explain(explanation, chosen, order) : h("p", {class: "muted"}, t("orders.detail.notAllocated")),
  ];
  el.orderBody.replaceChildren(...parts.filter(Boolean));
}

function ruleName(rule) {
  const key = `orders.rule.${rule}`;
  const text = t(key);
  return text === key ? rule : text;
}

function explain(explanation, chosen, order) {
  const rules = explanation.rules || [];
  const ranking = explanation.ranking || [];
  const yesNo = (value) => t(value ? "orders.yes" : "orders.no");
  const splitKey = `orders.split.${explanation.split}`;
  return h("div", {class: "explanation", id: "order-explanation"},
    h("p", {id: "order-rules"}, t("orders.detail.rules", {rules: rules.map(ruleName).join(" → ")})),
    ranking.length && rules.length
      ? h("p", {id: "order-first-rule"}, t("orders.detail.firstRule",
        {rule: ruleName(rules[0]), warehouse: ranking[0].warehouse}))
      : null,
    h("p", {}, t("orders.detail.split", {split: t(splitKey) === splitKey ? explanation.split : t(splitKey),
      allowed: t(explanation.split_allowed ? "orders.detail.splitYes" : "orders.detail.splitNo")})),
    explanation.destination !== undefined
      ? h("p", {}, t("orders.detail.destination", {destination: describeDestination(explanation.destination),
        weight: core.formatNumber(explanation.weight_g)}))
      : null,
    h("p", {id: "order-decision", class: "decision"}, t("orders.detail.decision", {decision: explanation.decision || "—"})),
    order.allocated_at ? h("p", {class: "muted"}, t("orders.detail.allocatedAt", {time: core.formatTime(order.allocated_at)})) : null,
    ranking.length
      ? h("div", {},
        h("h5", {}, t("orders.detail.ranking")),
        table([["orders.col.rank", "num"], ["orders.col.warehouse"], ["orders.col.shipsAll"], ["orders.col.units", "num"],
          ["orders.col.distance", "num"], ["orders.col.cost", "num"], ["orders.col.chosen"]],
        ranking.map((c) => h("tr", {class: chosen.has(c.warehouse) ? "chosen" : null, dataset: {warehouse: c.warehouse}},
          h("td", {class: "num"}, c.rank), h("th", {scope: "row"}, c.warehouse), h("td", {}, yesNo(c.can_ship_all)),
          h("td", {class: "num"}, core.formatNumber(c.units_available)),
          h("td", {class: "num"}, c.distance_km === null ? "–" : core.formatNumber(c.distance_km)),
          h("td", {class: "num"}, c.shipping_cost_cents === null || c.shipping_cost_cents === undefined
            ? "–" : core.formatNumber(c.shipping_cost_cents / 100, {style: "currency", currency: order.currency || "USD"})),
          h("td", {}, chosen.has(c.warehouse) ? h("strong", {}, t("orders.yes")) : t("orders.no"))))))
      : null);
}

function describeDestination(destination) {
  if (destination === null || destination === undefined) return "—";
  if (typeof destination === "string") return destination;
  return Object.entries(destination).filter(([, value]) => value !== "" && value !== null)
    .map(([key, value]) => `${key}: ${value}`).join(", ");
}

/* ---------- waves ---------- */

let wavesAsked = 0;

async function loadWaves() {
  const asked = ++wavesAsked;
  const page = await core.api(`/api/v1/waves?limit=50${core.warehouseQuery("&")}`);
  if (asked !== wavesAsked) return;
  state.waves = page.items;
  renderWaves();
}

function renderWaves() {
  const waves = state.waves;
  if (!waves) return;
  if (!waves.length) {
    el.wavesTable.replaceChildren(h("p", {class: "muted"}, t("waves.none")));
    return;
  }
  const rows = waves.map((wave) => {
    const inputId = `wave-priority-${wave.number}`;
    const done = wave.status === "completed";
    const priority = h("input", {id: inputId, type: "number", min: 1, max: 9, value: wave.priority || 5,
      inputmode: "numeric", class: "priority-input", disabled: done});
    return h("tr", {dataset: {wave: wave.number, priority: wave.priority, status: wave.status}},
      h("th", {scope: "row"}, wave.number),
      h("td", {}, wave.warehouse),
      h("td", {}, h("span", {class: `badge ${done ? "ok" : "warn"}`}, t(`waves.status.${wave.status}`))),
      h("td", {class: "num wave-priority"}, wave.priority),
      h("td", {class: "num"}, `${core.formatNumber(wave.lines_closed)} / ${core.formatNumber(wave.lines)}`),
      h("td", {class: "num"}, wave.assignments),
      h("td", {}, t("waves.releasedBy", {time: core.formatTime(wave.released_at), user: wave.released_by})),
      h("td", {class: "actions"},
        h("form", {class: "inline-field", onsubmit: (event) => {
          event.preventDefault();
          reprioritise(wave.number, priority);
        }},
        hiddenLabel(inputId, t("waves.priorityOf", {wave: wave.number})), priority,
        h("button", {type: "submit", class: "set-priority", disabled: done}, t("waves.setPriority"))),
        h("button", {type: "button", class: "open-wave", "aria-label": t("waves.openOf", {wave: wave.number}),
          onclick: () => showWave(wave.number)}, t("waves.open"))));
  });
  el.wavesTable.replaceChildren(table([
    ["waves.col.wave"], ["waves.col.warehouse"], ["waves.col.status"], ["waves.col.priority", "num"],
    ["waves.col.progress", "num"], ["waves.col.assignments", "num"], ["waves.col.released"], ["waves.col.actions"],
  ], rows, {caption: t("waves.list.title")}));
}

async function releaseWave(event) {
  event.preventDefault();
  const warehouse = el.releaseWarehouse.value;
  if (!warehouse) {
    state.waveMessage = {key: "waves.release.noWarehouse", kind: "error"};
    return say(el.waveMessage, state.waveMessage);
  }
  const number = (input) => (input.value === "" ? undefined : Number(input.value));
  const text = (input) => input.value.trim() || undefined;
  const body = {
    warehouse,
    cutoff: el.releaseCutoff.value ? new Date(el.releaseCutoff.value).toISOString() : undefined,
    carrier: text(el.releaseCarrier),
    zone: text(el.releaseZone),
    max_priority: number(el.releaseMaxPriority),
    max_orders: number(el.releaseMaxOrders),
    lines_per_assignment: number(el.releaseLines) ?? 20,
  };
  el.releaseButton.disabled = true;
  el.releaseButton.textContent = t("waves.release.busy");
  try {
    const wave = await core.api("/api/v1/waves", {method: "POST", json: body});
    state.waveMessage = {key: "waves.release.done",
      values: {wave: wave.number, orders: wave.orders, assignments: wave.assignments.length}};
    await loadWaves();
    state.wave = wave;
    rememberPickers(wave.assignments);
    renderWave();
  } catch (err) {
    state.waveMessage = {text: core.describeError(err), kind: "error"};
  } finally {
    el.releaseButton.disabled = false;
    el.releaseButton.textContent = t("waves.release.submit");
    say(el.waveMessage, state.waveMessage);
  }
}

async function reprioritise(number, input) {
  const priority = Number(input.value);
  try {
    await core.api(`/api/v1/waves/${number}`, {method: "PATCH", json: {priority}});
    state.waveMessage = {key: "waves.prioritySet", values: {wave: number, priority}};
    await loadWaves();
    if (state.wave?.number === number) await showWave(number, {focus: false});
    document.getElementById(`wave-priority-${number}`)?.focus();
  } catch (err) {
    state.waveMessage = {text: core.describeError(err), kind: "error"};
  }
  say(el.waveMessage, state.waveMessage);
}

async function showWave(number, {focus = true} = {}) {
  state.wave = await core.api(`/api/v1/waves/${number}`);
  rememberPickers(state.wave.assignments);
  renderWave();
  if (focus) el.waveTitle.focus();
}

function rememberPickers(assignments) {
  const names = new Set(state.pickers);
  for (const assignment of assignments) if (assignment.picker) names.add(assignment.picker);
  state.pickers = [...names].sort();
  el.pickerList.replaceChildren(...state.pickers.map((name) => h("option", {value: name})));
}

async function loadPickers() {
  try {
    const page = await core.api(`/api/v1/assignments?limit=500${core.warehouseQuery("&")}`);
    rememberPickers(page.items);
  } catch (err) {
    console.warn("wavepick console: pickers for suggestions", err);
  }
}

function renderWave() {
  const wave = state.wave;
  el.wavePanel.hidden = !wave;
  if (!wave) return;
  el.waveTitle.textContent = t("waves.detail.title", {wave: wave.number, warehouse: wave.warehouse});
  const rows = wave.assignments.map((assignment) => {
    const inputId = `assign-picker-${assignment.number}`;
    const ready = assignment.status === "ready";
    const input = h("input", {id: inputId, list: "orders-pickers", autocomplete: "off", autocapitalize: "none",
      spellcheck: "false", value: assignment.picker || "", class: "picker-input"});
    const done = assignment.lines.filter((line) => line.status === "picked" || line.status === "short").length;
    return h("tr", {dataset: {assignment: assignment.number, status: assignment.status, picker: assignment.picker || ""}},
      h("th", {scope: "row"}, assignment.number),
      h("td", {}, h("span", {class: `badge ${badgeOf(assignment.status)}`}, statusText(assignment.status)),
        assignment.started_at ? h("div", {class: "muted"}, t("waves.started", {time: core.formatTime(assignment.started_at)})) : null),
      h("td", {class: "num"}, assignment.priority),
      h("td", {class: "assigned-picker"}, assignment.picker || h("span", {class: "muted"}, t("waves.pool"))),
      h("td", {class: "num"}, `${done} / ${assignment.lines.length}`),
      h("td", {}, assignment.staging_location),
      h("td", {class: "actions"}, ready
        ? h("form", {class: "inline-field", onsubmit: (event) => {
          event.preventDefault();
          assign(assignment.number, input.value.trim());
        }},
        hiddenLabel(inputId, t("waves.pickerFor", {assignment: assignment.number})), input,
        h("button", {type: "submit", class: "primary assign"}, t("waves.assign")),
        assignment.picker
          ? h("button", {type: "button", class: "unassign", onclick: () => assign(assignment.number, null)},
            t("waves.unassign"))
          : null)
        : null));
  });
  el.waveBody.replaceChildren(table([
    ["waves.col.assignment"], ["waves.col.status"], ["waves.col.priority", "num"], ["waves.col.picker"],
    ["waves.col.lines", "num"], ["waves.col.staging"], ["waves.col.actions"],
  ], rows, {caption: el.waveTitle.textContent}));
}

async function assign(number, picker) {
  if (picker === "") {
    state.assignMessage = {key: "waves.pickerMissing", kind: "error"};
    return say(el.waveDetailMessage, state.assignMessage);
  }
  try {
    await core.api(`/api/v1/assignments/${number}`, {method: "PATCH", json: {picker}});
    state.assignMessage = picker
      ? {key: "waves.assigned", values: {assignment: number, picker}}
      : {key: "waves.unassigned", values: {assignment: number}};
    await showWave(state.wave.number, {focus: false});
    document.getElementById(`assign-picker-${number}`)?.focus();
  } catch (err) {
    state.assignMessage = {text: core.describeError(err), kind: "error"};
  }
  say(el.waveDetailMessage, state.assignMessage);
}

/* ---------- the screen ---------- */

function renderWarehouseChoices() {
  const current = el.releaseWarehouse.value || core.session.warehouse || core.session.warehouses[0] || "";
  el.releaseWarehouse.replaceChildren(...core.session.warehouses.map((code) => h("option", {value: code}, code)));
  el.releaseWarehouse.value = core.session.warehouse || current;
}

function renderAll() {
  el.statusFilter.replaceChildren(
    h("option", {value: ""}, t("orders.filter.all")),
    ...ORDER_STATUSES.map((status) => h("option", {value: status}, statusText(status))));
  el.statusFilter.value = state.status;
  renderImport();
  renderOrders();
  renderOrder();
  renderWaves();
  renderWave();
  say(el.waveMessage, el.waveMessage.hidden ? null : state.waveMessage);
  say(el.waveDetailMessage, el.waveDetailMessage.hidden ? null : state.assignMessage);
}

function build(root) {
  const input = (id, attributes = {}) => (el[id] = h("input", {id: `orders-${id}`, ...attributes}));
  el.importFile = h("input", {id: "orders-import-file", type: "file", accept: ".csv,text/csv"});
  el.importAllocate = h("input", {id: "orders-import-allocate", type: "checkbox"});
  el.importButton = h("button", {type: "submit", class: "primary", id: "orders-import-submit",
    "data-i18n": "orders.import.submit"}, t("orders.import.submit"));
  el.importResult = h("div", {id: "orders-import-result", class: "result", role: "status", "aria-live": "polite", hidden: true});
  el.statusFilter = h("select", {id: "orders-status-filter"});
  el.ordersTable = h("div", {id: "orders-table"});
  el.ordersPage = h("span", {class: "muted", id: "orders-page"});
  el.newer = h("button", {type: "button", "data-i18n": "orders.newer",
    onclick: () => { state.page = Math.max(0, state.page - 1); loadOrders().catch(fail); }}, t("orders.newer"));
  el.older = h("button", {type: "button", "data-i18n": "orders.older",
    onclick: () => { state.page += 1; loadOrders().catch(fail); }}, t("orders.older"));
  el.orderTitle = h("h3", {id: "order-title", tabindex: "-1"});
  el.orderMessage = h("p", {class: "result", role: "status", "aria-live": "polite", hidden: true, id: "order-message"});
  el.orderBody = h("div", {id: "order-body"});
  el.orderPanel = h("section", {class: "panel", id: "order-panel", "aria-labelledby": "order-title", hidden: true},
    h("div", {class: "panel-head"}, el.orderTitle,
      h("button", {type: "button", "data-i18n": "orders.detail.close",
        onclick: () => { state.order = null; renderOrder(); }}, t("orders.detail.close"))),
    el.orderMessage, el.orderBody);

  el.releaseWarehouse = h("select", {id: "orders-release-warehouse", required: true});
  el.releaseCutoff = input("releaseCutoff", {type: "datetime-local"});
  el.releaseCarrier = input("releaseCarrier", {maxlength: 64});
  el.releaseZone = input("releaseZone", {maxlength: 32});
  el.releaseMaxPriority = input("releaseMaxPriority", {type: "number", min: 1, max: 9, inputmode: "numeric"});
  el.releaseMaxOrders = input("releaseMaxOrders", {type: "number", min: 1, max: 10000, inputmode: "numeric"});
  el.releaseLines = input("releaseLines", {type: "number", min: 1, max: 500, value: 20, inputmode: "numeric"});
  el.releaseButton = h("button", {type: "submit", class: "primary", id: "orders-release-submit",
    "data-i18n": "waves.release.submit"}, t("waves.release.submit"));
  el.waveMessage = h("p", {class: "result", role: "status", "aria-live": "polite", hidden: true, id: "waves-message"});
  el.wavesTable = h("div", {id: "waves-table"});
  el.waveTitle = h("h3", {id: "wave-title", tabindex: "-1"});
  el.waveDetailMessage = h("p", {class: "result", role: "status", "aria-live": "polite", hidden: true, id: "wave-message"});
  el.waveBody = h("div", {id: "wave-body"});
  el.pickerList = h("datalist", {id: "orders-pickers"});
  el.wavePanel = h("section", {class: "panel", id: "wave-panel", "aria-labelledby": "wave-title", hidden: true},
    h("div", {class: "panel-head"}, el.waveTitle,
      h("button", {type: "button", "data-i18n": "waves.detail.close",
        onclick: () => { state.wave = null; state.assignMessage = null; say(el.waveDetailMessage, null); renderWave(); }}, t("waves.detail.close"))),
    el.waveDetailMessage, el.waveBody, el.pickerList);

  root.append(
    h("h2", {id: "screen-orders-title", "data-i18n": "orders.nav"}, t("orders.nav")),
    h("div", {class: "orders-grid"},
      h("section", {class: "panel", "aria-labelledby": "orders-import-title"},
        h("h3", {id: "orders-import-title", "data-i18n": "orders.import.title"}, t("orders.import.title")),
        h("form", {id: "orders-import-form", class: "row", onsubmit: importCsv},
          field("orders.import.file", el.importFile, {wide: true}),
          h("div", {class: "field check"}, el.importAllocate,
            h("label", {for: el.importAllocate.id, "data-i18n": "orders.import.allocate"}, t("orders.import.allocate"))),
          el.importButton),
        el.importResult),
      h("section", {class: "panel", "aria-labelledby": "waves-release-title"},
        h("h3", {id: "waves-release-title", "data-i18n": "waves.release.title"}, t("waves.release.title")),
        h("form", {id: "waves-release-form", class: "row", onsubmit: releaseWave},
          field("waves.release.warehouse", el.releaseWarehouse),
          field("waves.release.cutoff", el.releaseCutoff),
          field("waves.release.carrier", el.releaseCarrier),
          field("waves.release.zone", el.releaseZone),
          field("waves.release.maxPriority", el.releaseMaxPriority),
          field("waves.release.maxOrders", el.releaseMaxOrders),
          field("waves.release.lines", el.releaseLines),
          el.releaseButton))),
    h("section", {class: "panel", "aria-labelledby": "orders-list-title"},
      h("h3", {id: "orders-list-title", "data-i18n": "orders.list.title"}, t("orders.list.title")),
      h("p", {class: "muted", "data-i18n": "orders.list.note"}, t("orders.list.note")),
      h("div", {class: "row"},
        field("orders.filter.status", el.statusFilter),
        h("button", {type: "button", "data-i18n": "orders.refresh", onclick: () => loadOrders().catch(fail)},
          t("orders.refresh"))),
      el.ordersTable,
      h("div", {class: "row pager"}, el.newer, el.ordersPage, el.older)),
    el.orderPanel,
    h("section", {class: "panel", "aria-labelledby": "waves-list-title"},
      h("h3", {id: "waves-list-title", "data-i18n": "waves.list.title"}, t("waves.list.title")),
      el.waveMessage,
      el.wavesTable),
    el.wavePanel,
  );
  el.statusFilter.addEventListener("change", () => {
    state.status = el.statusFilter.value;
    state.page = 0;
    loadOrders().catch(fail);
  });
}

function fail(err) {
  core.notify(core.describeError(err), "error");
}

function visible() {
  return section && !section.hidden;
}

let reloadTimer = null;
function reloadWavesSoon() {
  if (!visible()) return;
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => {
    loadWaves().catch(fail);
    if (state.wave) showWave(state.wave.number, {focus: false}).catch(fail);
  }, 500);
}

export const screen = {
  id: "orders",
  label: "orders.nav",
  strings,
  mount(root) {
    section = root;
    build(root);
    renderWarehouseChoices();
    renderAll();
    core.onLocale(() => renderAll());
    core.onWarehouse(() => { // the console shows the screen again, which reloads it
      renderWarehouseChoices();
      state.wave = null;
      state.waveMessage = state.assignMessage = null;
      renderWave();
    });
    for (const type of ["assignment_completed", "pick_confirmed", "picker_status"]) {
      core.onEvent(type, reloadWavesSoon);
    }
  },
  async show() {
    renderWarehouseChoices();
    await Promise.all([loadOrders(), loadWaves(), loadPickers()]);
  },
};
