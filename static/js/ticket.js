// The ticket page: 定型文 search with preview and insert, the reply box's checks, the delivery
// state of replies, and who else is viewing/editing.
// Canned text is plain text: it goes into the textarea's value and the preview's textContent,
// never into innerHTML.

import { liveSocket } from "./live-socket.js";

const canned = document.getElementById("canned");
const body = document.getElementById("reply-body");

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

if (canned && body) {
  const box = document.getElementById("canned-q");
  const list = document.getElementById("canned-list");
  const faq = document.getElementById("faq-list");
  const preview = document.getElementById("canned-preview");
  const title = document.getElementById("canned-title");
  const text = document.getElementById("canned-text");
  const missing = document.getElementById("canned-missing");
  const insert = document.getElementById("canned-insert");
  let chosen = null;
  let timer = null;

  function show(reply) {
    chosen = reply;
    title.textContent = `${reply.title}（${reply.scope}）`;
    text.textContent = reply.text;
    const actions = document.getElementById("canned-actions");
    if (actions) {
      actions.hidden = !reply.labels || reply.labels.length === 0;
      actions.textContent = actions.hidden ? "" : `挿入すると設定: ${reply.labels.join("・")}`;
    }
    missing.hidden = reply.missing.length === 0;
    missing.textContent = reply.missing.length
      ? `この問合せにない情報: ${reply.missing.map((m) => `{${m}}`).join(" ")}（挿入後に書き換えてください）`
      : "";
    preview.hidden = false;
  }

  async function load() {
    const response = await fetch(`${canned.dataset.url}?q=${encodeURIComponent(box.value)}`, {
      headers: { Accept: "application/json" },
    });
    if (!response.ok) return;
    const data = await response.json();
    list.replaceChildren(
      ...data.replies.map((reply, i) => {
        const item = el("li");
        const button = el("button", `${reply.title}`, "canned-item");
        button.type = "button";
        button.append(el("span", ` ${reply.scope}`, "muted"));
        button.addEventListener("click", () => show(reply));
        button.addEventListener("focus", () => show(reply));
        item.append(button);
        if (i === 0 && box.value) show(reply);
        return item;
      }),
    );
    if (!data.replies.length) list.append(el("li", "該当する定型文はありません。", "muted"));
    faq.replaceChildren(
      ...data.articles.map((article) => {
        const item = el("li");
        const details = el("details");
        details.append(el("summary", `よくある質問: ${article.title}`), el("pre", article.body));
        item.append(details);
        return item;
      }),
    );
  }

  box.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(load, 150);
  });
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.isComposing) {
      event.preventDefault();
      if (chosen) insert.click();
    } else if (event.key === "ArrowDown") {
      const first = list.querySelector("button");
      if (first) {
        event.preventDefault();
        first.focus();
      }
    }
  });
  insert.addEventListener("click", () => {
    if (!chosen) return;
    const start = body.selectionStart ?? body.value.length;
    body.value = body.value.slice(0, start) + chosen.text + body.value.slice(body.selectionEnd ?? start);
    // A canned text is written to the requester: switch to 返信 unless the agent chooses otherwise.
    const reply = document.querySelector('input[name=kind][value=reply]');
    if (reply) reply.checked = true;
    // A 定型文 that also acts on the ticket (a macro): the composer takes its settings.
    document.dispatchEvent(new CustomEvent("canned:inserted", { detail: chosen }));
    body.focus();
    body.dispatchEvent(new Event("input"));
  });
  load();
}

// --- composer: unfilled 定型文 variables ----------------------------------------------------
// The server refuses the same text with the same words; blocking here saves the round trip
// (and Ctrl+Enter right after inserting a 定型文 whose record the ticket lacks).
const replyForm = document.getElementById("reply-form");
const composerConfig = document.getElementById("composer-config");
if (replyForm && body && composerConfig) {
  const config = JSON.parse(composerConfig.textContent);
  const error = document.getElementById("reply-error");
  const placeholder = /\{([^{}\s]{1,20})\}/gu;

  function unfilled(value) {
    const names = [];
    for (const match of value.matchAll(placeholder)) {
      if (config.variables.includes(match[1]) && !names.includes(match[1])) names.push(match[1]);
    }
    return names;
  }

  replyForm.addEventListener("submit", (event) => {
    const names = unfilled(body.value);
    if (!names.length) return;
    event.preventDefault();
    error.textContent = config.unfilled_message.replace(
      "{names}",
      names.map((name) => `{${name}}`).join(" "),
    );
    error.hidden = false;
    body.focus();
  });
  body.addEventListener("input", () => {
    if (!error.hidden && !unfilled(body.value).length) error.hidden = true;
  });
}

