/* Stock and ledger: where stock is (by SKU, location, lot or serial), the movements that
 * put it there (who, when in the viewer's time zone, why), the full trace of a lot or a
 * serialised unit, and printable location labels (code, check digits, Code 128 barcode
 * drawn by the vendored JsBarcode as SVG).
 *
 * API: GET /api/v1/stock, /api/v1/serials, /api/v1/movements (sku, location, lot,
 * serial), /api/v1/warehouses/{code}/locations. Everything follows the warehouse in view;
 * labels are printed for one warehouse.
 */

import * as core from "./core.js";

const {h, t} = core;

const MOVEMENTS_PAGE = 100;

const strings = {
  "en-US": {
    "stock.nav": "Stock",
    "stock.search.title": "Find stock",
    "stock.sku": "SKU",
    "stock.location": "Location",
    "stock.lot": "Lot",
    "stock.serial": "Serial number",
    "stock.includeEmpty": "Include empty slots",
    "stock.search": "Search",
    "stock.clear": "Clear",
    "stock.searching": "Searching…",
    "stock.found": "{count} stock rows",
    "stock.foundSerials": "{count} serialised units",
    "stock.none": "Nothing found.",
    "stock.inView": "In view: {warehouse}",
    "stock.col.warehouse": "Warehouse",
    "stock.col.location": "Location",
    "stock.col.sku": "SKU",
    "stock.col.lot": "Lot",
    "stock.col.expiry": "Expiry",
    "stock.col.quantity": "On hand",
    "stock.col.reserved": "Reserved",
    "stock.col.available": "Available",
    "stock.col.serial": "Serial",
    "stock.col.actions": "Actions",
    "stock.history": "History",
    "stock.historyOf": "Movements of {sku} at {location}",
    "stock.traceLot": "Trace lot",
    "stock.traceLotOf": "Trace lot {lot} of {sku}",
    "stock.traceSerial": "Trace",
    "stock.traceSerialOf": "Trace serial {serial}",
    "ledger.title": "Movement history",
    "ledger.filter": "Show movements",
    "ledger.all": "Latest movements",
    "ledger.filtered": "Movements: {filters}",
    "ledger.traceLot": "Full trace of lot {lot} of {sku}",
    "ledger.traceSerial": "Full trace of serial {serial}",
    "ledger.count": "{shown} of {total}, newest first",
    "ledger.more": "Older movements",
    "ledger.none": "No movements.",
    "ledger.col.when": "When",
    "ledger.col.who": "Who",
    "ledger.col.why": "Why",
    "ledger.col.what": "What",
    "ledger.col.from": "From",
    "ledger.col.to": "To",
    "ledger.col.quantity": "Quantity",
    "ledger.reference": "ref. {reference}",
    "ledger.serials": "serials {serials}",
    "ledger.kind.receipt": "receipt",
    "ledger.kind.move": "move",
    "ledger.kind.adjustment": "adjustment",
    "ledger.kind.transfer": "transfer",
    "ledger.kind.pick": "pick",
    "labels.title": "Location labels",
    "labels.warehouse": "Warehouse",
    "labels.prefix": "Aisle or code prefix",
    "labels.show": "Show labels",
    "labels.print": "Print",
    "labels.loading": "Loading locations…",
    "labels.count": "{count} labels for {warehouse}",
    "labels.none": "No locations match.",
    "labels.checkDigits": "Check digits",
    "labels.aisleSlot": "Aisle {aisle} · Slot {slot}",
    "labels.level": "Level {level}",
    "labels.barcode": "Barcode {code}",
    "labels.pick": "Choose a warehouse.",
  },
  "zh-CN": {
    "stock.nav": "库存",
    "stock.search.title": "查找库存",
    "stock.sku": "SKU",
    "stock.location": "库位",
    "stock.lot": "批次",
    "stock.serial": "序列号",
    "stock.includeEmpty": "包括空库位",
    "stock.search": "搜索",
    "stock.clear": "清除",
    "stock.searching": "正在搜索…",
    "stock.found": "{count} 条库存",
    "stock.foundSerials": "{count} 个序列号商品",
    "stock.none": "未找到。",
    "stock.inView": "当前：{warehouse}",
    "stock.col.warehouse": "仓库",
    "stock.col.location": "库位",
    "stock.col.sku": "SKU",
    "stock.col.lot": "批次",
    "stock.col.expiry": "有效期",
    "stock.col.quantity": "在库",
    "stock.col.reserved": "已预留",
    "stock.col.available": "可用",
    "stock.col.serial": "序列号",
    "stock.col.actions": "操作",
    "stock.history": "流水",
    "stock.historyOf": "{sku} 在 {location} 的流水",
    "stock.traceLot": "追溯批次",
    "stock.traceLotOf": "追溯 {sku} 的批次 {lot}",
    "stock.traceSerial": "追溯",
    "stock.traceSerialOf": "追溯序列号 {serial}",
    "ledger.title": "库存流水",
    "ledger.filter": "显示流水",
    "ledger.all": "最新流水",
    "ledger.filtered": "流水：{filters}",
    "ledger.traceLot": "{sku} 批次 {lot} 的完整追溯",
    "ledger.traceSerial": "序列号 {serial} 的完整追溯",
    "ledger.count": "共 {total} 条，显示 {shown} 条，最新在前",
    "ledger.more": "更早的流水",
    "ledger.none": "没有流水。",
    "ledger.col.when": "时间",
    "ledger.col.who": "操作人",
    "ledger.col.why": "原因",
    "ledger.col.what": "商品",
    "ledger.col.from": "从",
    "ledger.col.to": "到",
    "ledger.col.quantity": "数量",
    "ledger.reference": "单号 {reference}",
    "ledger.serials": "序列号 {serials}",
    "ledger.kind.receipt": "收货",
    "ledger.kind.move": "移库",
    "ledger.kind.adjustment": "调整",
    "ledger.kind.transfer": "调拨",
    "ledger.kind.pick": "拣货",
    "labels.title": "库位标签",
    "labels.warehouse": "仓库",
    "labels.prefix": "巷道或库位前缀",
    "labels.show": "显示标签",
    "labels.print": "打印",
    "labels.loading": "正在加载库位…",
    "labels.count": "{warehouse} 的 {count} 张标签",
    "labels.none": "没有匹配的库位。",
    "labels.checkDigits": "校验码",
    "labels.aisleSlot": "巷道 {aisle} · 货位 {slot}",
    "labels.level": "层 {level}",
    "labels.barcode": "条码 {code}",
    "labels.pick": "请选择仓库。",
  },
};

