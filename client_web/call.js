/* WavePick call page: a video call in a room over Room signaling v1 (docs/rooms.md).
 *
 * call.html?room=ID joins room ID; call.html?exception=ID opens (or finds) the room of that
 * exception first. call.html?room=ID&shelf=1 is the picker's phone camera in their call,
 * framed by the headset page: the back camera only, and the others' sound muted, since
 * the headset carries the voices. Sign-in is the headset page's (the token is kept in
 * sessionStorage); the socket is opened with a one-use ticket. One peer connection with
 * the server: the camera and microphone go out on send-only transceivers, every other
 * participant's tracks come back in a MediaStream whose id is that participant's id. The
 * page is the polite peer: an offer of the server's that crosses ours wins, ours is
 * rolled back and made again.
 *
 * window.wavepickCall is a small read-only view of the page for tests:
 *   {state, room, participant, participants, remoteTracks: {audio, video}, framesDecoded,
 *    audioPacketsReceived, audioLevel, muted: {audio, video}, facingMode, shelf, lastError}
 * state: signed_out, choosing, connecting, joined, left, error.
 */

const TOKEN_KEY = "wavepick.token";
const USER_KEY = "wavepick.username";
const LOCALE_KEY = "wavepick.locale";
const CAMERA_KEY = "wavepick.call.camera";
const MIC_KEY = "wavepick.call.microphone";
const STATS_MS = 1000;
const EXCEPTION_PAGE = 500;

const MESSAGES = {
  "en-US": {
    title: "WavePick call", signInTitle: "Sign in", username: "Username", password: "Password",
    language: "Language", signIn: "Sign in", signingIn: "Signing in…",
    wrongPassword: "Wrong username or password.", missingFields: "Enter your username and password.",
    sessionExpired: "Your session expired. Please sign in again.",
    serverUnreachable: "Cannot reach the server.",
    pickTitle: "Join a call", roomNumber: "Room number", join: "Join",
    callTitle: "Call · room {room}", participants: "Participants", you: "You",
    alone: "Waiting for others to join…",
    connecting: "Connecting…", joined: "In the call", left: "You left the call.",
    reconnecting: "Reconnecting…",
    exception: "Exception", kind: "Kind", note: "Note", reportedBy: "Reported by",
    createdAt: "Reported at", warehouse: "Warehouse",
    decide: "Decision", resolution: "What was decided", outcome: "Outcome", settle: "Settle",
    outcome_noted: "Noted, nothing changes", outcome_short_accepted: "Accept the short (write off)",
    outcome_adjusted: "Adjust stock at the slot", outcome_recount: "Send a recount",
    outcome_reassigned: "Give the rest to another picker", adjustQuantity: "Change (e.g. -2)",
    reason: "Reason", reason_count_correction: "Count correction", reason_damaged: "Damaged",
    reason_lost: "Lost", reason_found: "Found", takesOver: "Picker who takes over",
    needResolution: "Say what was decided.", decided: "Settled by {who}: {what}",
    controls: "Call controls", camera: "Camera", microphone: "Microphone",
    muteAudio: "Mute", unmuteAudio: "Unmute", muteVideo: "Stop video", unmuteVideo: "Start video",
    flipCamera: "Flip camera", leave: "Leave", rejoin: "Join again",
    noCamera: "No camera", noMicrophone: "No microphone", device: "Device {n}",
    mediaFailed: "Camera or microphone unavailable ({reason}). You can still see and hear the others.",
    shelfName: "{name} · shelf camera",
    muted: "muted",
    kind_short: "Short", kind_damage: "Damage", kind_wrong_item: "Wrong item",
    kind_help: "Call for help",
    e_unauthorized: "Your sign-in was refused. Please sign in again.",
    e_forbidden: "You may not join this call: it belongs to another warehouse or exception.",
    e_not_found: "This call does not exist or has ended.",
    e_media: "The call lost your connection.",
    e_full: "The call is full.",
    e_exception: "That exception could not be found.",
    e_open: "The call could not be opened ({reason}).",
    e_connection: "The connection to the server was lost.",
    e_server_shutdown: "The server is restarting.",
  },
  "zh-CN": {
    title: "WavePick 通话", signInTitle: "登录", username: "用户名", password: "密码",
    language: "语言", signIn: "登录", signingIn: "正在登录…",
    wrongPassword: "用户名或密码错误。", missingFields: "请输入用户名和密码。",
    sessionExpired: "会话已过期，请重新登录。", serverUnreachable: "无法连接服务器。",
    pickTitle: "加入通话", roomNumber: "房间号", join: "加入",
    callTitle: "通话 · 房间 {room}", participants: "参与者", you: "我",
    alone: "等待其他人加入…",
    connecting: "正在连接…", joined: "通话中", left: "您已离开通话。",
    reconnecting: "正在重新连接…",
    exception: "异常", kind: "类型", note: "备注", reportedBy: "报告人",
    createdAt: "报告时间", warehouse: "仓库",
    decide: "处理决定", resolution: "决定内容", outcome: "处理方式", settle: "处理",
    outcome_noted: "已记录，不做更改", outcome_short_accepted: "确认缺货（核销）",
    outcome_adjusted: "调整该货位库存", outcome_recount: "安排复盘",
    outcome_reassigned: "将剩余任务转给其他拣货员", adjustQuantity: "变化数量（如 -2）",
    reason: "原因", reason_count_correction: "盘点更正", reason_damaged: "破损",
    reason_lost: "丢失", reason_found: "找到", takesOver: "接手的拣货员",
    needResolution: "请填写决定内容。", decided: "{who} 已处理：{what}",
    controls: "通话控制", camera: "摄像头", microphone: "麦克风",
    muteAudio: "静音", unmuteAudio: "取消静音", muteVideo: "关闭视频", unmuteVideo: "开启视频",
    flipCamera: "切换摄像头", leave: "离开", rejoin: "重新加入",
    noCamera: "无摄像头", noMicrophone: "无麦克风", device: "设备 {n}",
    mediaFailed: "摄像头或麦克风不可用（{reason}）。您仍可看到和听到其他人。",
    shelfName: "{name} · 货架摄像头",
    muted: "已静音",
    kind_short: "缺货", kind_damage: "破损", kind_wrong_item: "错货", kind_help: "呼叫帮助",
    e_unauthorized: "登录被拒绝，请重新登录。",
    e_forbidden: "您不能加入此通话：它属于其他仓库或其他异常。",
    e_not_found: "此通话不存在或已结束。",
    e_media: "通话与您的连接已断开。",
    e_full: "通话人数已满。",
    e_exception: "找不到该异常。",
    e_open: "无法开启通话（{reason}）。",
    e_connection: "与服务器的连接已断开。",
    e_server_shutdown: "服务器正在重启。",
  },
};

