/* KPIs: the floor's numbers over a window (GET /api/v1/kpis), as charts drawn with the
 * bundled Chart.js, each with its table as CSV (GET /api/v1/kpis/export).
 *
 * Every chart's container says what it holds: data-chart="<id>" data-points="<n>", so a
 * test (or a person with devtools) can tell an empty chart from a drawn one.
 */

import {
  api, describeError, formatNumber, formatPercent, formatTime, h, locale, notify, onEvent,
  onLocale, onWarehouse, session, t, timeZone, translate,
} from "./core.js";

const WINDOWS = {day: 24, week: 24 * 7, month: 24 * 30};
const REFRESH_MS = 30000; // at most this often on live picks, while the screen is open
const COLORS = ["#0b57d0", "#b3261e", "#0b6b2f", "#8a4b00", "#6f3fb5", "#00727a", "#a0306b"];

const strings = {
  "en-US": {
    "kpis.nav": "KPIs", "kpis.title": "KPIs",
    "kpis.window": "Window", "kpis.day": "Last 24 hours", "kpis.week": "Last 7 days",
    "kpis.month": "Last 30 days", "kpis.custom": "Custom", "kpis.since": "From",
    "kpis.until": "To", "kpis.refresh": "Refresh", "kpis.export": "Export CSV",
    "kpis.showing": "From {since} to {until} ({zone})", "kpis.empty": "No data in this window.",
    "kpis.pickerRate": "Picks per hour, per picker", "kpis.warehouseRate": "Picks per hour, per warehouse",
    "kpis.hourly": "Lines picked per hour", "kpis.accuracy": "Pick accuracy per picker",
    "kpis.recognition": "Recognition per picker", "kpis.inventory": "Inventory accuracy (recounts)",
    "kpis.cycle": "Order cycle time (hours)", "kpis.slow": "Slow movers",
    "kpis.linesPerHour": "Lines per hour", "kpis.lines": "Lines", "kpis.confirmed": "Picked in full",
    "kpis.short": "Short", "kpis.refused": "Answers refused", "kpis.rightFirstTime": "Right first time",
    "kpis.repromptRate": "Re-prompt rate", "kpis.inventoryAccuracy": "Slots matching the books",
    "kpis.p50": "Median", "kpis.p90": "90th percentile", "kpis.turnover": "Units picked per unit on hand",
    "kpis.sku": "SKU", "kpis.warehouse": "Warehouse", "kpis.onHand": "On hand", "kpis.picked": "Picked",
    "kpis.badWindow": "Choose a start before the end.",
  },
  "zh-CN": {
    "kpis.nav": "指标", "kpis.title": "指标",
    "kpis.window": "时间范围", "kpis.day": "最近 24 小时", "kpis.week": "最近 7 天",
    "kpis.month": "最近 30 天", "kpis.custom": "自定义", "kpis.since": "从",
    "kpis.until": "到", "kpis.refresh": "刷新", "kpis.export": "导出 CSV",
    "kpis.showing": "{since} 至 {until}（{zone}）", "kpis.empty": "此时间范围内没有数据。",
    "kpis.pickerRate": "每位拣货员每小时拣货数", "kpis.warehouseRate": "每个仓库每小时拣货数",
    "kpis.hourly": "每小时拣货行数", "kpis.accuracy": "每位拣货员的拣货准确率",
    "kpis.recognition": "每位拣货员的语音识别", "kpis.inventory": "库存准确率（复盘）",
    "kpis.cycle": "订单周期（小时）", "kpis.slow": "滞销商品",
    "kpis.linesPerHour": "每小时行数", "kpis.lines": "行数", "kpis.confirmed": "全部拣到",
    "kpis.short": "短拣", "kpis.refused": "被拒绝的回答", "kpis.rightFirstTime": "一次识别正确",
    "kpis.repromptRate": "重复提示率", "kpis.inventoryAccuracy": "与账面一致的货位",
    "kpis.p50": "中位数", "kpis.p90": "第 90 百分位", "kpis.turnover": "每单位库存的拣货数",
    "kpis.sku": "商品", "kpis.warehouse": "仓库", "kpis.onHand": "库存", "kpis.picked": "已拣",
    "kpis.badWindow": "开始时间必须早于结束时间。",
  },
};

/* The charts: which KPI table each draws (and exports), and how. */
const CHARTS = [
  {id: "picker-rate", title: "kpis.pickerRate", table: "pickers", draw: pickerRate},
  {id: "warehouse-rate", title: "kpis.warehouseRate", table: "warehouses", draw: warehouseRate},
  {id: "hourly", title: "kpis.hourly", table: "hourly", draw: hourly},
  {id: "accuracy", title: "kpis.accuracy", table: "pickers", draw: accuracy},
  {id: "recognition", title: "kpis.recognition", table: "recognition", draw: recognition},
  {id: "inventory", title: "kpis.inventory", table: "inventory_accuracy", draw: inventory},
  {id: "cycle", title: "kpis.cycle", table: "cycle_times", draw: cycle},
  {id: "slow", title: "kpis.slow", table: "slow_movers", draw: slowMovers},
];