const state = {
  stock: null, // {kind: "stock"|"serials", items, total}
  ledger: null, // {filters, trace, items, total}
  labels: null, // {warehouse, locations}
};
const el = {};
let section = null;

/* ---------- builders ---------- */

function field(key, control) {
  return h("div", {class: "field"}, h("label", {for: control.id, "data-i18n": key}, t(key)), control);
}

function table(headKeys, rows, caption) {
  return h("div", {class: "table-wrap"},
    h("table", {},
      h("caption", {class: "visually-hidden"}, caption),
      h("thead", {}, h("tr", {}, headKeys.map(([key, cls]) => h("th", {scope: "col", class: cls || null}, t(key))))),
      h("tbody", {}, rows)));
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) search.set(name, value);
  if (core.session.warehouse && !search.has("warehouse")) search.set("warehouse", core.session.warehouse);
  const text = search.toString();
  return text ? `?${text}` : "";
}

function fail(err) {
  core.notify(core.describeError(err), "error");
}

/* ---------- stock ---------- */

let stockAsked = 0; // only the answer to the latest search is shown

async function searchStock(event) {
  event?.preventDefault();
  const sku = el.sku.value.trim();
  const location = el.location.value.trim();
  const lot = el.lot.value.trim();
  const serial = el.serial.value.trim();
  const asked = ++stockAsked;
  el.searchButton.disabled = true;
  el.searchButton.textContent = t("stock.searching");
  try {
    if (serial) {
      const page = await core.api(`/api/v1/serials${query({sku, location, serial, limit: 500})}`);
      if (asked !== stockAsked) return;
      state.stock = {kind: "serials", items: page.items, total: page.total};
      await showLedger({serial}, {trace: "serial"});
    } else {
      const page = await core.api(`/api/v1/stock${query({sku, location, lot, limit: 500,
        include_empty: el.includeEmpty.checked ? "true" : ""})}`);
      if (asked !== stockAsked) return;
      state.stock = {kind: "stock", items: page.items, total: page.total};
      if (sku || location || lot) {
        await showLedger({sku, location, lot}, {trace: lot && sku ? "lot" : null});
      }
    }
  } catch (err) {
    fail(err);
  } finally {
    el.searchButton.disabled = false;
    el.searchButton.textContent = t("stock.search");
    renderStock();
  }
}