// close code of the room socket -> message key
const CLOSE_ERRORS = {
  4400: "e_not_found", 4401: "e_unauthorized", 4403: "e_forbidden", 4404: "e_not_found",
  4408: "e_media", 4429: "e_full", 1001: "e_server_shutdown",
};

const $ = (id) => document.getElementById(id);
const el = {
  signinView: $("signin-view"), form: $("signin-form"), signinMessage: $("signin-message"),
  username: $("username"), password: $("password"), locale: $("locale"),
  signinButton: $("signin-button"), pickView: $("pick-view"), pickForm: $("pick-form"),
  roomInput: $("room-input"), callView: $("call-view"), callTitle: $("call-title"),
  status: $("status"), callLocale: $("call-locale"), error: $("error"), alone: $("alone"),
  grid: $("grid"), selfVideo: $("self-video"), exceptionPanel: $("exception-panel"),
  exceptionKind: $("exception-kind"), exceptionNote: $("exception-note"),
  exceptionReporter: $("exception-reporter"), exceptionCreated: $("exception-created"),
  exceptionWarehouse: $("exception-warehouse"), cameraSelect: $("camera-select"),
  micSelect: $("mic-select"), muteAudio: $("mute-audio"), muteVideo: $("mute-video"),
  flipCamera: $("flip-camera"), leave: $("leave"), rejoin: $("rejoin"),
  decideForm: $("decide-form"), decideResolution: $("decide-resolution"),
  decideOutcome: $("decide-outcome"), decideAdjust: $("decide-adjust"),
  decideQuantity: $("decide-quantity"), decideReason: $("decide-reason"),
  decideHandover: $("decide-handover"), decidePicker: $("decide-picker"),
  decideMessage: $("decide-message"), decideButton: $("decide-button"), decided: $("decided"),
};

const hook = {
  state: "signed_out", room: null, participant: null, participants: [],
  remoteTracks: {audio: 0, video: 0}, framesDecoded: 0, audioPacketsReceived: 0,
  audioLevel: 0, packetsSent: {audio: 0, video: 0}, muted: {audio: false, video: false}, facingMode: "user", lastError: null,
  decision: null,
};
window.wavepickCall = hook;

const params = new URLSearchParams(location.search);
const shelf = params.get("shelf") === "1";
hook.shelf = shelf;
if (shelf) hook.facingMode = "environment";
document.body.dataset.mode = shelf ? "shelf" : "call";
let locale = pickLocale();
let roomId = params.get("room");
let exception = null; // the room's exception, when it has one and we may read it
let local = null; // MediaStream of the camera and microphone
let call = null; // {ws, pc, senders: {audio, video}, stats, refusal, leaving, inbox}
const people = new Map(); // participant id -> {display_name, muted, tile, video, stream}

/* ---------- language ---------- */

