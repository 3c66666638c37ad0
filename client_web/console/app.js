/* The supervisor console: sign-in, the screens (one module each, listed in SCREENS), the
 * warehouse and language in view, and the one live events socket (docs/events.md) whose
 * frames every screen may listen to.
 *
 * A screen module exports `screen = {id, label, strings, mount(section), show()}`:
 * `mount` builds it once after sign-in, `show` runs each time it is opened (reload what
 * it shows), and it listens to events and to changes of warehouse and language itself
 * (core.onEvent, core.onWarehouse, core.onLocale).
 *
 * window.wavepickConsole is a read-only view for tests:
 *   {state, screen, user, warehouse, locale, live: {state, events, lastEvent, connects}}
 * state: signed_out, loading, ready. live.state: connecting, open, closed.
 */

import * as core from "./core.js";
import {screen as board} from "./board.js";
import {screen as orders} from "./orders.js";
import {screen as exceptions} from "./exceptions.js";
import {screen as stock} from "./stock.js";
import {screen as kpis} from "./kpis.js";

const SCREENS = [board, orders, exceptions, stock, kpis];
const CONSOLE_ROLES = new Set(["supervisor", "manager", "admin"]);

core.register({
  "en-US": {
    "console.title": "WavePick console", "console.signInTitle": "WavePick console",
    "console.skip": "Skip to content", "console.screens": "Screens",
    "console.username": "Username", "console.password": "Password",
    "console.language": "Language", "console.signIn": "Sign in",
    "console.signingIn": "Signing in…", "console.signOut": "Sign out",
    "console.warehouse": "Warehouse", "console.allWarehouses": "All my warehouses",
    "console.wrongPassword": "Wrong username or password.",
    "console.missingFields": "Enter your username and password.",
    "console.sessionExpired": "Your session expired. Please sign in again.",
    "console.serverUnreachable": "The server cannot be reached.",
    "console.notForPickers": "The console is for supervisors, managers and admins.",
    "console.live.open": "Live", "console.live.connecting": "Connecting…",
    "console.live.closed": "Offline — reconnecting",
  },
  "zh-CN": {
    "console.title": "WavePick 控制台", "console.signInTitle": "WavePick 控制台",
    "console.skip": "跳到内容", "console.screens": "页面",
    "console.username": "用户名", "console.password": "密码",
    "console.language": "语言", "console.signIn": "登录",
    "console.signingIn": "正在登录…", "console.signOut": "退出",
    "console.warehouse": "仓库", "console.allWarehouses": "我的全部仓库",
    "console.wrongPassword": "用户名或密码错误。",
    "console.missingFields": "请输入用户名和密码。",
    "console.sessionExpired": "会话已过期，请重新登录。",
    "console.serverUnreachable": "无法连接服务器。",
    "console.notForPickers": "控制台供主管、经理和管理员使用。",
    "console.live.open": "实时", "console.live.connecting": "正在连接…",
    "console.live.closed": "离线 — 正在重连",
  },
});
for (const screen of SCREENS) core.register(screen.strings);

const el = Object.fromEntries(
  [
    "signin-view", "signin-form", "signin-message", "username", "password", "signin-locale",
    "signin-button", "app-view", "nav", "warehouse-select", "app-locale", "live", "who",
    "signout", "screen",
  ].map((id) => [id.replace(/-(\w)/g, (_, c) => c.toUpperCase()), document.getElementById(id)]),
);

const hook = {
  state: "signed_out", screen: null, user: null, warehouse: null, locale: core.locale,
  live: {state: "closed", events: 0, lastEvent: null, connects: 0}, sounds: 0,
};
window.wavepickConsole = hook;

const sections = new Map(); // screen id -> <section>
let events = null; // {socket, retry, stopped}

/* ---------- language ---------- */

function applyLocale() {
  document.documentElement.lang = core.locale;
  document.title = core.t("console.title");
  hook.locale = core.locale;
  el.signinLocale.value = el.appLocale.value = core.locale;
  core.translate();
  renderNav();
  renderWarehouses();
  renderLive();
}

/* ---------- sign in ---------- */

function showSignIn(message) {
  stopEvents();
  hook.state = "signed_out";
  el.appView.hidden = true;
  el.signinView.hidden = false;
  el.signinMessage.hidden = !message;
  el.signinMessage.textContent = message || "";
  el.username.value = el.username.value || sessionStorage.getItem(core.USER_KEY) || "";
  el.signinButton.disabled = false;
  el.signinButton.textContent = core.t("console.signIn");
  (el.username.value ? el.password : el.username).focus();
}

async function signIn(event) {
  event.preventDefault();
  const username = el.username.value.trim();
  const password = el.password.value;
  if (!username || !password) return showSignIn(core.t("console.missingFields"));
  el.signinButton.disabled = true;
  el.signinButton.textContent = core.t("console.signingIn");
  let response;
  try {
    response = await fetch("/api/v1/auth/token", {
      method: "POST",
      headers: {"Content-Type": "application/x-www-form-urlencoded"},
      body: new URLSearchParams({grant_type: "password", username, password}),
    });
  } catch {
    return showSignIn(core.t("console.serverUnreachable"));
  }
  if (!response.ok) {
    return showSignIn(response.status === 401 || response.status === 400
      ? core.t("console.wrongPassword") : `${core.t("console.serverUnreachable")} (${response.status})`);
  }
  const body = await response.json();
  sessionStorage.setItem(core.TOKEN_KEY, body.access_token);
  sessionStorage.setItem(core.USER_KEY, username);
  el.password.value = "";
  await start();
}