function renderStock() {
  const result = state.stock;
  if (!result) {
    el.stockResult.replaceChildren();
    return;
  }
  const countKey = result.kind === "serials" ? "stock.foundSerials" : "stock.found";
  const count = h("p", {class: "muted", id: "stock-count"}, t(countKey, {count: core.formatNumber(result.total)}));
  if (!result.items.length) {
    el.stockResult.replaceChildren(count, h("p", {}, t("stock.none")));
    return;
  }
  if (result.kind === "serials") {
    const rows = result.items.map((unit) => h("tr", {dataset: {serial: unit.serial}},
      h("th", {scope: "row"}, unit.serial), h("td", {}, unit.sku), h("td", {}, unit.lot || "—"),
      h("td", {}, unit.warehouse), h("td", {}, unit.location),
      h("td", {class: "actions"}, h("button", {type: "button", class: "trace-serial",
        "aria-label": t("stock.traceSerialOf", {serial: unit.serial}),
        onclick: () => showLedger({serial: unit.serial}, {trace: "serial", focus: true}).catch(fail)},
      t("stock.traceSerial")))));
    el.stockResult.replaceChildren(count, table([["stock.col.serial"], ["stock.col.sku"], ["stock.col.lot"],
      ["stock.col.warehouse"], ["stock.col.location"], ["stock.col.actions"]], rows, t("stock.search.title")));
    return;
  }
  const rows = result.items.map((row) => h("tr", {dataset: {sku: row.sku, location: row.location, lot: row.lot || ""}},
    h("td", {}, row.warehouse), h("th", {scope: "row"}, row.location), h("td", {}, row.sku),
    h("td", {}, row.lot || "—"),
    h("td", {}, row.expiry ? core.formatTime(`${row.expiry}T00:00:00Z`, {dateStyle: "medium", timeZone: "UTC"}) : "—"),
    h("td", {class: "num"}, core.formatNumber(row.quantity)),
    h("td", {class: "num"}, core.formatNumber(row.reserved)),
    h("td", {class: "num"}, core.formatNumber(row.available)),
    h("td", {class: "actions"},
      h("button", {type: "button", class: "history", "aria-label": t("stock.historyOf", {sku: row.sku, location: row.location}),
        onclick: () => showLedger({sku: row.sku, location: row.location, warehouse: row.warehouse}, {focus: true}).catch(fail)},
      t("stock.history")),
      row.lot
        ? h("button", {type: "button", class: "trace-lot", "aria-label": t("stock.traceLotOf", {sku: row.sku, lot: row.lot}),
          onclick: () => showLedger({sku: row.sku, lot: row.lot}, {trace: "lot", focus: true}).catch(fail)},
        t("stock.traceLot"))
        : null)));
  el.stockResult.replaceChildren(count, table([
    ["stock.col.warehouse"], ["stock.col.location"], ["stock.col.sku"], ["stock.col.lot"], ["stock.col.expiry"],
    ["stock.col.quantity", "num"], ["stock.col.reserved", "num"], ["stock.col.available", "num"], ["stock.col.actions"],
  ], rows, t("stock.search.title")));
}