function pickLocale() {
  const stored = localStorage.getItem(LOCALE_KEY);
  if (stored && MESSAGES[stored]) return stored;
  return (navigator.language || "").toLowerCase().startsWith("zh") ? "zh-CN" : "en-US";
}

function t(key, values) {
  let text = (MESSAGES[locale] && MESSAGES[locale][key]) || MESSAGES["en-US"][key] || key;
  for (const [name, value] of Object.entries(values || {})) text = text.replace(`{${name}}`, value);
  return text;
}

function setLocale(value) {
  if (!MESSAGES[value]) return;
  locale = value;
  localStorage.setItem(LOCALE_KEY, locale);
  applyLocale();
}

function applyLocale() {
  document.documentElement.lang = locale;
  document.title = t("title");
  el.locale.value = locale;
  el.callLocale.value = locale;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  el.callTitle.textContent = roomId ? t("callTitle", {room: roomId}) : t("title");
  renderStatus();
  renderMute();
  renderException();
  renderError();
  for (const [id, person] of people) renderPerson(id, person);
  fillDeviceSelects().catch((err) => console.warn("wavepick: devices", err));
}

/* ---------- sign in ---------- */

function showOnly(view) {
  for (const node of [el.signinView, el.pickView, el.callView]) node.hidden = node !== view;
}

function showSignIn(message) {
  hook.state = "signed_out";
  showOnly(el.signinView);
  el.signinMessage.hidden = !message;
  el.signinMessage.textContent = message || "";
  el.username.value = el.username.value || sessionStorage.getItem(USER_KEY) || "";
  el.signinButton.disabled = false;
  el.signinButton.textContent = t("signIn");
  (el.username.value ? el.password : el.username).focus();
}

async function signIn(event) {
  event.preventDefault();
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
  start();
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/* An API call with the bearer token; a 401 signs out. */
async function api(path, options = {}) {
  const headers = {Authorization: `Bearer ${token()}`, ...(options.headers || {})};
  const response = await fetch(path, {...options, headers});
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    throw Object.assign(new Error("unauthorized"), {status: 401});
  }
  return response;
}

/* ---------- finding the room ---------- */

async function start() {
  if (!token()) {
    showSignIn();
    return;
  }
  const exceptionParam = params.get("exception");
  try {
    if (!roomId && exceptionParam) roomId = await openExceptionRoom(exceptionParam);
  } catch (err) {
    if (err.status === 401) {
      showSignIn(t("sessionExpired"));
      return;
    }
    enterCall();
    fail({code: err.code || "open_failed", message: err.message}, err.key || "e_open",
      {reason: err.message});
    return;
  }
  if (!roomId || !/^[0-9]+$/.test(roomId)) {
    hook.state = "choosing";
    showOnly(el.pickView);
    el.roomInput.focus();
    return;
  }
  enterCall();
  await startMedia();
  join();
}

/* The exception (looked up in the caller's warehouses' list), its room opened or found. */
async function openExceptionRoom(id) {
  const found = await findException(Number(id));
  if (!found) throw Object.assign(new Error("exception_not_found"), {code: "exception_not_found", key: "e_exception"});
  exception = found;
  const response = await api("/api/v1/rooms", {
    method: "POST",
    headers: {"Content-Type": "application/json", "Idempotency-Key": idempotencyKey()},
    body: JSON.stringify({exception_id: found.id, warehouse: found.warehouse}),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(body.code || `HTTP ${response.status}`), {code: body.code});
  const url = new URL(location.href);
  url.searchParams.set("room", body.id);
  history.replaceState(null, "", url);
  return String(body.id);
}

function idempotencyKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function findException(id) {
  for (let offset = 0; ; offset += EXCEPTION_PAGE) {
    const response = await api(`/api/v1/exceptions?limit=${EXCEPTION_PAGE}&offset=${offset}`);
    if (!response.ok) return null;
    const page = await response.json();
    const hit = page.items.find((item) => item.id === id);
    if (hit) return hit;
    if (offset + page.items.length >= page.total || page.items.length === 0) return null;
  }
}

/* After joining: the room's exception, when it has one (managers and supervisors may
 * read it; for the picker who raised it the panel stays hidden). */
async function loadRoomDetails() {
  try {
    const response = await api(`/api/v1/rooms/${roomId}`);
    if (!response.ok) return;
    const room = await response.json();
    if (room.exception_id && (!exception || exception.id !== room.exception_id)) {
      exception = await findException(room.exception_id);
    }
    renderException();
  } catch (err) {
    console.warn("wavepick: room details", err);
  }
}

/* ---------- local media ---------- */

async function startMedia() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showMediaProblem("insecure context");
    return;
  }
  try {
    local = await navigator.mediaDevices.getUserMedia(shelf ? {video: cameraConstraint(null)} : {
      audio: deviceConstraint(localStorage.getItem(MIC_KEY), {echoCancellation: true}),
      video: cameraConstraint(localStorage.getItem(CAMERA_KEY)),
    });
  } catch (err) {
    // a stored device may be gone: try the defaults once
    try {
      const video = {facingMode: hook.facingMode};
      local = await navigator.mediaDevices.getUserMedia(shelf ? {video} : {audio: true, video});
    } catch (again) {
      console.warn("wavepick: no camera or microphone", again);
      showMediaProblem(again.name || String(again));
      local = null;
    }
  }
  el.selfVideo.srcObject = local;
  applyMuteToTracks();
  await fillDeviceSelects();
}

