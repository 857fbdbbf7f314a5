/*
 * Iesaiste web chat: the browser side.
 *
 * Plain script, no dependencies. Talks JSON over a WebSocket at /ws on the
 * page's own host. Server text is only ever rendered with textContent.
 *
 * Client -> server frames:
 *   {"type": "text", "id": uuid, "text": "..."}
 *   {"type": "button", "id": uuid, "payload": "...", "message_id": "m-1"}
 *   {"type": "location", "id": uuid, "latitude": 56.95, "longitude": 24.1}
 *   {"type": "photo", "id": uuid, "photo": token, "text": "caption"}
 *     (token: the answer {"photo": token} to POST /webchat/photo with the image as body)
 * Server -> client frames:
 *   {"type": "ui", "lang": "lv", "strings": {...}}
 *   {"type": "message", "id": "m-1", "text": "...", "buttons": [[{label, payload}]],
 *    "image": "", "request_location": false, "replace": null | "m-0"}
 *   {"type": "error", "text": "..."}
 *   {"type": "not_sent", "id": uuid}  (the frame with that id was not taken: the bot's
 *     database was away; the page marks it and offers to send it again, same id)
 * A socket closed with code 4001 means the resident was forgotten (/mydata): the
 * page asks POST /session for a fresh cookie, then connects again as nobody yet.
 */