function clearSearch() {
  for (const input of [el.sku, el.location, el.lot, el.serial]) input.value = "";
  el.includeEmpty.checked = false;
  stockAsked += 1;
  state.stock = null;
  renderStock();
  showLedger({}).catch(fail);
  el.sku.focus();
}

/* ---------- the ledger ---------- */

/* Movements matching `filters` ({sku, location, lot, serial, warehouse}); a trace ("lot",
 * "serial") is shown as the full history of that lot or unit. */
let ledgerAsked = 0; // only the answer to the latest question is shown

async function showLedger(filters, {trace = null, focus = false} = {}) {
  const clean = Object.fromEntries(Object.entries(filters).filter(([, value]) => value));
  const asked = ++ledgerAsked;
  const page = await core.api(`/api/v1/movements${query({...clean, limit: MOVEMENTS_PAGE})}`);
  if (asked !== ledgerAsked) return;
  state.ledger = {filters: clean, trace, items: page.items, total: page.total};
  renderLedger();
  if (focus) el.ledgerTitle.focus();
}

async function moreLedger() {
  const ledger = state.ledger;
  const asked = ledgerAsked;
  const page = await core.api(`/api/v1/movements${query({...ledger.filters, limit: MOVEMENTS_PAGE,
    offset: ledger.items.length})}`);
  if (asked !== ledgerAsked) return;
  ledger.items.push(...page.items);
  ledger.total = page.total;
  renderLedger();
}

function ledgerTitle(ledger) {
  const f = ledger.filters;
  if (ledger.trace === "serial") return t("ledger.traceSerial", {serial: f.serial});
  if (ledger.trace === "lot") return t("ledger.traceLot", {lot: f.lot, sku: f.sku});
  const parts = [["stock.sku", f.sku], ["stock.location", f.location], ["stock.lot", f.lot],
    ["stock.serial", f.serial], ["stock.col.warehouse", f.warehouse]]
    .filter(([, value]) => value).map(([key, value]) => `${t(key)} ${value}`);
  return parts.length ? t("ledger.filtered", {filters: parts.join(", ")}) : t("ledger.all");
}

function place(warehouse, location) {
  if (!location) return "—";
  return warehouse ? `${warehouse} ${location}` : location;
}

function kindText(kind) {
  const key = `ledger.kind.${kind}`;
  return t(key) === key ? kind : t(key);
}

function renderLedger() {
  const ledger = state.ledger;
  if (!ledger) return;
  el.ledgerTitle.textContent = ledgerTitle(ledger);
  el.ledger.dataset.trace = ledger.trace || "";
  if (!ledger.items.length) {
    el.ledgerBody.replaceChildren(h("p", {class: "muted"}, t("ledger.none")));
    el.ledgerMore.hidden = true;
    return;
  }
  const rows = ledger.items.map((m) => {
    const fromWarehouse = m.from_location ? m.warehouse : null;
    const why = [m.reason && m.reason !== m.kind ? m.reason : null,
      m.reference ? t("ledger.reference", {reference: m.reference}) : null].filter(Boolean).join(" · ");
    return h("tr", {class: "movement", dataset: {id: m.id, kind: m.kind}},
      h("td", {class: "when"}, h("time", {datetime: m.created_at}, core.formatTime(m.created_at))),
      h("td", {class: "who"}, m.actor),
      h("td", {class: "why"}, h("span", {class: "badge"}, kindText(m.kind)), why ? ` ${why}` : ""),
      h("td", {}, m.sku, m.lot ? ` · ${t("stock.lot")} ${m.lot}` : "",
        m.serials.length ? h("div", {class: "muted"}, t("ledger.serials", {serials: m.serials.join(", ")})) : null),
      h("td", {}, place(fromWarehouse, m.from_location)),
      h("td", {}, place(m.to_warehouse, m.to_location)),
      h("td", {class: "num"}, core.formatNumber(m.quantity)));
  });
  el.ledgerBody.replaceChildren(
    h("p", {class: "muted", id: "ledger-count"}, t("ledger.count",
      {shown: core.formatNumber(ledger.items.length), total: core.formatNumber(ledger.total)})),
    table([["ledger.col.when"], ["ledger.col.who"], ["ledger.col.why"], ["ledger.col.what"], ["ledger.col.from"],
      ["ledger.col.to"], ["ledger.col.quantity", "num"]], rows, ledgerTitle(ledger)));
  el.ledgerMore.hidden = ledger.items.length >= ledger.total;
}