function deviceConstraint(id, extra = {}) {
  return id ? {...extra, deviceId: {exact: id}} : (Object.keys(extra).length ? extra : true);
}

function cameraConstraint(id) {
  const size = {width: {ideal: 640}, height: {ideal: 480}};
  return id ? {...size, deviceId: {exact: id}} : {...size, facingMode: hook.facingMode};
}

function showMediaProblem(reason) {
  hook.lastError = {code: "media_unavailable", message: reason};
  el.error.hidden = false;
  el.error.textContent = t("mediaFailed", {reason});
}

async function fillDeviceSelects() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  const devices = await navigator.mediaDevices.enumerateDevices();
  const fill = (select, kind, none, current) => {
    const found = devices.filter((d) => d.kind === kind);
    select.replaceChildren();
    if (!found.length) select.append(new Option(t(none), ""));
    found.forEach((device, index) => {
      select.append(new Option(device.label || t("device", {n: index + 1}), device.deviceId));
    });
    if (current) select.value = current;
    select.disabled = !found.length;
    return found.length;
  };
  const videoTrack = local && local.getVideoTracks()[0];
  const audioTrack = local && local.getAudioTracks()[0];
  const cameras = fill(el.cameraSelect, "videoinput", "noCamera",
    videoTrack && videoTrack.getSettings().deviceId);
  fill(el.micSelect, "audioinput", "noMicrophone", audioTrack && audioTrack.getSettings().deviceId);
  // phones and tablets: front and back camera
  el.flipCamera.hidden = !(cameras > 1 || (cameras > 0 && navigator.maxTouchPoints > 0));
}

/* Swap one kind of local track for a new one; the sender keeps its m-line (no new offer). */
async function switchTrack(kind, constraints) {
  const stream = await navigator.mediaDevices.getUserMedia({[kind]: constraints});
  const track = kind === "audio" ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
  if (!local) local = new MediaStream();
  for (const old of kind === "audio" ? local.getAudioTracks() : local.getVideoTracks()) {
    old.stop();
    local.removeTrack(old);
  }
  local.addTrack(track);
  track.enabled = !hook.muted[kind];
  el.selfVideo.srcObject = local;
  if (call && call.senders[kind]) await call.senders[kind].replaceTrack(track);
  await fillDeviceSelects();
}

function chooseDevice(kind, select, key) {
  const id = select.value;
  if (!id) return;
  localStorage.setItem(key, id);
  const constraints = kind === "audio"
    ? deviceConstraint(id, {echoCancellation: true}) : cameraConstraint(id);
  switchTrack(kind, constraints).catch((err) => showMediaProblem(err.name || String(err)));
}

function flipCamera() {
  hook.facingMode = hook.facingMode === "user" ? "environment" : "user";
  localStorage.removeItem(CAMERA_KEY);
  switchTrack("video", cameraConstraint(null)).catch((err) => showMediaProblem(err.name || String(err)));
}

function stopMedia() {
  if (local) for (const track of local.getTracks()) track.stop();
  local = null;
  el.selfVideo.srcObject = null;
}

/* ---------- mute ---------- */

function applyMuteToTracks() {
  if (!local) return;
  for (const track of local.getAudioTracks()) track.enabled = !hook.muted.audio;
  for (const track of local.getVideoTracks()) track.enabled = !hook.muted.video;
}

function toggleMute(kind) {
  hook.muted[kind] = !hook.muted[kind];
  applyMuteToTracks();
  send({type: "mute", kind, muted: hook.muted[kind]});
  renderMute();
}

function renderMute() {
  el.muteAudio.setAttribute("aria-pressed", String(hook.muted.audio));
  el.muteAudio.textContent = t(hook.muted.audio ? "unmuteAudio" : "muteAudio");
  el.muteVideo.setAttribute("aria-pressed", String(hook.muted.video));
  el.muteVideo.textContent = t(hook.muted.video ? "unmuteVideo" : "muteVideo");
}

/* ---------- the room socket and the peer connection ---------- */

function enterCall() {
  showOnly(el.callView);
  applyLocale();
}