let root = null;
let form = null;
let data = null; // the last GET /api/v1/kpis
let span = null; // {since, until} as Dates
const charts = new Map(); // chart id -> Chart
let lastLoad = 0;
let refreshTimer = null;

export const screen = {
  id: "kpis",
  label: "kpis.nav",
  strings,
  mount(section) {
    root = section;
    build();
    onLocale(render);
    onWarehouse(() => {
      if (!root.hidden) load();
    });
    onEvent("pick_confirmed", refreshSoon);
    onEvent("exception_resolved", refreshSoon);
  },
  show() {
    return load();
  },
};

function build() {
  form = h("form", {class: "panel row", "aria-labelledby": "screen-kpis-title", onsubmit: (e) => {
    e.preventDefault();
    load();
  }},
  h("label", {}, h("span", {"data-i18n": "kpis.window"}),
    h("select", {name: "window", onchange: () => {
      customFields(form.window.value === "custom");
      if (form.window.value !== "custom") load();
    }},
    ...["day", "week", "month", "custom"].map((key) => h("option", {value: key, "data-i18n": `kpis.${key}`})))),
  h("label", {class: "custom", hidden: true}, h("span", {"data-i18n": "kpis.since"}),
    h("input", {type: "datetime-local", name: "since"})),
  h("label", {class: "custom", hidden: true}, h("span", {"data-i18n": "kpis.until"}),
    h("input", {type: "datetime-local", name: "until"})),
  h("button", {type: "submit", class: "primary", "data-i18n": "kpis.refresh"}));
  const grid = h("div", {class: "charts"}, ...CHARTS.map((chart) => h("section",
    {class: "panel", "aria-labelledby": `kpi-${chart.id}-title`},
    h("div", {class: "row kpi-head"},
      h("h3", {id: `kpi-${chart.id}-title`, "data-i18n": chart.title}),
      h("button", {type: "button", class: "export", "data-i18n": "kpis.export",
        "aria-describedby": `kpi-${chart.id}-title`, onclick: () => exportCsv(chart.table)})),
    h("div", {class: "chart", "data-chart": chart.id, "data-points": "0"},
      h("canvas", {role: "img", "aria-labelledby": `kpi-${chart.id}-title`})),
    h("p", {class: "muted empty", "data-i18n": "kpis.empty", hidden: true}))));
  root.append(
    h("h2", {id: "screen-kpis-title", "data-i18n": "kpis.title"}),
    form,
    h("p", {class: "muted showing"}),
    grid,
  );
  translate(root);
}

function customFields(on) {
  for (const label of form.querySelectorAll(".custom")) label.hidden = !on;
}

/* The window asked for: a preset ending now, or the two times typed (in the viewer's
 * time zone, as datetime-local inputs are). */
function chosenWindow() {
  const key = form.window.value;
  if (key !== "custom") {
    const until = new Date();
    return {since: new Date(until.getTime() - WINDOWS[key] * 3600e3), until};
  }
  const since = new Date(form.since.value);
  const until = new Date(form.until.value);
  if (Number.isNaN(since.getTime()) || Number.isNaN(until.getTime()) || since >= until) return null;
  return {since, until};
}

function query(extra = {}) {
  const params = new URLSearchParams({
    since: span.since.toISOString(), until: span.until.toISOString(), ...extra,
  });
  if (session.warehouse) params.set("warehouse", session.warehouse);
  return params.toString();
}

async function load() {
  const chosen = chosenWindow();
  if (!chosen) {
    notify(t("kpis.badWindow"), "error");
    return;
  }
  span = chosen;
  lastLoad = Date.now();
  try {
    data = await api(`/api/v1/kpis?${query()}`);
  } catch (err) {
    notify(describeError(err), "error");
    return;
  }
  render();
}

function refreshSoon() {
  if (!root || root.hidden || refreshTimer) return;
  const wait = Math.max(0, lastLoad + REFRESH_MS - Date.now());
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    if (!root.hidden) load();
  }, wait);
}