/* ---------- labels ---------- */

async function showLabels(event) {
  event?.preventDefault();
  const warehouse = el.labelWarehouse.value;
  if (!warehouse) {
    el.labelStatus.textContent = t("labels.pick");
    return;
  }
  el.labelStatus.textContent = t("labels.loading");
  const prefix = el.labelPrefix.value.trim().toUpperCase();
  try {
    const all = await core.apiAll(`/api/v1/warehouses/${encodeURIComponent(warehouse)}/locations`);
    const locations = all.filter((loc) => !prefix || loc.code.toUpperCase().startsWith(prefix)
      || (loc.aisle && loc.aisle.toUpperCase() === prefix));
    state.labels = {warehouse, locations};
  } catch (err) {
    state.labels = null;
    el.labelStatus.textContent = "";
    return fail(err);
  }
  renderLabels();
}

function renderLabels() {
  const labels = state.labels;
  if (!labels) return;
  el.labelStatus.textContent = labels.locations.length
    ? t("labels.count", {count: core.formatNumber(labels.locations.length), warehouse: labels.warehouse})
    : t("labels.none");
  el.printButton.disabled = !labels.locations.length;
  el.labels.replaceChildren(...labels.locations.map((loc) => {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "barcode");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", t("labels.barcode", {code: loc.code}));
    drawBarcode(svg, loc.code);
    const where = [loc.aisle || loc.slot ? t("labels.aisleSlot", {aisle: loc.aisle || "–", slot: loc.slot || "–"}) : null,
      loc.level ? t("labels.level", {level: loc.level}) : null].filter(Boolean).join(" · ");
    return h("article", {class: "label", dataset: {location: loc.code, checkDigits: loc.check_digits}},
      h("div", {class: "label-code"}, loc.code),
      h("div", {class: "label-digits"},
        h("span", {class: "visually-hidden"}, `${t("labels.checkDigits")} `),
        h("span", {class: "check-digits"}, loc.check_digits)),
      svg,
      h("div", {class: "label-meta"}, [labels.warehouse, loc.zone, where].filter(Boolean).join(" · ")));
  }));
}

function drawBarcode(svg, code) {
  if (typeof window.JsBarcode !== "function") {
    console.warn("wavepick console: JsBarcode is not loaded; labels have no barcode");
    return;
  }
  window.JsBarcode(svg, code, {format: "CODE128", displayValue: false, height: 56, width: 2, margin: 8});
}

function renderLabelChoices() {
  const current = el.labelWarehouse.value;
  el.labelWarehouse.replaceChildren(...core.session.warehouses.map((code) => h("option", {value: code}, code)));
  el.labelWarehouse.value = core.session.warehouse || current || core.session.warehouses[0] || "";
}

/* ---------- the screen ---------- */