function signOut() {
  sessionStorage.removeItem(core.TOKEN_KEY);
  showSignIn();
}

/* ---------- the app ---------- */

async function start() {
  if (!core.token()) return showSignIn();
  hook.state = "loading";
  let user;
  try {
    user = await core.api("/api/v1/users/me");
  } catch (err) {
    return showSignIn(err.status === 401 ? core.t("console.sessionExpired") : core.describeError(err));
  }
  if (!CONSOLE_ROLES.has(user.role)) {
    sessionStorage.removeItem(core.TOKEN_KEY);
    return showSignIn(core.t("console.notForPickers"));
  }
  core.session.user = hook.user = user;
  core.session.warehouses = user.role === "admin"
    ? (await core.apiAll("/api/v1/warehouses")).map((w) => w.code)
    : user.warehouses;
  el.signinView.hidden = true;
  el.appView.hidden = false;
  el.who.textContent = user.full_name || user.username;
  if (!sections.size) {
    for (const screen of SCREENS) {
      const section = core.h("section", {id: `screen-${screen.id}`, class: "screen", hidden: true,
        "aria-labelledby": `screen-${screen.id}-title`});
      el.screen.append(section);
      sections.set(screen.id, section);
      screen.mount(section);
    }
  }
  renderWarehouses();
  applyLocale();
  startEvents();
  hook.state = "ready";
  route();
}

function renderNav() {
  const current = currentScreen();
  el.nav.replaceChildren(...SCREENS.map((screen) => core.h("li", {},
    core.h("a", {href: `#${screen.id}`, "aria-current": screen.id === current.id ? "page" : null},
      core.t(screen.label)))));
}

function renderWarehouses() {
  const choices = core.session.warehouses;
  const options = [core.h("option", {value: ""}, core.t("console.allWarehouses")),
    ...choices.map((code) => core.h("option", {value: code}, code))];
  el.warehouseSelect.replaceChildren(...options);
  el.warehouseSelect.value = core.session.warehouse || "";
}

function currentScreen() {
  const id = location.hash.replace(/^#/, "").split("?")[0];
  return SCREENS.find((screen) => screen.id === id) || SCREENS[0];
}

function route() {
  if (hook.state !== "ready") return;
  const screen = currentScreen();
  for (const [id, section] of sections) section.hidden = id !== screen.id;
  hook.screen = screen.id;
  renderNav();
  core.notify("");
  Promise.resolve(screen.show()).catch((err) => core.notify(core.describeError(err), "error"));
}

/* ---------- live events ---------- */

function renderLive() {
  el.live.dataset.state = hook.live.state;
  el.live.textContent = core.t(`console.live.${hook.live.state}`);
}

function setLive(state) {
  hook.live.state = state;
  renderLive();
}

async function startEvents() {
  stopEvents();
  const current = {socket: null, retry: 500, stopped: false, timer: null};
  events = current;
  const connect = async () => {
    if (current.stopped) return;
    setLive("connecting");
    let ticket;
    try {
      ({ticket} = await core.api("/api/v1/auth/ticket", {method: "POST"}));
    } catch (err) {
      if (err.status === 401) return;
      return retry();
    }
    const url = `${location.origin.replace(/^http/, "ws")}/ws/events?ticket=${encodeURIComponent(ticket)}`;
    const socket = new WebSocket(url);
    current.socket = socket;
    socket.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.type === "subscribed") {
        current.retry = 500;
        hook.live.connects += 1;
        setLive("open");
      } else if (frame.type !== "error") {
        hook.live.events += 1;
        hook.live.lastEvent = frame;
      }
      core.dispatchEvent(frame);
    };
    socket.onclose = (close) => {
      if (current.stopped) return;
      setLive("closed");
      if (close.code === 4401) return signOut();
      retry();
    };
  };
  const retry = () => {
    if (current.stopped) return;
    current.timer = setTimeout(connect, current.retry);
    current.retry = Math.min(current.retry * 2, 15000);
  };
  connect();
}

function stopEvents() {
  if (!events) return;
  events.stopped = true;
  clearTimeout(events.timer);
  events.socket?.close(1000);
  events = null;
  setLive("closed");
}

/* ---------- wiring ---------- */

core.whenUnauthorized(() => showSignIn(core.t("console.sessionExpired")));
core.onLocale(applyLocale);
core.onWarehouse((code) => {
  hook.warehouse = code;
});
el.signinForm.addEventListener("submit", signIn);
el.signout.addEventListener("click", signOut);
for (const select of [el.signinLocale, el.appLocale]) {
  select.addEventListener("change", () => core.setLocale(select.value));
}
el.warehouseSelect.addEventListener("change", () => {
  core.setWarehouse(el.warehouseSelect.value);
  route();
});
window.addEventListener("hashchange", route);

applyLocale();
start();
