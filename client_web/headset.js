/* WavePick headset page: sign in, then speak the headset protocol v1 (DESIGN.md) over
 * /ws/headset — prompts shown big and played gaplessly, the microphone streamed as PCM
 * s16le (push-to-talk or hands-free), and a keypad / command buttons as a fallback.
 * Where the network allows, the microphone and the prompts move to WebRTC audio (Opus,
 * the browser's echo cancellation and jitter buffer): offered over the socket after the
 * welcome (rtc_offer), used once the server says it is up (rtc_state), and left for the
 * socket's PCM frames if it fails. `?audio=socket` keeps to the socket.
 *
 * window.wavepick is a small read-only view of the page for tests:
 *   {state, connected, lastPrompt, lastHeard, lastError, session, operator, sampleRate,
 *    mode, talking, micBytesSent, micChunksDropped, bargeIns,
 *    promptAudio: {frames, bytes, seconds}, audioPath,
 *    rtc: {state, offers, bytesSent, bytesReceived, audioEnergy}}
 */
"use strict";

(function () {
  const {MicCapture, PromptPlayer} = window.WavePickAudio;

  const PROTOCOL = 1;
  const REQUESTED_RATE = 16000;
  const CHUNK_MS = 40;
  const TOKEN_KEY = "wavepick.token";
  const LOCALE_KEY = "wavepick.locale";
  const MODE_KEY = "wavepick.mode";
  const DEVICE_KEY = "wavepick.device";
  const USER_KEY = "wavepick.username";
  const MAX_BUFFERED = 256 * 1024; // drop mic audio rather than queue it without bound
  const BARGE_IN_DB = -32; // hands-free: this loud for BARGE_IN_CHUNKS in a row stops playback
  const BARGE_IN_CHUNKS = 3;
  const PTT_PREROLL_CHUNKS = 4; // audio from just before the press, so the first word is whole
  const PTT_HANGOVER_CHUNKS = 5; // keep streaming briefly after release
  // then 1.2 s of silence, so the server's endpointer closes the utterance: longer than it
  // waits for the rest of an answer not yet whole (1000 ms)
  const PTT_SILENCE_CHUNKS = 30;
  const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
  // WebRTC audio: "auto" where the browser has it, "socket" (?audio=socket) never
  const AUDIO_PREFERENCE =
    new URLSearchParams(location.search).get("audio") === "socket" ? "socket" : "auto";
  const RTC_GATHER_MS = 3000; // send the offer with the candidates found by then
  const RTC_ERRORS = new Set(["rtc_unavailable", "invalid_offer"]);
  const PTT_PREROLL_MS = PTT_PREROLL_CHUNKS * CHUNK_MS;
  const PTT_HANGOVER_MS = PTT_HANGOVER_CHUNKS * CHUNK_MS;

  /* Command buttons send the canonical token names ("say_again"), the same in every locale
   * and accepted by the server whatever the session's language; labels follow the UI
   * language, and a `heard` echoing a token name is shown with its label. */
  const COMMANDS = [
    ["ready", "ready"], ["yes", "yes"], ["no", "no"], ["sayAgain", "say_again"],
    ["skipSlot", "skip_slot"], ["short", "short"], ["howMuchMore", "how_much_more"],
    ["location", "location"], ["description", "description"], ["help", "help"],
    ["callSupervisor", "call_supervisor"], ["damaged", "damaged"], ["cancel", "cancel"],
    ["signOff", "sign_off"],
  ];
  const COMMAND_LABELS = new Map(COMMANDS.map(([label, token]) => [token, label]));

  const SIGN_OFF_WORDS = new Set(["sign_off", "sign off", "退出"]);

  const MESSAGES = {
    "en-US": {
      title: "WavePick headset", signInTitle: "Sign in", username: "Username",
      password: "Password", language: "Language", signIn: "Sign in",
      signingIn: "Signing in…", wrongPassword: "Wrong username or password.",
      missingFields: "Enter your username and password.",
      sessionExpired: "Your session expired. Please sign in again.",
      notAPicker: "This account may not pick.",
      replaced: "You signed in on another headset. Sign in again to pick here.",
      signedOff: "You are signed off.", serverUnreachable: "Cannot reach the server.",
      connecting: "Connecting…", online: "Online", reconnecting: "Reconnecting in {s} s…",
      inCall: "In a call with your supervisor",
      showShelf: "Show the shelf", stopShelf: "Stop the camera", shelfCamera: "Shelf camera",
      waiting: "Waiting for the first prompt…", prompt: "Prompt",
      voice: "Voice", keypad: "Keypad", commands: "Commands", mode: "Mode",
      pushToTalk: "Push to talk", handsFree: "Hands-free",
      holdToTalk: "Hold to talk", talking: "Listening…", micOn: "Microphone on — tap to pause",
      micPaused: "Microphone paused — tap to listen", micStarting: "Starting microphone…",
      micInsecure: "The microphone needs HTTPS (or localhost). Use the keypad.",
      micFailed: "Microphone unavailable ({reason}). Use the keypad.",
      send: "Send", delete: "Delete", heard: "Heard", accepted: "accepted",
      rejected: "not accepted", signOut: "Sign out", enableSound: "Tap to enable sound",
      ready: "Ready", yes: "Yes", no: "No", sayAgain: "Say again", skipSlot: "Skip slot",
      short: "Short", howMuchMore: "How much more", location: "Location",
      description: "Description", help: "Help", callSupervisor: "Call supervisor",
      damaged: "Damaged", cancel: "Cancel", signOff: "Sign off",
      f_aisle: "Aisle", f_slot: "Slot", f_level: "Level", f_zone: "Zone",
      f_quantity: "Qty", f_description: "Item", f_sku: "SKU", f_unit: "Unit",
      f_lot: "Lot", f_location: "Location", f_warehouse: "Warehouse",
      f_assignment: "Assignment", f_picks: "Picks", f_remaining: "Left",
      f_staging: "Staging", f_serial: "Serial", f_serials: "Of",
      f_serial_digits: "Last digits",
    },
    "zh-CN": {
      title: "WavePick 耳机", signInTitle: "登录", username: "用户名", password: "密码",
      language: "语言", signIn: "登录", signingIn: "正在登录…",
      wrongPassword: "用户名或密码错误。", missingFields: "请输入用户名和密码。",
      sessionExpired: "会话已过期，请重新登录。", signedOff: "您已退出。",
      notAPicker: "此账号不能拣货。", replaced: "您已在另一台耳机上登录。请重新登录以在此拣货。",
      serverUnreachable: "无法连接服务器。",
      connecting: "正在连接…", online: "在线", reconnecting: "{s} 秒后重新连接…",
      inCall: "正在与主管通话",
      showShelf: "拍摄货架", stopShelf: "关闭摄像头", shelfCamera: "货架摄像头",
      waiting: "等待第一条提示…", prompt: "提示",
      voice: "语音", keypad: "键盘", commands: "指令", mode: "模式",
      pushToTalk: "按住说话", handsFree: "免提",
      holdToTalk: "按住说话", talking: "正在听…", micOn: "麦克风已开 — 点击暂停",
      micPaused: "麦克风已暂停 — 点击收听", micStarting: "正在打开麦克风…",
      micInsecure: "麦克风需要 HTTPS（或 localhost）。请使用键盘。",
      micFailed: "麦克风不可用（{reason}）。请使用键盘。",
      send: "发送", delete: "删除", heard: "听到", accepted: "已接受", rejected: "未接受",
      signOut: "登出", enableSound: "点击开启声音",
      ready: "好了", yes: "是", no: "否", sayAgain: "再说一遍", skipSlot: "跳过",
      short: "缺货", howMuchMore: "还剩多少", location: "位置", description: "描述",
      help: "帮助", callSupervisor: "呼叫主管", damaged: "破损", cancel: "取消",
      signOff: "退出",
      f_aisle: "巷道", f_slot: "货位", f_level: "层", f_zone: "区", f_quantity: "数量",
      f_description: "商品", f_sku: "SKU", f_unit: "单位", f_lot: "批次",
      f_location: "位置", f_warehouse: "仓库", f_assignment: "任务", f_picks: "拣货数",
      f_remaining: "剩余", f_staging: "集货区", f_serial: "序列号", f_serials: "共",
      f_serial_digits: "最后几位",
    },
  };

  const $ = (id) => document.getElementById(id);
  const el = {
    signinView: $("signin-view"), form: $("signin-form"), signinMessage: $("signin-message"),
    username: $("username"), password: $("password"), locale: $("locale"),
    signinButton: $("signin-button"),
    headsetView: $("headset-view"), connection: $("connection"),
    connectionText: $("connection-text"), operator: $("operator"),
    soundButton: $("sound-button"), signoutButton: $("signout-button"),
    promptPanel: $("prompt-panel"), promptText: $("prompt-text"),
    promptDisplay: $("prompt-display"), heard: $("heard"), error: $("error"),
    talkButton: $("talk-button"), talkLabel: $("talk-label"), meter: $("meter-level"),
    micMessage: $("mic-message"), entry: $("keypad-entry"), keypad: $("keypad"),
    keypadSend: $("keypad-send"), keypadDelete: $("keypad-delete"), commands: $("commands"),
    shelfPanel: $("shelf-panel"), shelfButton: $("shelf-button"), shelfFrame: $("shelf-frame"),
  };

  const hook = {
    state: "signed_out", connected: false, lastPrompt: null, lastHeard: null,
    lastError: null, session: null, operator: null, sampleRate: REQUESTED_RATE,
    mode: "ptt", talking: false, micBytesSent: 0, micChunksDropped: 0, bargeIns: 0,
    promptAudio: {frames: 0, bytes: 0, seconds: 0}, audioPath: "socket",
    rtc: {state: "off", offers: 0, bytesSent: 0, bytesReceived: 0, audioEnergy: 0},
    call: null, shelf: null,
  };
  window.wavepick = hook;

  let locale = pickLocale();
  let audioContext = null;
  let player = null;
  let mic = null;
  let socket = null;
  let rtc = null; // the WebRTC audio of this socket: {pc, ws, audio, stats}
  let attempt = 0;
  let reconnectTimer = null;
  let countdownTimer = null;
  let mutedPromptId = null; // barge-in: drop the rest of this prompt's audio
  let inCall = null; // the room whose call has the headset's audio now
  let currentPromptId = null;
  let signOffHeard = false; // the last accepted answer was "sign off"
  let entry = "";
  let micPaused = false;
  let loudChunks = 0;
  let preroll = [];
  let hangover = 0;
  let wakeLock = null;

  /* ---------- language ---------- */

  function pickLocale() {
    const stored = localStorage.getItem(LOCALE_KEY);
    if (stored && MESSAGES[stored]) return stored;
    return (navigator.language || "").toLowerCase().startsWith("zh") ? "zh-CN" : "en-US";
  }

  function t(key, params) {
    let text = (MESSAGES[locale] && MESSAGES[locale][key]) || MESSAGES["en-US"][key] || key;
    for (const [name, value] of Object.entries(params || {})) text = text.replace(`{${name}}`, value);
    return text;
  }

  function applyLocale() {
    document.documentElement.lang = locale;
    document.title = t("title");
    el.locale.value = locale;
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    for (const node of document.querySelectorAll("[data-i18n-label]")) {
      node.setAttribute("aria-label", t(node.dataset.i18nLabel));
    }
    for (const button of el.commands.querySelectorAll("button")) {
      button.textContent = t(button.dataset.label);
    }
    renderConnection();
    renderTalk();
    renderShelf();
    if (hook.lastPrompt) renderPrompt(hook.lastPrompt);
    else el.promptText.textContent = t("waiting");
    if (hook.lastHeard) renderHeard(hook.lastHeard);
  }

  /* ---------- sign in ---------- */

  function showSignIn(message) {
    hook.state = "signed_out";
    el.headsetView.hidden = true;
    el.signinView.hidden = false;
    el.signinMessage.hidden = !message;
    el.signinMessage.textContent = message || "";
    el.username.value = el.username.value || sessionStorage.getItem(USER_KEY) || "";
    el.signinButton.disabled = false;
    el.signinButton.textContent = t("signIn");
    (el.username.value ? el.password : el.username).focus();
  }

  async function signIn(event) {
    event.preventDefault();
    unlockAudio();
    const username = el.username.value.trim();
    const password = el.password.value;
    if (!username || !password) {
      showSignIn(t("missingFields"));
      return;
    }
    el.signinButton.disabled = true;
    el.signinButton.textContent = t("signingIn");
    let response;
    try {
      response = await fetch("/api/v1/auth/token", {
        method: "POST",
        headers: {"Content-Type": "application/x-www-form-urlencoded"},
        body: new URLSearchParams({grant_type: "password", username, password}),
      });
    } catch (err) {
      console.warn("wavepick: sign-in request failed", err);
      showSignIn(t("serverUnreachable"));
      return;
    }
    if (!response.ok) {
      showSignIn(response.status === 401 || response.status === 400
        ? t("wrongPassword") : `${t("serverUnreachable")} (${response.status})`);
      return;
    }
    const body = await response.json();
    sessionStorage.setItem(TOKEN_KEY, body.access_token);
    sessionStorage.setItem(USER_KEY, username);
    el.password.value = "";
    enterHeadset();
  }

  function enterHeadset() {
    el.signinView.hidden = true;
    el.headsetView.hidden = false;
    el.signinMessage.hidden = true;
    applyLocale();
    requestWakeLock();
    connect();
    // The mic runs in both modes (push-to-talk needs it warm for its pre-roll); what is sent
    // depends on the mode.
    startMic();
  }

  function signOut(message) {
    leaveRtc(rtc, false);
    const ws = socket;
    socket = null;
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({type: "bye"}));
      ws.close(1000, "sign out");
    } else if (ws) {
      ws.close();
    }
    clearTimeout(reconnectTimer);
    clearInterval(countdownTimer);
    sessionStorage.removeItem(TOKEN_KEY);
    setCall(null);
    stopMic();
    if (player) player.stop();
    hook.connected = false;
    hook.lastPrompt = null;
    hook.lastHeard = null;
    signOffHeard = false;
    currentPromptId = null;
    el.heard.textContent = "";
    el.error.textContent = "";
    el.promptDisplay.replaceChildren();
    if (wakeLock) wakeLock.release().catch((err) => console.warn("wavepick: wake lock", err));
    wakeLock = null;
    showSignIn(message);
  }

  async function requestWakeLock() {
    if (!("wakeLock" in navigator) || wakeLock) return;
    try {
      wakeLock = await navigator.wakeLock.request("screen");
      wakeLock.addEventListener("release", () => { wakeLock = null; });
    } catch (err) {
      console.info("wavepick: screen wake lock unavailable", err.name);
    }
  }

  /* ---------- the socket ---------- */

  function deviceId() {
    let id = localStorage.getItem(DEVICE_KEY);
    if (!id) {
      const bytes = new Uint8Array(6);
      crypto.getRandomValues(bytes);
      id = "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
      localStorage.setItem(DEVICE_KEY, id);
    }
    return id;
  }

  /* A server may refuse the upgrade of an expired token before accepting it (the browser
   * then sees 1006, not 4401), so an expired JWT is caught here too. */
  function tokenExpired(token) {
    const parts = token.split(".");
    if (parts.length !== 3) return false;
    try {
      const payload = JSON.parse(atob(parts[1].replace(/-/g, "+").replace(/_/g, "/")));
      return typeof payload.exp === "number" && payload.exp * 1000 <= Date.now();
    } catch (err) {
      console.warn("wavepick: unreadable token payload", err);
      return false;
    }
  }

  /* A one-use ticket for the next socket (valid for seconds): the bearer token itself never
   * goes into a URL, where it would end up in logs. null when the token is refused (signed
   * out); throws when the server cannot be reached. */
  async function socketTicket(token) {
    const response = await fetch("/api/v1/auth/ticket", {
      method: "POST",
      headers: {Authorization: `Bearer ${token}`},
    });
    if (response.status === 401) return null;
    if (!response.ok) throw new Error(`ticket: HTTP ${response.status}`);
    return (await response.json()).ticket;
  }

  async function connect() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) {
      showSignIn();
      return;
    }
    if (tokenExpired(token)) {
      signOut(t("sessionExpired"));
      return;
    }
    clearTimeout(reconnectTimer);
    clearInterval(countdownTimer);
    hook.state = "connecting";
    renderConnection();
    let ticket;
    try {
      ticket = await socketTicket(token);
    } catch (err) {
      console.warn("wavepick: no socket ticket", err.message);
      onClose({code: 1006, reason: ""});
      return;
    }
    if (ticket === null) {
      signOut(t("sessionExpired"));
      return;
    }
    if (sessionStorage.getItem(TOKEN_KEY) !== token) return; // signed out meanwhile
    const url = new URL("/ws/headset", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("ticket", ticket);
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    socket = ws;
    ws.onopen = () => {
      if (socket !== ws) return;
      hook.state = "open";
      ws.send(JSON.stringify({
        type: "hello", protocol: PROTOCOL, device: deviceId(), locale,
        audio: {encoding: "pcm_s16le", sample_rate: REQUESTED_RATE},
      }));
      renderConnection();
    };
    ws.onmessage = (event) => {
      if (socket !== ws) return;
      if (typeof event.data === "string") onFrame(event.data);
      else onAudio(event.data);
    };
    ws.onclose = (event) => {
      if (socket !== ws) return;
      socket = null;
      onClose(event);
    };
    ws.onerror = () => console.warn("wavepick: headset socket error");
  }

  function onClose(event) {
    leaveRtc(rtc, false); // the server's side went with the socket
    hook.connected = false;
    hook.talking = false;
    setCall(null); // the server hangs up a headset's call when its socket goes
    if (event.code === 4401) {
      signOut(t("sessionExpired"));
      return;
    }
    if (event.code === 4403) {
      signOut(t("notAPicker"));
      return;
    }
    const busy = hook.lastError && hook.lastError.code === "session_busy";
    if (event.code === 4409 && !busy) {
      // Signed in on another headset: that one goes on; reconnecting would take it back.
      signOut(t("replaced"));
      return;
    }
    // session_busy (4409) or store_unavailable (1013): the server could not yet be sure the
    // operator is live nowhere else; trying again after the backoff is what it asks for.
    // Signed off: a normal close after the dialog's final prompt ("yes" to "Sign off?"), or
    // right after an accepted "sign off" (a server that does not ask to confirm).
    const signedOff = !!hook.lastPrompt && hook.lastPrompt.state === "signed_off";
    if (event.code === 1000 && (signedOff || signOffHeard)) {
      signOut(t("signedOff"));
      return;
    }
    if (event.code === 4400) showError(event.reason || "protocol error");
    const delay = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
    attempt += 1;
    const jittered = Math.round(delay * (0.8 + Math.random() * 0.4));
    hook.state = "reconnecting";
    const until = Date.now() + jittered;
    const tick = () => {
      renderConnection(Math.max(0, Math.ceil((until - Date.now()) / 1000)));
    };
    tick();
    countdownTimer = setInterval(tick, 250);
    reconnectTimer = setTimeout(connect, jittered);
  }

  function send(frame) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(typeof frame === "string" ? frame : JSON.stringify(frame));
    return true;
  }

  function onFrame(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch (err) {
      console.warn("wavepick: a text frame that is not JSON", err);
      return;
    }
    switch (frame.type) {
      case "welcome":
        attempt = 0;
        hook.state = "ready";
        hook.connected = true;
        hook.session = frame.session || null;
        hook.operator = frame.operator || null;
        hook.sampleRate = frame.sample_rate || REQUESTED_RATE;
        if (mic) mic.setOutRate(hook.sampleRate);
        el.operator.textContent = hook.operator || "";
        showError("");
        renderConnection();
        offerRtc(socket);
        break;
      case "prompt":
        hook.lastPrompt = frame;
        if (currentPromptId !== null && frame.id !== currentPromptId && player) player.stop();
        currentPromptId = frame.id;
        mutedPromptId = null;
        if (rtc && rtc.audio) rtc.audio.muted = false;
        el.promptText.dataset.speaking = "true";
        renderPrompt(frame);
        break;
      case "prompt_end":
        if (frame.id === currentPromptId) el.promptText.dataset.speaking = "false";
        break;
      case "heard":
        hook.lastHeard = frame;
        if (frame.accepted) signOffHeard = SIGN_OFF_WORDS.has(frame.text);
        if (frame.accepted) showError("");
        renderHeard(frame);
        if (!frame.accepted && navigator.vibrate) navigator.vibrate(120);
        break;
      case "error":
        hook.lastError = frame;
        if (RTC_ERRORS.has(frame.code)) { // no WebRTC audio: the socket carries it
          console.info("wavepick: WebRTC audio refused:", frame.code, frame.message);
          leaveRtc(rtc, false);
          hook.rtc.state = "unavailable";
          break;
        }
        showError(frame.message || frame.code || "error");
        break;
      case "rtc_answer":
        if (rtc && rtc.ws === socket) acceptRtc(rtc, frame.sdp);
        break;
      case "rtc_state":
        if (rtc && frame.state === "connected") useRtc(rtc);
        else if (rtc && frame.state === "closed") leaveRtc(rtc, false);
        break;
      case "call": // a supervisor's call has the microphone and the speaker
        setCall(frame.state === "started" ? frame.room : null);
        mutedPromptId = null;
        if (rtc && rtc.audio) rtc.audio.muted = false;
        renderConnection();
        break;
      default:
        console.info("wavepick: ignoring frame type", frame.type);
    }
  }

  /* The room whose call has the headset now, or null; out of a call, no shelf camera. */
  function setCall(room) {
    inCall = room;
    hook.call = room;
    if (room === null) showShelf(false);
    renderShelf();
  }

  /* The shelf camera: the call page in shelf mode, framed here so this page (its socket,
   * its sound) stays in front; it joins the call as one more participant, camera only. */
  function showShelf(on) {
    const room = on ? inCall : null;
    if (room === hook.shelf) return;
    hook.shelf = room;
    el.shelfFrame.src = room === null ? "about:blank" : `call.html?room=${room}&shelf=1`;
    el.shelfFrame.hidden = room === null;
    renderShelf();
  }

  function renderShelf() {
    el.shelfPanel.hidden = inCall === null;
    el.shelfButton.setAttribute("aria-pressed", String(hook.shelf !== null));
    el.shelfButton.textContent = t(hook.shelf !== null ? "stopShelf" : "showShelf");
    el.shelfFrame.title = t("shelfCamera");
  }

  function onAudio(data) {
    if (!player || (mutedPromptId !== null && mutedPromptId === currentPromptId)) return;
    player.enqueue(data, hook.sampleRate);
    hook.promptAudio = {...player.stats};
  }

  /* ---------- rendering ---------- */

  function renderConnection(seconds) {
    const state = hook.state;
    el.connection.dataset.state = state === "ready" ? "online" : state;
    let text;
    if (state === "ready") text = inCall !== null ? t("inCall") : t("online");
    else if (state === "reconnecting") text = t("reconnecting", {s: seconds ?? ""});
    else text = t("connecting");
    el.connectionText.textContent = text;
    if (state !== "reconnecting") clearInterval(countdownTimer);
  }

  function renderPrompt(frame) {
    el.promptText.textContent = frame.text || "";
    const items = [];
    const display = frame.display && typeof frame.display === "object" ? frame.display : {};
    for (const [key, value] of Object.entries(display)) {
      if (value === null || value === undefined || typeof value === "object") continue;
      const wrapper = document.createElement("div");
      wrapper.className = `field field-${key.replace(/[^a-z0-9_-]/gi, "")}`;
      const dt = document.createElement("dt");
      const label = MESSAGES["en-US"][`f_${key}`] ? t(`f_${key}`) : key.replace(/_/g, " ");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = String(value);
      wrapper.append(dt, dd);
      items.push(wrapper);
    }
    el.promptDisplay.replaceChildren(...items);
    fitPrompt();
  }

  /* The biggest font that keeps the prompt and its fields inside the prompt panel. */
  function fitPrompt() {
    const panel = el.promptPanel;
    let size = Math.min(96, Math.max(32, panel.clientWidth / 6));
    el.promptText.style.fontSize = `${size}px`;
    while (size > 18 && panel.scrollHeight > panel.clientHeight + 1) {
      size -= 2;
      el.promptText.style.fontSize = `${size}px`;
    }
  }

  function renderHeard(frame) {
    const mark = frame.accepted ? "✓" : "✗";
    const label = COMMAND_LABELS.get(frame.text);
    const text = label ? t(label) : frame.text || "";
    el.heard.textContent =
      `${t("heard")}: “${text}” ${mark} ${frame.accepted ? t("accepted") : t("rejected")}`;
    el.heard.dataset.accepted = String(!!frame.accepted);
  }

  function showError(message) {
    el.error.textContent = message;
  }

  /* ---------- audio ---------- */

  function unlockAudio() {
    if (!audioContext) {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return;
      audioContext = new Context({latencyHint: "interactive"});
      player = new PromptPlayer(audioContext);
      player.onidle = () => { el.promptText.dataset.speaking = "false"; };
      audioContext.onstatechange = renderSound;
    }
    if (audioContext.state === "suspended") {
      audioContext.resume().catch((err) => console.warn("wavepick: audio resume", err));
    }
    renderSound();
  }

  function renderSound() {
    el.soundButton.hidden = !audioContext || audioContext.state === "running";
  }

  let micStarting = null;

  function startMic() {
    unlockAudio();
    if (mic && mic.running) return Promise.resolve();
    if (!micStarting) micStarting = openMic().finally(() => { micStarting = null; });
    return micStarting;
  }

  async function openMic() {
    if (!MicCapture.supported()) {
      showMicMessage(t("micInsecure"));
      return;
    }
    showMicMessage(t("micStarting"));
    const capture = new MicCapture(audioContext, {
      outRate: hook.sampleRate, chunkMs: CHUNK_MS, onChunk: onMicChunk,
    });
    try {
      await capture.start();
      if (el.headsetView.hidden) { // signed out while the permission prompt was up
        capture.stop();
        return;
      }
      mic = capture;
      showMicMessage("");
    } catch (err) {
      console.warn("wavepick: microphone failed", err);
      capture.stop();
      showMicMessage(t("micFailed", {reason: err.name || String(err)}));
    }
    renderTalk();
  }

  function stopMic() {
    if (mic) mic.stop();
    mic = null;
    hook.talking = false;
    el.meter.style.width = "0";
  }

  function showMicMessage(text) {
    el.micMessage.hidden = !text;
    el.micMessage.textContent = text;
  }

  function onMicChunk(buffer, db) {
    el.meter.style.width = `${Math.max(0, Math.min(100, (db + 60) * (100 / 60)))}%`;
    if (hook.mode === "handsfree") {
      if (micPaused) return;
      // Barge-in: the picker talks over the prompt, so stop playing it.
      loudChunks = db > BARGE_IN_DB ? loudChunks + 1 : 0;
      if (loudChunks >= BARGE_IN_CHUNKS && promptPlaying()) bargeIn();
      sendAudio(buffer);
      return;
    }
    if (hook.talking) {
      sendAudio(buffer);
      return;
    }
    if (hangover > 0) {
      hangover -= 1;
      sendAudio(buffer);
      if (hangover === 0) {
        for (let i = 0; i < PTT_SILENCE_CHUNKS; i++) sendAudio(new ArrayBuffer(buffer.byteLength));
      }
      return;
    }
    preroll.push(buffer);
    if (preroll.length > PTT_PREROLL_CHUNKS) preroll.shift();
  }

  function sendAudio(buffer) {
    if (hook.audioPath === "webrtc") return; // the microphone goes on the track
    if (!hook.connected || !socket || socket.readyState !== WebSocket.OPEN) return;
    if (socket.bufferedAmount > MAX_BUFFERED) {
      hook.micChunksDropped += 1;
      return;
    }
    socket.send(buffer);
    hook.micBytesSent += buffer.byteLength;
  }

  function promptPlaying() {
    if (player && player.playing) return true;
    return hook.audioPath === "webrtc" && el.promptText.dataset.speaking === "true";
  }

  function bargeIn() {
    if (inCall !== null) return; // talking in a call cuts nobody off
    if (promptPlaying()) hook.bargeIns += 1;
    if (player) player.stop();
    if (rtc && rtc.audio) rtc.audio.muted = true; // until the next prompt
    mutedPromptId = currentPromptId;
    el.promptText.dataset.speaking = "false";
  }

  function pressTalk() {
    if (hook.mode !== "ptt" || hook.talking) return;
    unlockAudio();
    if (!mic || !mic.running) startMic();
    bargeIn();
    hook.talking = true;
    hangover = 0;
    for (const chunk of preroll) sendAudio(chunk);
    preroll = [];
    gateRtcMic();
    renderTalk();
  }

  function releaseTalk() {
    if (!hook.talking) return;
    hook.talking = false;
    hangover = PTT_HANGOVER_CHUNKS;
    gateRtcMic(PTT_HANGOVER_MS);
    renderTalk();
  }

  function setMode(mode) {
    hook.mode = mode === "handsfree" ? "handsfree" : "ptt";
    localStorage.setItem(MODE_KEY, hook.mode);
    for (const radio of document.querySelectorAll('input[name="mode"]')) {
      radio.checked = radio.value === hook.mode;
    }
    hook.talking = false;
    hangover = 0;
    if (!el.headsetView.hidden) startMic();
    gateRtcMic();
    renderTalk();
  }

  function renderTalk() {
    const button = el.talkButton;
    let label;
    if (hook.mode === "ptt") {
      label = hook.talking ? t("talking") : t("holdToTalk");
      button.setAttribute("aria-pressed", String(hook.talking));
      button.dataset.active = String(hook.talking);
    } else {
      const on = !micPaused && !!mic && mic.running;
      label = micPaused ? t("micPaused") : on ? t("micOn") : t("micStarting");
      button.setAttribute("aria-pressed", String(!micPaused));
      button.dataset.active = String(!micPaused);
    }
    button.dataset.mode = hook.mode;
    el.talkLabel.textContent = label;
  }

  /* ---------- WebRTC audio ---------- */

  /* Offer WebRTC audio on this socket: the microphone's gated track out, the prompts in.
   * Until the server says it is up, audio goes on over the socket. */
  function offerRtc(ws) {
    openRtc(ws).catch((err) => {
      console.warn("wavepick: no WebRTC audio", err);
      leaveRtc(rtc, false);
    });
  }

  async function openRtc(ws) {
    if (AUDIO_PREFERENCE === "socket" || !window.RTCPeerConnection || rtc) return;
    await startMic();
    const track = mic && mic.running ? mic.sendTrack() : null;
    if (!track || socket !== ws || rtc) return;
    const pc = new RTCPeerConnection({iceServers: []});
    const link = {pc, ws, audio: null, stats: null};
    rtc = link;
    hook.rtc.state = "offering";
    pc.addTransceiver(track, {direction: "sendrecv"});
    pc.ontrack = (event) => {
      if (rtc !== link) return;
      link.audio = new Audio();
      link.audio.srcObject = new MediaStream([event.track]);
      playRtcAudio(link);
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed") leaveRtc(link, true);
    };
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc);
    if (rtc !== link || socket !== ws) return;
    hook.rtc.state = "connecting";
    hook.rtc.offers += 1;
    send({type: "rtc_offer", sdp: pc.localDescription.sdp});
  }

  /* The protocol has no trickle ICE: the offer carries the candidates found in time. */
  function iceGathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      };
      const check = () => { if (pc.iceGatheringState === "complete") done(); };
      const timer = setTimeout(done, RTC_GATHER_MS);
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  async function acceptRtc(link, sdp) {
    try {
      await link.pc.setRemoteDescription({type: "answer", sdp});
    } catch (err) {
      console.warn("wavepick: unusable WebRTC answer", err);
      leaveRtc(link, true);
    }
  }

  function playRtcAudio(link) {
    link.audio.play().catch((err) => console.info("wavepick: prompt audio waits for a tap", err.name));
  }

  /* The server hears the track and speaks on it now: the socket carries frames only. */
  function useRtc(link) {
    if (rtc !== link) return;
    hook.audioPath = "webrtc";
    hook.rtc.state = "connected";
    gateRtcMic();
    clearInterval(link.stats);
    link.stats = setInterval(() => readRtcStats(link), 1000);
  }

  /* Back to the socket's PCM frames (telling the server, unless it told us). */
  function leaveRtc(link, tell) {
    if (!link || rtc !== link) return;
    rtc = null;
    if (tell) send({type: "rtc_close"});
    clearInterval(link.stats);
    link.pc.close();
    if (link.audio) {
      link.audio.pause();
      link.audio.srcObject = null;
    }
    hook.audioPath = "socket";
    hook.rtc.state = "closed";
    if (mic) mic.closeSend();
  }

  /* What the track sends: hands-free all but paused; push-to-talk while held, with the
   * pre-roll (a delay) before the press and the hang-over after the release. */
  function gateRtcMic(hangoverMs = 0) {
    if (!mic || hook.audioPath !== "webrtc") return;
    const handsFree = hook.mode === "handsfree";
    mic.setSendDelay(handsFree ? 0 : PTT_PREROLL_MS);
    if (handsFree ? !micPaused : hook.talking) mic.openSend();
    else mic.closeSend(hangoverMs);
  }

  async function readRtcStats(link) {
    if (rtc !== link) return;
    try {
      const report = await link.pc.getStats();
      report.forEach((stat) => {
        if (stat.kind !== "audio") return;
        if (stat.type === "outbound-rtp") hook.rtc.bytesSent = stat.bytesSent || 0;
        if (stat.type === "inbound-rtp") {
          hook.rtc.bytesReceived = stat.bytesReceived || 0;
          hook.rtc.audioEnergy = stat.totalAudioEnergy || 0;
        }
      });
    } catch (err) {
      console.warn("wavepick: WebRTC stats", err);
    }
  }

  /* ---------- keypad and commands ---------- */

  function say(text) {
    if (promptPlaying()) bargeIn();
    if (!send({type: "say", text})) showError(t("connecting"));
  }

  function renderEntry() {
    el.entry.textContent = entry;
    el.keypadSend.disabled = !entry;
  }

  function typeDigit(digit) {
    if (entry.length < 12) entry += digit;
    renderEntry();
  }

  function sendEntry() {
    if (!entry) return;
    say(entry);
    entry = "";
    renderEntry();
  }

  function buildCommands() {
    for (const [label, words] of COMMANDS) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.label = label;
      button.dataset.say = words;
      button.textContent = t(label);
      if (label === "callSupervisor" || label === "damaged") button.className = "warn";
      el.commands.append(button);
    }
  }

  function selectTab(id) {
    for (const tab of document.querySelectorAll('[role="tab"]')) {
      const selected = tab.id === id;
      tab.setAttribute("aria-selected", String(selected));
      $(tab.getAttribute("aria-controls")).hidden = !selected;
    }
    fitPrompt();
  }

  /* ---------- wiring ---------- */

  function isTyping(target) {
    return !!target && (target.isContentEditable
      || target.matches('select, textarea, input:not([type="radio"]):not([type="checkbox"])'));
  }

  function wire() {
    el.form.addEventListener("submit", signIn);
    el.locale.addEventListener("change", () => {
      locale = el.locale.value;
      localStorage.setItem(LOCALE_KEY, locale);
      applyLocale();
    });
    el.signoutButton.addEventListener("click", () => signOut());
    el.shelfButton.addEventListener("click", () => showShelf(hook.shelf === null));
    el.soundButton.addEventListener("click", unlockAudio);
    document.addEventListener("pointerdown", () => {
      if (audioContext && audioContext.state === "suspended") unlockAudio();
      if (rtc && rtc.audio && rtc.audio.paused) playRtcAudio(rtc);
    }, {capture: true});

    const talk = el.talkButton;
    talk.addEventListener("pointerdown", (event) => {
      if (hook.mode !== "ptt") return;
      event.preventDefault();
      talk.setPointerCapture(event.pointerId);
      pressTalk();
    });
    for (const name of ["pointerup", "pointercancel", "lostpointercapture"]) {
      talk.addEventListener(name, releaseTalk);
    }
    talk.addEventListener("contextmenu", (event) => event.preventDefault());
    talk.addEventListener("click", () => {
      if (hook.mode !== "handsfree") return;
      micPaused = !micPaused;
      if (!micPaused) startMic();
      gateRtcMic();
      renderTalk();
    });
    for (const radio of document.querySelectorAll('input[name="mode"]')) {
      radio.addEventListener("change", () => setMode(radio.value));
    }

    el.keypad.addEventListener("click", (event) => {
      const button = event.target.closest("button");
      if (!button) return;
      if (button.dataset.digit) typeDigit(button.dataset.digit);
    });
    el.keypadDelete.addEventListener("click", () => {
      entry = entry.slice(0, -1);
      renderEntry();
    });
    el.keypadSend.addEventListener("click", sendEntry);
    el.commands.addEventListener("click", (event) => {
      const button = event.target.closest("button");
      if (button && button.dataset.say) say(button.dataset.say);
    });
    for (const tab of document.querySelectorAll('[role="tab"]')) {
      tab.addEventListener("click", () => selectTab(tab.id));
    }

    // Space is push-to-talk; digits, Backspace and Enter drive the keypad (hardware keys).
    document.addEventListener("keydown", (event) => {
      if (el.headsetView.hidden || isTyping(event.target) || event.ctrlKey || event.metaKey
          || event.altKey) return;
      if (event.code === "Space") {
        event.preventDefault();
        if (!event.repeat) pressTalk();
      } else if (/^[0-9]$/.test(event.key)) {
        typeDigit(event.key);
      } else if (event.key === "Backspace") {
        entry = entry.slice(0, -1);
        renderEntry();
      } else if (event.key === "Enter" && entry) {
        event.preventDefault();
        sendEntry();
      }
    });
    document.addEventListener("keyup", (event) => {
      if (event.code === "Space" && !isTyping(event.target)) {
        event.preventDefault();
        releaseTalk();
      }
    });
    window.addEventListener("blur", releaseTalk);
    window.addEventListener("resize", fitPrompt);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && !el.headsetView.hidden) requestWakeLock();
    });
  }

  function main() {
    buildCommands();
    wire();
    hook.mode = localStorage.getItem(MODE_KEY) === "handsfree" ? "handsfree" : "ptt";
    setMode(hook.mode);
    renderEntry();
    applyLocale();
    if (sessionStorage.getItem(TOKEN_KEY)) {
      unlockAudio(); // may stay suspended until a tap; the sound button says so
      enterHeadset();
    } else {
      showSignIn();
    }
  }

  main();
})();