function build(root) {
  const text = (id) => (el[id] = h("input", {id: `stock-${id}`, autocomplete: "off", autocapitalize: "characters",
    spellcheck: "false", maxlength: id === "serial" ? 128 : 64}));
  text("sku");
  text("location");
  text("lot");
  text("serial");
  el.includeEmpty = h("input", {id: "stock-include-empty", type: "checkbox"});
  el.searchButton = h("button", {type: "submit", class: "primary", id: "stock-search", "data-i18n": "stock.search"},
    t("stock.search"));
  el.stockResult = h("div", {id: "stock-result", "aria-live": "polite"});
  el.ledgerTitle = h("h3", {id: "ledger-title", tabindex: "-1"}, t("ledger.title"));
  el.ledgerBody = h("div", {id: "ledger-body"});
  el.ledgerMore = h("button", {type: "button", hidden: true, "data-i18n": "ledger.more",
    onclick: () => moreLedger().catch(fail)}, t("ledger.more"));
  el.ledger = h("section", {class: "panel", id: "ledger", "aria-labelledby": "ledger-title"},
    h("p", {class: "eyebrow", "data-i18n": "ledger.title"}, t("ledger.title")),
    el.ledgerTitle, el.ledgerBody, el.ledgerMore);
  el.labelWarehouse = h("select", {id: "labels-warehouse"});
  el.labelPrefix = h("input", {id: "labels-prefix", autocomplete: "off", maxlength: 64, autocapitalize: "characters"});
  el.printButton = h("button", {type: "button", id: "labels-print", disabled: true, "data-i18n": "labels.print",
    onclick: () => window.print()}, t("labels.print"));
  el.labelStatus = h("p", {class: "muted", id: "labels-status", role: "status", "aria-live": "polite"});
  el.labels = h("div", {class: "labels", id: "labels"});

  root.append(
    h("h2", {id: "screen-stock-title", "data-i18n": "stock.nav"}, t("stock.nav")),
    h("section", {class: "panel", "aria-labelledby": "stock-search-title"},
      h("h3", {id: "stock-search-title", "data-i18n": "stock.search.title"}, t("stock.search.title")),
      h("form", {class: "row", id: "stock-form", onsubmit: searchStock},
        field("stock.sku", el.sku), field("stock.location", el.location), field("stock.lot", el.lot),
        field("stock.serial", el.serial),
        h("div", {class: "field check"}, el.includeEmpty,
          h("label", {for: el.includeEmpty.id, "data-i18n": "stock.includeEmpty"}, t("stock.includeEmpty"))),
        el.searchButton,
        h("button", {type: "button", "data-i18n": "stock.clear", onclick: clearSearch}, t("stock.clear"))),
      el.stockResult),
    el.ledger,
    h("section", {class: "panel", "aria-labelledby": "labels-title"},
      h("h3", {id: "labels-title", "data-i18n": "labels.title"}, t("labels.title")),
      h("form", {class: "row", id: "labels-form", onsubmit: showLabels},
        field("labels.warehouse", el.labelWarehouse), field("labels.prefix", el.labelPrefix),
        h("button", {type: "submit", class: "primary", id: "labels-show", "data-i18n": "labels.show"}, t("labels.show")),
        el.printButton),
      el.labelStatus,
      el.labels),
  );
}

function renderAll() {
  renderStock();
  renderLedger();
  renderLabels();
}

export const screen = {
  id: "stock",
  label: "stock.nav",
  strings,
  mount(root) {
    section = root;
    build(root);
    renderLabelChoices();
    core.onLocale(renderAll);
    core.onWarehouse(() => { // the console shows the screen again, which reloads it
      renderLabelChoices();
      state.stock = null;
      renderStock();
    });
    core.onEvent("pick_confirmed", () => {
      if (!section.hidden && state.ledger && !state.ledger.filters.serial) showLedger(state.ledger.filters,
        {trace: state.ledger.trace}).catch(fail);
    });
  },
  async show() {
    renderLabelChoices();
    if (state.stock) await searchStock();
    else await showLedger(state.ledger?.filters || {}, {trace: state.ledger?.trace});
  },
};