async function socketTicket() {
  const response = await api("/api/v1/auth/ticket", {method: "POST"});
  if (!response.ok) throw new Error(`ticket: HTTP ${response.status}`);
  return (await response.json()).ticket;
}

async function join() {
  if (call) return;
  hook.state = "connecting";
  if (hook.lastError && hook.lastError.messageKey) {
    hook.lastError = null; // the last call's error; a media problem stays said
    el.error.hidden = true;
  }
  renderStatus();
  el.rejoin.hidden = true;
  el.leave.hidden = false;
  let ticket;
  try {
    ticket = await socketTicket();
  } catch (err) {
    if (err.status === 401) {
      showSignIn(t("sessionExpired"));
      return;
    }
    fail({code: "connection_failed", message: err.message}, "e_connection");
    return;
  }
  hook.room = roomId;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/ws/rooms/${roomId}?ticket=${encodeURIComponent(ticket)}`);
  const link = {ws, pc: null, senders: {audio: null, video: null},
    stats: null, refusal: null, leaving: false, inbox: Promise.resolve()};
  call = link;
  ws.onopen = () => {
    const name = sessionStorage.getItem(USER_KEY) || "";
    ws.send(JSON.stringify({type: "join", display_name: shelf ? t("shelfName", {name}) : name}));
  };
  ws.onmessage = (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch (err) {
      console.warn("wavepick: unreadable frame", err);
      return;
    }
    // one frame at a time: two offers answered at once would answer one of them twice
    link.inbox = link.inbox.then(() => handleFrame(link, frame))
      .catch((err) => console.warn("wavepick: signaling", frame.type, err));
  };
  ws.onclose = (event) => closed(link, event.code);
}

function send(frame) {
  if (!call || call.ws.readyState !== WebSocket.OPEN) return false;
  call.ws.send(JSON.stringify(frame));
  return true;
}

async function handleFrame(link, frame) {
  if (call !== link) return;
  switch (frame.type) {
    case "joined":
      hook.participant = frame.participant;
      for (const person of frame.participants) addPerson(person);
      hook.state = "joined";
      renderStatus();
      await openPeer(link, frame.ice_servers || []);
      if (!shelf) loadRoomDetails(); // the shelf camera shows no exception
      break;
    case "offer":
      await answerOffer(link, frame.sdp);
      break;
    case "answer":
      if (link.pc.signalingState === "have-local-offer") {
        await link.pc.setRemoteDescription({type: "answer", sdp: frame.sdp});
      }
      break;
    case "candidate":
      if (frame.candidate && link.pc) {
        await link.pc.addIceCandidate(frame.candidate).catch((err) => console.info("wavepick: candidate", err));
      }
      break;
    case "participant_joined":
      addPerson(frame.participant);
      break;
    case "participant_left":
      removePerson(frame.participant.id);
      break;
    case "error":
      if (frame.code === "offer_collision") { // ours is offered again once theirs is answered
        if (unnegotiated(link)) await offer(link);
        break;
      }
      link.refusal = frame;
      hook.lastError = {code: frame.code, message: frame.message};
      console.warn("wavepick: room error", frame.code, frame.message);
      break;
    default:
      break;
  }
}

async function openPeer(link, iceServers) {
  const pc = new RTCPeerConnection({iceServers});
  link.pc = pc;
  if (local) {
    for (const track of local.getTracks()) {
      const transceiver = pc.addTransceiver(track, {direction: "sendonly"});
      link.senders[track.kind] = transceiver.sender;
    }
  }
  pc.onicecandidate = ({candidate}) => {
    if (call !== link) return;
    send({type: "candidate", candidate: candidate ? candidate.toJSON() : null});
  };
  pc.ontrack = (event) => {
    const stream = event.streams[0];
    if (!stream || call !== link) return;
    attachStream(stream.id, stream);
    event.track.onunmute = countTracks;
    event.track.onended = countTracks;
    countTracks();
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "failed" && call === link) {
      console.warn("wavepick: peer connection failed");
    }
  };
  link.stats = setInterval(() => readStats(link), STATS_MS);
  if (pc.getTransceivers().length) await offer(link);
  if (hook.muted.audio) send({type: "mute", kind: "audio", muted: true});
  if (hook.muted.video) send({type: "mute", kind: "video", muted: true});
}

/* The server (aiortc) numbers RTP header extensions and payload types its own way, and
 * keeps to its numbers when it offers again; a browser that had other numbers then sends
 * what the server no longer reads (or refuses an extension whose id changed). So our
 * offers use the server's numbers from the start, and only what it can forward: Opus (and
 * G.722, G.711) for audio, VP8 with its retransmissions for video. */
const SERVER_EXTENSIONS = new Map([
  ["urn:ietf:params:rtp-hdrext:sdes:mid", 1],
  ["urn:ietf:params:rtp-hdrext:ssrc-audio-level", 2],
  ["http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", 3],
]);
const SERVER_PAYLOAD_TYPES = {
  audio: new Map([["opus/48000/2", 96], ["g722/8000", 9], ["pcmu/8000", 0], ["pcma/8000", 8]]),
  video: new Map([["vp8/90000", 97]]),
};
const SERVER_RTX = new Map([[97, 98]]); // media payload type -> its rtx payload type

function inServerNumbers(sdp) {
  const sections = sdp.split(/\r\n(?=m=)/);
  return sections.map((section, index) => (index === 0 ? section : renumberSection(section)))
    .join("\r\n");
}

function renumberSection(section) {
  const lines = section.split("\r\n");
  const kind = /^m=(\w+)/.exec(lines[0])[1];
  const known = SERVER_PAYLOAD_TYPES[kind];
  if (!known) return section;
  const renumber = new Map(); // browser's payload type -> server's
  const rtx = new Map(); // browser's rtx payload type -> browser's media payload type
  for (const line of lines) {
    let match = /^a=rtpmap:(\d+) (\S+)/.exec(line);
    if (match && known.has(match[2].toLowerCase())) renumber.set(match[1], known.get(match[2].toLowerCase()));
    match = /^a=fmtp:(\d+) apt=(\d+)$/.exec(line);
    if (match) rtx.set(match[1], match[2]);
  }
  for (const [pt, media] of rtx) {
    const server = renumber.get(media);
    if (server !== undefined && SERVER_RTX.has(server) && !renumber.has(pt)) {
      renumber.set(pt, SERVER_RTX.get(server));
    }
  }
  const out = [];
  for (const line of lines) {
    if (line.startsWith("m=")) {
      const [head, ...types] = line.split(" ").reduce((acc, part, i) => {
        if (i < 3) acc[0] = acc[0] ? `${acc[0]} ${part}` : part;
        else acc.push(part);
        return acc;
      }, [""]);
      const kept = types.filter((pt) => renumber.has(pt)).map((pt) => renumber.get(pt));
      out.push(`${head} ${kept.join(" ")}`);
      continue;
    }
    const extmap = /^a=extmap:(\d+)(\/\w+)? (\S+)(.*)$/.exec(line);
    if (extmap) {
      const id = SERVER_EXTENSIONS.get(extmap[3]);
      if (id !== undefined) out.push(`a=extmap:${id}${extmap[2] || ""} ${extmap[3]}${extmap[4]}`);
      continue;
    }
    const codecLine = /^a=(rtpmap|fmtp|rtcp-fb):(\d+)(.*)$/.exec(line);
    if (codecLine) {
      if (!renumber.has(codecLine[2])) continue;
      let rest = codecLine[3];
      const apt = /apt=(\d+)/.exec(rest);
      if (apt) rest = rest.replace(`apt=${apt[1]}`, `apt=${renumber.get(apt[1])}`);
      out.push(`a=${codecLine[1]}:${renumber.get(codecLine[2])}${rest}`);
      continue;
    }
    out.push(line);
  }
  return out.join("\r\n");
}

/* Offers are made and answered between two frames (`link.inbox`): never while another
 * description is being set. */
async function offer(link) {
  const pc = link.pc;
  const description = await pc.createOffer();
  await pc.setLocalDescription({type: "offer", sdp: inServerNumbers(description.sdp)});
  send({type: "offer", sdp: pc.localDescription.sdp});
}

/* The server's offer: answered always (polite), rolling back an offer of ours; then our
 * own tracks are offered again if that offer was lost. */
async function answerOffer(link, sdp) {
  const pc = link.pc;
  if (!pc) return;
  if (pc.signalingState === "have-local-offer") await pc.setLocalDescription({type: "rollback"});
  await pc.setRemoteDescription({type: "offer", sdp});
  await pc.setLocalDescription();
  send({type: "answer", sdp: pc.localDescription.sdp});
  if (unnegotiated(link)) await offer(link);
}

/* Whether a track of ours has not been negotiated yet (its offer was rolled back). */
function unnegotiated(link) {
  return link.pc.signalingState === "stable"
    && link.pc.getTransceivers().some((tr) => tr.sender.track && !tr.currentDirection);
}

function countTracks() {
  const counts = {audio: 0, video: 0};
  for (const person of people.values()) {
    if (!person.stream) continue;
    for (const track of person.stream.getTracks()) {
      if (track.readyState === "live") counts[track.kind] += 1;
    }
  }
  hook.remoteTracks = counts;
}

async function readStats(link) {
  if (call !== link || !link.pc) return;
  try {
    const report = await link.pc.getStats();
    let frames = 0;
    let packets = 0;
    let level = 0;
    const sent = {audio: 0, video: 0};
    report.forEach((stat) => {
      if (stat.type === "outbound-rtp" && stat.kind in sent) sent[stat.kind] += stat.packetsSent || 0;
      if (stat.type !== "inbound-rtp") return;
      if (stat.kind === "video") frames += stat.framesDecoded || 0;
      if (stat.kind === "audio") {
        packets += stat.packetsReceived || 0;
        level = Math.max(level, stat.audioLevel || 0);
      }
    });
    hook.framesDecoded = frames;
    hook.audioPacketsReceived = packets;
    hook.audioLevel = level;
    hook.packetsSent = sent;
    countTracks();
  } catch (err) {
    console.warn("wavepick: stats", err);
  }
}

function leave() {
  const link = call;
  if (!link) return;
  link.leaving = true;
  if (!send({type: "leave"})) closed(link, 1000);
}

/* The socket closed: after `leave` (1000) the call is over; anything else says why. */
function closed(link, code) {
  if (call !== link) return;
  call = null;
  clearInterval(link.stats);
  if (link.pc) link.pc.close();
  for (const id of [...people.keys()]) removePerson(id);
  hook.participants = [];
  hook.remoteTracks = {audio: 0, video: 0};
  el.leave.hidden = true;
  el.rejoin.hidden = false;
  if (link.leaving && (code === 1000 || code === 1005)) {
    hook.state = "left";
    stopMedia();
    renderStatus();
    el.rejoin.focus();
    return;
  }
  if (code === 4401) {
    sessionStorage.removeItem(TOKEN_KEY);
    stopMedia();
    showSignIn(t("sessionExpired"));
    return;
  }
  const refusal = link.refusal || {code: `closed_${code}`, message: `closed with ${code}`};
  fail({...refusal, closeCode: code}, CLOSE_ERRORS[code] || "e_connection");
}

function fail(error, key, values) {
  hook.state = "error";
  hook.lastError = {...error, messageKey: key, values: values || null};
  renderStatus();
  renderError();
  el.leave.hidden = true;
  el.rejoin.hidden = !roomId;
}

async function rejoin() {
  if (!local) await startMedia();
  join();
}

/* ---------- participants ---------- */

function addPerson(person) {
  const known = people.get(person.id) || {};
  people.set(person.id, {...known, ...person});
  renderPeople();
}

function removePerson(id) {
  const person = people.get(id);
  if (!person) return;
  if (person.tile) {
    person.video.srcObject = null;
    person.tile.remove();
  }
  people.delete(id);
  renderPeople();
  countTracks();
}

function attachStream(id, stream) {
  const person = people.get(id) || {id, display_name: "", user: ""};
  person.stream = stream;
  people.set(id, person);
  renderPeople();
  if (person.video.srcObject !== stream) person.video.srcObject = stream;
  person.video.play().catch((err) => console.info("wavepick: playback waits for a tap", err.name));
  stream.onremovetrack = countTracks;
}

function renderPeople() {
  for (const [id, person] of people) {
    if (!person.tile) {
      const tile = document.createElement("li");
      tile.className = "tile";
      tile.dataset.participant = id;
      const figure = document.createElement("figure");
      const video = document.createElement("video");
      video.autoplay = true;
      video.playsInline = true;
      video.muted = shelf;
      const caption = document.createElement("figcaption");
      figure.append(video, caption);
      tile.append(figure);
      el.grid.append(tile);
      Object.assign(person, {tile, video, caption});
    }
    renderPerson(id, person);
  }
  el.alone.hidden = people.size > 0;
  el.grid.dataset.count = String(people.size);
  hook.participants = [...people.values()].map((p) => ({
    id: p.id, user: p.user, display_name: p.display_name, role: p.role,
  }));
}

function renderPerson(id, person) {
  if (!person.caption) return;
  const name = person.display_name || person.user || id;
  person.caption.textContent = name;
  person.video.setAttribute("aria-label", name);
}

/* ---------- rendering ---------- */

function renderStatus() {
  const key = {connecting: "connecting", joined: "joined", left: "left"}[hook.state];
  el.status.dataset.state = hook.state;
  el.status.textContent = key ? t(key) : "";
}

function renderError() {
  const error = hook.lastError;
  if (!error || !error.messageKey) {
    if (!error) el.error.hidden = true;
    return;
  }
  el.error.hidden = false;
  el.error.textContent = t(error.messageKey, error.values || {});
}

function renderException() {
  el.exceptionPanel.hidden = !exception;
  if (!exception) return;
  const kindKey = `kind_${exception.kind}`;
  el.exceptionKind.textContent = MESSAGES["en-US"][kindKey] ? t(kindKey) : exception.kind;
  el.exceptionNote.textContent = exception.note || "—";
  el.exceptionReporter.textContent = exception.reported_by;
  el.exceptionWarehouse.textContent = exception.warehouse;
  // the server's times are UTC; shown in the viewer's own time zone
  const iso = /[zZ]|[+-]\d\d:?\d\d$/.test(exception.created_at)
    ? exception.created_at : `${exception.created_at}Z`;
  const when = new Date(iso);
  el.exceptionCreated.dateTime = when.toISOString();
  el.exceptionCreated.textContent = new Intl.DateTimeFormat(locale, {
    year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit",
    timeZoneName: "short",
  }).format(when);
  renderDecision();
}

/* ---------- settling the exception from the call ---------- */

/* The outcomes this exception allows: a line's stock needs its line, a hand-over its
 * assignment, writing a short off a short. */
function outcomesFor(item) {
  const all = ["noted", "short_accepted", "adjusted", "recount", "reassigned"];
  return all.filter((outcome) => {
    if (outcome === "reassigned") return Boolean(item.assignment);
    if (outcome === "noted") return true;
    if (!item.pick_line) return false;
    return outcome !== "short_accepted" || item.kind === "short";
  });
}

function renderDecision() {
  const open = exception && exception.status === "open";
  el.decideForm.hidden = !open;
  el.decided.hidden = open || !exception || !exception.resolved_by;
  if (exception && exception.resolved_by) {
    el.decided.textContent = t("decided", {who: exception.resolved_by, what: exception.resolution || ""});
  }
  if (!open) return;
  const chosen = el.decideOutcome.value;
  el.decideOutcome.replaceChildren(...outcomesFor(exception).map((value) => {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = t(`outcome_${value}`);
    return option;
  }));
  if ([...el.decideOutcome.options].some((o) => o.value === chosen)) el.decideOutcome.value = chosen;
  showDecisionFields();
}

function showDecisionFields() {
  el.decideAdjust.hidden = el.decideOutcome.value !== "adjusted";
  el.decideHandover.hidden = el.decideOutcome.value !== "reassigned";
}

async function settle(event) {
  event.preventDefault();
  const say = (message) => {
    el.decideMessage.textContent = message;
    el.decideMessage.hidden = !message;
  };
  const resolution = el.decideResolution.value.trim();
  if (!resolution) {
    say(t("needResolution"));
    el.decideResolution.focus();
    return;
  }
  const body = {resolution, outcome: el.decideOutcome.value};
  if (body.outcome === "adjusted") {
    if (el.decideQuantity.value !== "") body.quantity = Number(el.decideQuantity.value);
    body.reason = el.decideReason.value;
  }
  if (body.outcome === "reassigned") body.picker = el.decidePicker.value.trim() || null;
  say("");
  el.decideButton.disabled = true;
  try {
    const response = await api(`/api/v1/exceptions/${exception.id}/resolve`, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok) {
      say(answer.detail || answer.title || `HTTP ${response.status}`);
      return;
    }
    exception = answer;
    hook.decision = answer;
    renderException();
  } catch (err) {
    say(String(err.message || err));
  } finally {
    el.decideButton.disabled = false;
  }
}

/* ---------- wiring ---------- */

function wire() {
  el.form.addEventListener("submit", signIn);
  el.locale.addEventListener("change", () => setLocale(el.locale.value));
  el.callLocale.addEventListener("change", () => setLocale(el.callLocale.value));
  el.pickForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = el.roomInput.value.trim();
    if (!/^[0-9]+$/.test(value)) {
      el.roomInput.focus();
      return;
    }
    const url = new URL(location.href);
    url.searchParams.set("room", value);
    location.assign(url);
  });
  el.controls = $("controls");
  el.controls.addEventListener("submit", (event) => event.preventDefault());
  el.muteAudio.addEventListener("click", () => toggleMute("audio"));
  el.muteVideo.addEventListener("click", () => toggleMute("video"));
  el.flipCamera.addEventListener("click", flipCamera);
  el.decideForm.addEventListener("submit", settle);
  el.decideOutcome.addEventListener("change", showDecisionFields);
  el.leave.addEventListener("click", leave);
  el.rejoin.addEventListener("click", rejoin);
  el.cameraSelect.addEventListener("change", () => chooseDevice("video", el.cameraSelect, CAMERA_KEY));
  el.micSelect.addEventListener("change", () => chooseDevice("audio", el.micSelect, MIC_KEY));
  if (navigator.mediaDevices) {
    navigator.mediaDevices.addEventListener("devicechange", () => {
      fillDeviceSelects().catch((err) => console.warn("wavepick: devices", err));
    });
  }
  // a browser that blocked autoplay plays the call on the first tap
  document.addEventListener("pointerdown", () => {
    for (const person of people.values()) {
      if (person.video && person.video.paused && person.stream) person.video.play().catch(() => {});
    }
  }, {capture: true});
  window.addEventListener("pagehide", () => {
    if (call) send({type: "leave"});
  });
}

wire();
applyLocale();
start();