async function exportCsv(table) {
  if (!span) return;
  try {
    const response = await api(`/api/v1/kpis/export?${query({table})}`, {raw: true});
    const blob = await response.blob();
    const link = h("a", {href: URL.createObjectURL(blob), download: `kpis-${table}.csv`});
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (err) {
    notify(describeError(err), "error");
  }
}

/* ---------- drawing ---------- */

function render() {
  if (!root) return;
  translate(root);
  if (!data || !span) return;
  root.querySelector(".showing").textContent = t("kpis.showing", {
    since: formatTime(span.since.toISOString(), {dateStyle: "medium", timeStyle: "short"}),
    until: formatTime(span.until.toISOString(), {dateStyle: "medium", timeStyle: "short"}),
    zone: timeZone,
  });
  for (const chart of CHARTS) {
    const box = root.querySelector(`[data-chart="${chart.id}"]`);
    const config = chart.draw(data);
    const points = config.data.datasets.reduce((n, set) => n + set.data.length, 0);
    box.dataset.points = String(points);
    box.hidden = points === 0;
    box.parentElement.querySelector(".empty").hidden = points !== 0;
    charts.get(chart.id)?.destroy();
    charts.delete(chart.id);
    if (points && window.Chart) {
      config.options = {
        responsive: true, maintainAspectRatio: false, animation: false, locale,
        plugins: {legend: {display: config.data.datasets.length > 1}}, ...config.options,
      };
      charts.set(chart.id, new window.Chart(box.querySelector("canvas"), config));
    }
  }
}

function label(row) {
  return session.warehouse ? row.picker : `${row.picker} · ${row.warehouse}`;
}

function bars(labels, datasets, options = {}) {
  return {
    type: "bar",
    data: {labels, datasets: datasets.map((set, i) => ({backgroundColor: COLORS[i % COLORS.length], ...set}))},
    options,
  };
}

const percentAxis = {y: {min: 0, max: 1, ticks: {callback: (v) => formatPercent(v)}}};

function pickerRate({pickers}) {
  return bars(pickers.map(label), [{label: t("kpis.linesPerHour"), data: pickers.map((p) => p.lines_per_hour)}]);
}

function warehouseRate({warehouses}) {
  return bars(warehouses.map((w) => w.warehouse),
    [{label: t("kpis.linesPerHour"), data: warehouses.map((w) => w.lines_per_hour)}]);
}

function hourly({hourly: rows}) {
  const hours = [...new Set(rows.map((r) => r.hour))].sort();
  const warehouses = [...new Set(rows.map((r) => r.warehouse))].sort();
  const count = new Map(rows.map((r) => [`${r.hour}|${r.warehouse}`, r.lines]));
  return {
    type: "line",
    data: {
      labels: hours.map((hour) => formatTime(hour, {month: "short", day: "numeric", hour: "numeric"})),
      datasets: warehouses.map((code, i) => ({
        label: code, borderColor: COLORS[i % COLORS.length], backgroundColor: COLORS[i % COLORS.length],
        data: hours.map((hour) => count.get(`${hour}|${code}`) || 0),
      })),
    },
    options: {plugins: {legend: {display: true}}, scales: {y: {beginAtZero: true}},
      elements: {point: {radius: 4}}},
  };
}

function accuracy({pickers, recognition: heard}) {
  const refused = new Map(heard.map((r) => [`${r.warehouse}|${r.picker}`, r.refused]));
  return bars(pickers.map(label), [
    {label: t("kpis.confirmed"), data: pickers.map((p) => p.confirmed)},
    {label: t("kpis.short"), data: pickers.map((p) => p.short)},
    {label: t("kpis.refused"), data: pickers.map((p) => refused.get(`${p.warehouse}|${p.picker}`) || 0)},
  ], {scales: {x: {stacked: true}, y: {stacked: true}}, plugins: {legend: {display: true}}});
}

function recognition({recognition: rows}) {
  return bars(rows.map(label), [
    {label: t("kpis.rightFirstTime"), data: rows.map((r) => r.right_first_time_rate)},
    {label: t("kpis.repromptRate"), data: rows.map((r) => r.reprompt_rate)},
  ], {scales: percentAxis, plugins: {legend: {display: true}}});
}

function inventory({inventory_accuracy: rows}) {
  return bars(rows.map((r) => `${r.warehouse} (${formatNumber(r.recounts)})`),
    [{label: t("kpis.inventoryAccuracy"), data: rows.map((r) => r.accuracy)}], {scales: percentAxis});
}

function cycle({cycle_times: rows}) {
  return bars(rows.map((r) => r.warehouse), [
    {label: t("kpis.p50"), data: rows.map((r) => r.p50_hours)},
    {label: t("kpis.p90"), data: rows.map((r) => r.p90_hours)},
  ], {plugins: {legend: {display: true}}});
}

function slowMovers({slow_movers: rows}) {
  return bars(rows.map((r) => (session.warehouse ? r.sku : `${r.sku} · ${r.warehouse}`)),
    [{label: t("kpis.turnover"), data: rows.map((r) => r.turnover)}], {indexAxis: "y"});
}