// --- composer: delivery of replies ----------------------------------------------------------
// A reply's mail is sent by the mail worker after the page reloads; while one is waiting, the
// page asks for its state so a failure shows without reloading.
const deliveriesUrl = replyForm && replyForm.dataset.deliveriesUrl;
const deliveryAlert = document.getElementById("delivery-alert");
if (deliveriesUrl) {
  const waiting = '[data-delivery-state="pending"], [data-delivery-state="sending"], [data-delivery-state="retrying"]';
  let delay = 2000;

  async function poll() {
    if (!document.querySelector(waiting)) return;
    try {
      const response = await fetch(deliveriesUrl, { headers: { Accept: "application/json", "X-Background-Refresh": "1" } });
      if (response.ok) {
        const data = await response.json();
        for (const [id, delivery] of Object.entries(data.deliveries)) {
          const current = document.querySelector(`[data-delivery="${CSS.escape(id)}"]`);
          if (!current || current.dataset.deliveryState === delivery.status) continue;
          // Our own server-rendered, autoescaped partial (with the 再送 form), not canned text.
          const fragment = document.createElement("template");
          fragment.innerHTML = delivery.html.trim();
          current.replaceWith(fragment.content);
          if (delivery.status === "failed" && deliveryAlert) {
            deliveryAlert.textContent =
              "返信のメールを送信できませんでした。対応履歴の「送信失敗」を確認してください。";
            deliveryAlert.hidden = false;
          }
        }
      }
    } catch (err) {
      // Offline for a moment: the next round asks again.
    }
    delay = Math.min(delay * 1.5, 30000);
    setTimeout(poll, delay);
  }
  setTimeout(poll, delay);
}

// --- timeline -----------------------------------------------------------------------------
// Refetched when the ticket changed elsewhere (the city's instruction, say), so it reads the
// same as after a reload. Delivery states keep their own poll above.
const timelineSection = document.getElementById("timeline-section");

async function refreshTimeline() {
  if (!timelineSection) return;
  try {
    const response = await fetch(timelineSection.dataset.timelineUrl, {
      headers: { "X-Background-Refresh": "1" },
      credentials: "same-origin",
    });
    const current = document.getElementById("timeline");
    if (!response.ok || !current) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    const list = fresh.getElementById("timeline");
    if (list) current.replaceWith(document.importNode(list, true));
  } catch (_) {
    // offline for a moment: the next change or a reload shows it
  }
}

// --- presence -----------------------------------------------------------------------------
const presence = document.getElementById("presence");
if (presence && window.WebSocket) {
  const others = new Map(); // connection id → {name, state}
  let editing = false;

  function render() {
    const lines = Array.from(others.values()).map((o) =>
      o.state === "editing" ? `${o.name}さんが編集中です` : `${o.name}さんも表示しています`,
    );
    presence.textContent = lines.length ? `⚠ ${lines.join("・")}` : "";
    presence.hidden = lines.length === 0;
    presence.classList.toggle("editing", Array.from(others.values()).some((o) => o.state === "editing"));
  }

  // On (re)connect the server asks the others to announce themselves: the list rebuilds itself.
  const socket = liveSocket(presence.dataset.wsPath, {
    onOpen: () => {
      if (editing) socket.send({ state: "editing" });
    },
    onMessage: (msg) => {
      if (msg.type === "ticket_changed") {
        // The timeline shows the new entry; parts added by other apps (e.g. the escalation
        // panel) refresh themselves.
        refreshTimeline();
        document.dispatchEvent(new CustomEvent("ticket:changed", { detail: { part: msg.part } }));
        return;
      }
      if (msg.type !== "presence") return;
      if (msg.state === "left") others.delete(msg.conn);
      else others.set(msg.conn, { name: msg.name, state: msg.state });
      render();
    },
    onClose: () => {
      others.clear();
      render();
    },
  });

  if (body) {
    body.addEventListener("input", () => {
      const now = body.value.trim().length > 0;
      if (now !== editing) {
        editing = now;
        socket.send({ state: editing ? "editing" : "viewing" });
      }
    });
  }
}