(function () {
  "use strict";

  var DEFAULT_STRINGS = {
    title: "Iesaiste",
    placeholder: "Rakstiet ziņu…",
    send: "Sūtīt",
    connecting: "Savienojas…",
    offline: "Savienojums pārtrūka. Mēģinām vēlreiz…",
    share_location: "Kopīgot atrašanās vietu",
    log_label: "Sarakste",
    input_label: "Jūsu ziņa",
    attach_photo: "Pievienot foto",
    photo: "Foto",
    photo_too_large: "Šis foto ir lielāks par 10 MB. Lūdzu, izvēlieties mazāku.",
    photo_not_image: "Šis fails nav foto. Lūdzu, izvēlieties foto.",
    photo_failed: "Foto neizdevās nosūtīt. Lūdzu, mēģiniet vēlreiz.",
    not_sent: "Nav nosūtīts: mums ir tehniska problēma. Lūdzu, mēģiniet vēlreiz pēc minūtes.",
    send_again: "Sūtīt vēlreiz"
  };

  var BUSY_MS = 1500;          // how long a message's buttons stay disabled after a press
  var BACKOFF_MIN_MS = 1000;   // 1s, 2s, 4s, 8s, 15s, 15s, ...
  var BACKOFF_MAX_MS = 15000;
  var MAX_INPUT_PX = 160;      // the text box grows up to this height, then scrolls
  var RENEW_CLOSE = 4001;      // the server forgot this resident: get a new cookie first
  var MAX_PHOTO_BYTES = 10 * 1024 * 1024; // the server's cap: a larger photo is not sent

  var strings = Object.assign({}, DEFAULT_STRINGS);

  var log, statusEl, form, input, inputLabel, sendBtn, titleEl, attachBtn, photoInput;

  var ws = null;
  var online = false;
  var connState = "connecting";   // "connecting" | "online" | "offline"
  var attempts = 0;
  var reconnectTimer = null;
  var leaving = false;
  var renewing = false;           // a fresh cookie is needed before the next connect

  var byId = new Map();           // bot message id -> element
  var busyTimers = new WeakMap(); // message element -> timeout id
  var textSeq = 0;
  var sentFrames = new Map();     // frame id -> {frame, node}: what "Send again" resends
  var SENT_KEPT = 50;             // the newest frames kept for that

  var reducedMotion = window.matchMedia
    ? window.matchMedia("(prefers-reduced-motion: reduce)")
    : { matches: false };

  /* ------------------------------------------------------------------ ids */

  function uuid() {
    var c = window.crypto;
    if (c && typeof c.randomUUID === "function") {
      try { return c.randomUUID(); } catch (e) { /* insecure context: fall through */ }
    }
    var b = new Uint8Array(16);
    if (c && typeof c.getRandomValues === "function") {
      c.getRandomValues(b);
    } else {
      for (var i = 0; i < 16; i++) { b[i] = Math.floor(Math.random() * 256); }
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = [];
    for (var j = 0; j < 16; j++) { h.push((b[j] + 0x100).toString(16).slice(1)); }
    return h.slice(0, 4).join("") + "-" + h.slice(4, 6).join("") + "-" +
      h.slice(6, 8).join("") + "-" + h.slice(8, 10).join("") + "-" + h.slice(10).join("");
  }

  /* ------------------------------------------------------------ helpers */

  function el(tag, className) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    return node;
  }

  function asString(value) {
    return typeof value === "string" ? value : (value == null ? "" : String(value));
  }

  // Append text to a node, turning plain http(s) URLs into links. Only
  // textContent and the href property are ever set from server text.
  var URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/gi;
  var TRAILING_RE = /[.,;:!?…'"»”’)\]}]+$/;

  function appendRichText(parent, text) {
    var last = 0;
    var match;
    URL_RE.lastIndex = 0;
    while ((match = URL_RE.exec(text)) !== null) {
      var raw = match[0];
      var trail = TRAILING_RE.exec(raw);
      var urlText = trail ? raw.slice(0, raw.length - trail[0].length) : raw;
      // Keep a closing parenthesis that belongs to the URL, e.g. wiki links.
      while (trail && trail[0].charAt(0) === ")" &&
             countChar(urlText, "(") > countChar(urlText, ")")) {
        urlText += ")";
        trail[0] = trail[0].slice(1);
      }
      var href = safeHttpUrl(urlText);
      if (!href) { continue; }
      if (match.index > last) {
        parent.appendChild(document.createTextNode(text.slice(last, match.index)));
      }
      var a = el("a", "link");
      a.href = href;
      a.textContent = urlText;
      a.target = "_blank";
      a.rel = "noopener noreferrer nofollow";
      parent.appendChild(a);
      last = match.index + urlText.length;
      URL_RE.lastIndex = last;
    }
    if (last < text.length) {
      parent.appendChild(document.createTextNode(text.slice(last)));
    }
  }

  function countChar(s, ch) {
    var n = 0;
    for (var i = 0; i < s.length; i++) { if (s.charAt(i) === ch) { n++; } }
    return n;
  }

  function safeHttpUrl(candidate) {
    try {
      var u = new URL(candidate);
      return (u.protocol === "http:" || u.protocol === "https:") ? u.href : "";
    } catch (e) {
      return "";
    }
  }

  function safeImageUrl(candidate) {
    if (!candidate) { return ""; }
    try {
      var u = new URL(candidate, window.location.href);
      if (u.protocol === "http:" || u.protocol === "https:") { return u.href; }
      if (u.protocol === "data:" && /^data:image\//i.test(candidate)) { return candidate; }
    } catch (e) { /* ignore */ }
    return "";
  }

  /* ------------------------------------------------------------ scrolling */

  function scrollBehavior() {
    return reducedMotion.matches ? "auto" : "smooth";
  }

  // Bring a message into view inside the log without scrolling the page:
  // show its end, unless it is taller than the log, then show its start.
  function scrollIntoLog(node) {
    if (!node || !node.isConnected) { return; }
    var pad = 12;
    var top = node.offsetTop - pad;
    var bottom = node.offsetTop + node.offsetHeight + pad - log.clientHeight;
    var target = Math.max(0, Math.min(top, bottom));
    if (typeof log.scrollTo === "function") {
      log.scrollTo({ top: target, behavior: scrollBehavior() });
    } else {
      log.scrollTop = target;
    }
  }

  function isLastMessage(node) {
    return node === log.lastElementChild;
  }

  /* ------------------------------------------------------------- status */

  function renderStatus() {
    if (connState === "online") {
      statusEl.textContent = "";
    } else {
      statusEl.textContent = strings[connState] || DEFAULT_STRINGS[connState] || "";
    }
    statusEl.setAttribute("data-state", connState);
  }

  function setConnState(state) {
    connState = state;
    online = state === "online";
    sendBtn.disabled = !online;
    document.documentElement.setAttribute("data-connection", state);
    renderStatus();
    var msgs = log.querySelectorAll(".msg--bot");
    for (var i = 0; i < msgs.length; i++) { updateButtons(msgs[i]); }
  }

  /* -------------------------------------------------------------- ui frame */

  function applyUi(frame) {
    var s = frame.strings;
    if (s && typeof s === "object") {
      Object.keys(s).forEach(function (key) {
        if (typeof s[key] === "string" && s[key] !== "") { strings[key] = s[key]; }
      });
    }
    if (typeof frame.lang === "string" && /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/.test(frame.lang)) {
      document.documentElement.lang = frame.lang;
    }
    renderStrings();
  }

  function renderStrings() {
    document.title = strings.title;
    titleEl.textContent = strings.title;
    input.placeholder = strings.placeholder;
    inputLabel.textContent = strings.input_label;
    sendBtn.textContent = strings.send;
    if (attachBtn) {
      attachBtn.setAttribute("aria-label", strings.attach_photo);
      attachBtn.title = strings.attach_photo;
    }
    log.setAttribute("aria-label", strings.log_label);
    var shares = log.querySelectorAll(".share-location");
    for (var i = 0; i < shares.length; i++) { shares[i].textContent = strings.share_location; }
    renderStatus();
  }

  /* ------------------------------------------------------------- messages */

  function buildBotContent(node, msg) {
    var text = asString(msg.text);
    node.textContent = "";
    node.removeAttribute("role");
    node.removeAttribute("aria-labelledby");

    var bubble = el("div", "bubble");
    var image = safeImageUrl(asString(msg.image));
    if (image) {
      var img = el("img", "msg-image");
      img.alt = text;
      img.decoding = "async";
      img.src = image;
      img.addEventListener("load", function () {
        if (isLastMessage(node)) { scrollIntoLog(node); }
      });
      img.addEventListener("error", function () { img.remove(); });
      bubble.appendChild(img);
    }
    var textId = "t-" + (++textSeq);
    if (text) {
      var p = el("p", "text");
      p.id = textId;
      appendRichText(p, text);
      bubble.appendChild(p);
    }
    if (image || text) { node.appendChild(bubble); }

    var rows = Array.isArray(msg.buttons) ? msg.buttons : [];
    var actions = el("div", "actions");
    var count = 0;
    rows.forEach(function (row) {
      if (!Array.isArray(row)) { row = [row]; }
      var rowEl = el("div", "actions-row");
      row.forEach(function (b) {
        if (!b || typeof b !== "object") { return; }
        var label = asString(b.label);
        if (!label) { return; }
        var btn = el("button", "choice");
        btn.type = "button";
        btn.textContent = label;
        btn.setAttribute("data-payload", asString(b.payload));
        rowEl.appendChild(btn);
        count++;
      });
      if (rowEl.childElementCount) { actions.appendChild(rowEl); }
    });

    if (msg.request_location === true && navigator.geolocation) {
      var share = el("button", "share-location");
      share.type = "button";
      share.textContent = strings.share_location;
      share.setAttribute("data-testid", "share-location");
      var shareRow = el("div", "actions-row");
      shareRow.appendChild(share);
      actions.appendChild(shareRow);
      count++;
    }

    if (count) {
      node.appendChild(actions);
      node.setAttribute("role", "group");
      if (text) { node.setAttribute("aria-labelledby", textId); }
    }
    updateButtons(node);
  }

  function handleMessage(msg) {
    var id = asString(msg.id);
    var replaceId = msg.replace == null ? "" : asString(msg.replace);
    var target = null;
    if (replaceId && byId.has(replaceId)) {
      target = byId.get(replaceId);
    } else if (id && byId.has(id)) {
      target = byId.get(id); // a re-delivery of a message we already show
    }

    if (target && target.isConnected) {
      var hadFocus = target.contains(document.activeElement);
      var focusedPayload = hadFocus ? document.activeElement.getAttribute("data-payload") : null;
      clearBusy(target);
      for (var [key, value] of byId) {
        if (value === target) { byId.delete(key); }
      }
      buildBotContent(target, msg);
      setMessageId(target, id);
      if (hadFocus) { restoreFocus(target, focusedPayload); }
      if (isLastMessage(target)) { scrollIntoLog(target); }
      return;
    }

    var node = el("div", "msg msg--bot");
    node.setAttribute("data-role", "bot");
    buildBotContent(node, msg);
    setMessageId(node, id);
    log.appendChild(node);
    scrollIntoLog(node);
  }

  function setMessageId(node, id) {
    if (id) {
      node.setAttribute("data-message-id", id);
      byId.set(id, node);
    } else {
      node.removeAttribute("data-message-id");
    }
  }

  // Focus was inside a message whose content was just replaced: keep the
  // keyboard user on the same button (a topic they just toggled), else on
  // the first one, rather than losing focus to <body>.
  function restoreFocus(node, payload) {
    var same = null;
    node.querySelectorAll("button[data-payload]").forEach(function (button) {
      if (!same && payload && button.getAttribute("data-payload") === payload) { same = button; }
    });
    var first = same || node.querySelector("button");
    if (first) {
      first.focus({ preventScroll: true });
    } else {
      node.setAttribute("tabindex", "-1");
      node.focus({ preventScroll: true });
    }
  }

  function handleError(frame) {
    var node = el("div", "msg msg--error");
    node.setAttribute("data-role", "error");
    node.setAttribute("role", "alert");
    var p = el("p", "text");
    p.textContent = asString(frame.text);
    node.appendChild(p);
    log.appendChild(node);
    scrollIntoLog(node);
  }

  function appendUser(text, frame) {
    var node = el("div", "msg msg--user");
    node.setAttribute("data-role", "user");
    var bubble = el("div", "bubble");
    var p = el("p", "text");
    p.textContent = text;
    bubble.appendChild(p);
    node.appendChild(bubble);
    log.appendChild(node);
    scrollIntoLog(node);
    if (frame) {
      sentFrames.set(frame.id, { frame: frame, node: node });
      if (sentFrames.size > SENT_KEPT) { sentFrames.delete(sentFrames.keys().next().value); }
    }
    return node;
  }

  // The bot could not take a frame now: the message is marked, with a button that sends
  // the very same frame again (the same id, so it can never count twice).
  function handleNotSent(frame) {
    var entry = sentFrames.get(asString(frame.id));
    if (!entry) { handleError({ text: strings.not_sent }); return; }
    var node = entry.node;
    var old = node.querySelector(".not-sent");
    if (old) { old.remove(); }
    node.classList.add("msg--not-sent");
    var box = el("div", "not-sent");
    box.setAttribute("role", "alert");
    var p = el("p", "text");
    p.textContent = strings.not_sent;
    var again = el("button", "send-again");
    again.type = "button";
    again.textContent = strings.send_again;
    again.addEventListener("click", function () {
      if (!sendFrame(entry.frame)) { return; } // offline: the button stays
      box.remove();
      node.classList.remove("msg--not-sent");
    });
    box.appendChild(p);
    box.appendChild(again);
    node.appendChild(box);
    scrollIntoLog(node);
  }

  /* -------------------------------------------------------------- buttons */

  function updateButtons(node) {
    var off = !online || node.getAttribute("data-busy") === "true";
    var buttons = node.querySelectorAll("button.choice, button.share-location");
    for (var i = 0; i < buttons.length; i++) {
      var b = buttons[i];
      var pending = b.getAttribute("data-pending") === "true";
      // aria-disabled (not the disabled property) keeps keyboard focus on the
      // button the resident just pressed; clicks are ignored while it is set.
      if (off || pending) {
        b.setAttribute("aria-disabled", "true");
      } else {
        b.removeAttribute("aria-disabled");
      }
    }
  }

  function setBusy(node) {
    clearBusy(node);
    node.setAttribute("data-busy", "true");
    updateButtons(node);
    busyTimers.set(node, window.setTimeout(function () {
      busyTimers.delete(node);
      node.removeAttribute("data-busy");
      updateButtons(node);
    }, BUSY_MS));
  }

  function clearBusy(node) {
    var t = busyTimers.get(node);
    if (t) { window.clearTimeout(t); busyTimers.delete(node); }
    node.removeAttribute("data-busy");
  }

  function onChoice(btn) {
    var node = btn.closest(".msg--bot");
    if (!node || btn.getAttribute("aria-disabled") === "true") { return; }
    var frame = {
      type: "button",
      id: uuid(),
      payload: btn.getAttribute("data-payload") || "",
      message_id: node.getAttribute("data-message-id") || ""
    };
    if (!sendFrame(frame)) { return; }
    appendUser(btn.textContent, frame);
    setBusy(node);
  }

  function onShareLocation(btn) {
    if (btn.getAttribute("aria-disabled") === "true") { return; }
    if (!navigator.geolocation) { hideShare(btn); return; }
    btn.setAttribute("data-pending", "true");
    btn.setAttribute("aria-busy", "true");
    updateButtons(btn.closest(".msg--bot") || log);

    navigator.geolocation.getCurrentPosition(function (pos) {
      var lat = pos.coords.latitude;
      var lon = pos.coords.longitude;
      var frame = { type: "location", id: uuid(), latitude: lat, longitude: lon };
      if (sendFrame(frame)) {
        appendUser(strings.share_location + "\n" + lat.toFixed(5) + ", " + lon.toFixed(5), frame);
        hideShare(btn);
      } else {
        unpend(btn);
      }
    }, function (err) {
      if (err && err.code === 1) {
        hideShare(btn);      // permission denied: offer nothing further
      } else {
        unpend(btn);         // unavailable or timed out: the resident may retry
      }
    }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 });
  }

  function unpend(btn) {
    btn.removeAttribute("data-pending");
    btn.removeAttribute("aria-busy");
    var node = btn.closest(".msg--bot");
    if (node) { updateButtons(node); }
  }

  function hideShare(btn) {
    var hadFocus = document.activeElement === btn;
    var row = btn.parentNode;
    var node = btn.closest(".msg--bot");
    btn.remove();
    if (row && row.childElementCount === 0) {
      var actions = row.parentNode;
      row.remove();
      if (actions && actions.childElementCount === 0) {
        actions.remove();
        if (node) { node.removeAttribute("role"); node.removeAttribute("aria-labelledby"); }
      }
    }
    if (hadFocus) { input.focus({ preventScroll: true }); }
  }

  /* ---------------------------------------------------------------- input */

  function autosize() {
    input.style.height = "auto";
    var h = Math.min(input.scrollHeight + (input.offsetHeight - input.clientHeight), MAX_INPUT_PX);
    input.style.height = h + "px";
    input.style.overflowY = input.scrollHeight > MAX_INPUT_PX ? "auto" : "hidden";
  }

  function sendText() {
    var text = input.value.trim();
    if (!text) { return; }
    var frame = { type: "text", id: uuid(), text: text };
    if (!sendFrame(frame)) {
      return; // offline: the text stays in the box
    }
    appendUser(text, frame);
    input.value = "";
    autosize();
    input.focus();
  }

  /* --------------------------------------------------------------- photos */

  // The photo goes up over HTTP (a WebSocket frame would have to hold 10 MB); the
  // frame then names the upload, with the text box's content as its caption.
  function onPhotoChosen() {
    var file = photoInput.files && photoInput.files[0];
    photoInput.value = "";
    if (!file) { return; }
    if (file.size > MAX_PHOTO_BYTES) { handleError({ text: strings.photo_too_large }); return; }
    if (file.type && !/^image\//i.test(file.type)) {
      handleError({ text: strings.photo_not_image });
      return;
    }
    if (!online) { handleError({ text: strings.photo_failed }); return; }
    var caption = input.value.trim();
    attachBtn.disabled = true;
    fetch("/webchat/photo", {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Content-Type": file.type || "application/octet-stream" },
      body: file
    })
      .then(function (response) {
        if (response.status === 413) { throw new Error("photo_too_large"); }
        if (response.status === 415) { throw new Error("photo_not_image"); }
        if (!response.ok) { throw new Error("photo_failed"); }
        return response.json();
      })
      .then(function (answer) {
        var token = answer && typeof answer.photo === "string" ? answer.photo : "";
        var frame = { type: "photo", id: uuid(), photo: token, text: caption };
        if (!token || !sendFrame(frame)) {
          throw new Error("photo_failed");
        }
        appendUser("📷 " + (caption || strings.photo), frame);
        if (caption && input.value.trim() === caption) { input.value = ""; autosize(); }
      })
      .catch(function (error) {
        var key = error && error.message;
        handleError({ text: strings[key] && /^photo_/.test(key) ? strings[key] : strings.photo_failed });
      })
      .then(function () {
        attachBtn.disabled = false;
        attachBtn.focus({ preventScroll: true });
      });
  }

  /* ------------------------------------------------------------ websocket */

  function sendFrame(obj) {
    if (!online || !ws || ws.readyState !== WebSocket.OPEN) { return false; }
    try {
      ws.send(JSON.stringify(obj));
      return true;
    } catch (e) {
      return false;
    }
  }

  function handleFrame(data) {
    if (typeof data !== "string") { return; }
    var frame;
    try { frame = JSON.parse(data); } catch (e) { return; }
    if (!frame || typeof frame !== "object") { return; }
    switch (frame.type) {
      case "ui": applyUi(frame); break;
      case "message": handleMessage(frame); break;
      case "error": handleError(frame); break;
      case "not_sent": handleNotSent(frame); break;
      default: break; // unknown frames are ignored, for forward compatibility
    }
  }

  function socketUrl() {
    var proto = window.location.protocol === "https:" ? "wss:" : "ws:";
    return proto + "//" + window.location.host + "/ws";
  }

  // The old cookie names a resident who no longer exists; the server sets a new one.
  function renewCookie() {
    fetch("/session", { method: "POST", credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        // 409: somebody is behind the cookie after all (another tab wrote): keep it.
        if (!response.ok && response.status !== 409) { throw new Error("HTTP " + response.status); }
        renewing = false;
        connect();
      })
      .catch(function () {
        setConnState("offline");
        scheduleReconnect();
      });
  }

  function connect() {
    if (reconnectTimer) { window.clearTimeout(reconnectTimer); reconnectTimer = null; }
    if (leaving || ws) { return; }
    if (renewing) { renewCookie(); return; }
    var sock;
    try {
      sock = new WebSocket(socketUrl());
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws = sock;
    sock.onopen = function () {
      if (ws !== sock) { return; }
      attempts = 0;
      setConnState("online");
    };
    sock.onmessage = function (ev) {
      if (ws !== sock) { return; }
      handleFrame(ev.data);
    };
    sock.onerror = function () { /* a close event follows */ };
    sock.onclose = function (ev) {
      if (ws !== sock) { return; }
      ws = null;
      if (leaving) { return; }
      if (ev.code === RENEW_CLOSE) {
        renewing = true;
        setConnState("connecting");
        connect();
        return;
      }
      setConnState("offline");
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (reconnectTimer || leaving) { return; }
    var delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, attempts));
    attempts++;
    reconnectTimer = window.setTimeout(function () {
      reconnectTimer = null;
      connect();
    }, delay);
  }

  // The resident came back (network returned, tab shown): try now rather
  // than waiting out the backoff.
  function reconnectNow() {
    if (!ws && !leaving && reconnectTimer) { connect(); }
  }

  /* ----------------------------------------------------------------- init */

  function init() {
    log = document.getElementById("log");
    statusEl = document.getElementById("status");
    form = document.getElementById("composer");
    input = document.getElementById("input");
    inputLabel = document.getElementById("input-label");
    sendBtn = document.getElementById("send");
    titleEl = document.getElementById("title");
    attachBtn = document.getElementById("attach");
    photoInput = document.getElementById("photo-input");
    if (!log || !form || !input || !sendBtn) { return; }

    renderStrings();
    setConnState("connecting");

    form.addEventListener("submit", function (e) {
      e.preventDefault();
      sendText();
    });

    input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        sendText();
      }
    });
    input.addEventListener("input", autosize);

    if (attachBtn && photoInput) {
      // A real button opens the chooser, so Tab and Enter reach it like any other.
      attachBtn.addEventListener("click", function () { photoInput.click(); });
      // Chromium does not always open a chooser from the click that Enter makes of a
      // key press: Enter opens it when the key is released, as Space does.
      var enterDown = false; // pressed here: an Enter released after focus moved in is not
      attachBtn.addEventListener("keydown", function (e) {
        if (e.key === "Enter") { e.preventDefault(); enterDown = true; }
      });
      attachBtn.addEventListener("blur", function () { enterDown = false; });
      attachBtn.addEventListener("keyup", function (e) {
        if (e.key === "Enter" && enterDown && !attachBtn.disabled) {
          e.preventDefault();
          photoInput.click();
        }
        if (e.key === "Enter") { enterDown = false; }
      });
      photoInput.addEventListener("change", onPhotoChosen);
    }

    log.addEventListener("click", function (e) {
      var btn = e.target instanceof Element ? e.target.closest("button") : null;
      if (!btn || !log.contains(btn)) { return; }
      if (btn.classList.contains("choice")) {
        onChoice(btn);
      } else if (btn.classList.contains("share-location")) {
        onShareLocation(btn);
      }
    });

    window.addEventListener("online", reconnectNow);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") { reconnectNow(); }
    });
    window.addEventListener("pagehide", function () {
      leaving = true;
      if (reconnectTimer) { window.clearTimeout(reconnectTimer); reconnectTimer = null; }
      if (ws) { var s = ws; ws = null; try { s.close(1000); } catch (e) { /* ignore */ } }
    });
    window.addEventListener("pageshow", function (e) {
      if (e.persisted) {
        leaving = false;
        setConnState("connecting");
        connect();
      }
    });

    autosize();
    if (window.matchMedia && window.matchMedia("(hover: hover) and (pointer: fine)").matches) {
      input.focus({ preventScroll: true });
    }
    connect();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
