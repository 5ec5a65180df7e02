// The phone bar on every operator page: the agent's presence and the ringing call, over the
// agent's websocket (one per tab). On the console (#incoming-call) the full screen pop with the
// donor and the wrap-up form; elsewhere a compact pop (#phone-pop) linking to the console or the
// ticket. Everything from the server is inserted as text (never as HTML).

import { jaDate, jaDateTime, yen } from "./ja-format.js";
import { liveSocket } from "./live-socket.js";

const bar = document.getElementById("phone-bar");
const area = document.getElementById("incoming-call");
const compactArea = document.getElementById("phone-pop");
const csrf = bar ? bar.querySelector("input[name=csrfmiddlewaretoken]").value : "";
const STATE_LABELS = {
  available: "在席", ringing: "呼出中", on_call: "通話中", wrap_up: "後処理", break: "離席", offline: "ログオフ",
};
let currentCallId = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === "") continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function showPresence(state) {
  const label = document.getElementById("presence-state");
  if (!label) return;
  label.dataset.state = state;
  label.textContent = STATE_LABELS[state] || state;
  for (const button of bar.querySelectorAll("button[data-presence]")) {
    button.setAttribute("aria-pressed", String(button.dataset.presence === state));
  }
}

function postForm(url, data) {
  const body = new URLSearchParams(data);
  body.set("csrfmiddlewaretoken", csrf);
  return fetch(url, {
    method: "POST",
    body,
    credentials: "same-origin",
    headers: { Accept: "application/json", "X-CSRFToken": csrf },
  });
}

function startTicketForm(call, donorId, label) {
  const form = el("form", { method: "post", action: call.start_ticket_url, class: "inline start-ticket" });
  form.append(el("input", { type: "hidden", name: "csrfmiddlewaretoken", value: csrf }));
  if (donorId) form.append(el("input", { type: "hidden", name: "donor", value: String(donorId) }));
  form.append(el("button", { type: "submit", class: "primary" }, label));
  return form;
}

// The words (state, flags, labels) are the server's, shared with the donor page; dates and
// amounts arrive raw and are formatted here.
function donorCard(call, match, several) {
  const donations = match.donations.map((d) =>
    el("li", { id: `pop-donation-${d.id}` },
      `${jaDate(d.donated_at)} ${d.portal_label} ${d.number} ${yen(d.amount)}・`,
      el("span", { class: "state", dataset: { state: `donation-${d.id}` } }, d.state),
      d.flags.map((f) => el("span", { class: "flag danger" }, f)),
      d.shipments.length
        ? el("ul", {}, d.shipments.map((s) =>
            el("li", {},
              `${s.replaces_id ? "再送 " : ""}${s.gift_name}${s.subscription ? `（${s.subscription}）` : ""}: `,
              el("span", { class: "state", dataset: { state: `shipment-${s.id}` } }, s.state),
              " ",
              s.tracking_url ? el("a", { href: s.tracking_url, target: "_blank", rel: "noopener" }, "追跡") : "")))
        : ""));
  const tickets = match.open_inquiries.map((i) =>
    el("li", {}, el("a", { href: i.url }, `#${i.id} ${i.title}`), ` ${i.status_label} ${jaDateTime(i.created_at)}`));
  return el("div", { class: "match", dataset: { donor: String(match.id) } },
    el("div", {},
      el("a", { href: match.url }, el("strong", {}, match.name)), ` ${match.name_kana} `,
      match.donor_number ? `寄附者番号 ${match.donor_number} ` : "",
      match.flags.map((f) => el("span", { class: `flag ${match.flag_tones[f] ?? "danger"}`, dataset: { flag: "" } }, f))),
    el("div", { class: "muted" }, match.full_address),
    el("div", {}, "寄附:", donations.length ? el("ul", {}, donations) : " なし"),
    el("div", {}, "未完了の問合せ:", tickets.length ? el("ul", {}, tickets) : " なし"),
    call.inquiry_id ? "" : startTicketForm(call, match.id, several ? "この寄附者で問合せを開始" : "問合せを開始"));
}

function fillSearch(number) {
  const input = document.querySelector("#universal-search input[name=q], input[type=search][name=q]");
  if (!input) return;
  input.value = number || "";
  input.focus();
  input.dispatchEvent(new Event("input", { bubbles: true }));
}

function wrapUpForm(call) {
  const template = document.getElementById("wrap-up-template");
  const form = template.content.firstElementChild.cloneNode(true);
  form.action = call.wrap_up_url;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const response = await postForm(call.wrap_up_url, new FormData(form));
    if (response.ok) {
      clearPop(call.id);
    } else {
      const data = await response.json().catch(() => ({}));
      form.append(el("p", { class: "errorlist" }, data.error || "登録できませんでした。"));
    }
  });
  return form;
}

function renderCompactPop(payload) {
  const call = payload.call;
  const [first] = payload.matches;
  const who = first
    ? `${first.name}${payload.matches.length > 1 ? ` ほか${payload.matches.length - 1}名` : ""}`
    : "寄附者不明";
  const pop = el("div", { class: `phone-pop${call.ended ? " ended" : ""}`, dataset: { call: String(call.id) } },
    el("strong", {}, `${payload.municipality.name} ${call.status_label}`),
    ` ${call.withheld ? "非通知" : call.from}・${who} `,
    call.needs_wrap_up ? el("span", { class: "flag warn" }, "後処理が必要です") : "",
    " ",
    call.inquiry_id ? el("a", { href: call.inquiry_url }, `問合せ #${call.inquiry_id}`) : "",
    call.inquiry_id ? " " : "",
    el("a", { href: bar.dataset.consoleUrl, class: "to-console" }, "コンソールで対応"));
  compactArea.replaceChildren(pop);
}

function renderPop(payload) {
  const call = payload.call;
  if (!area) {
    if (!compactArea) return;
    currentCallId = call.id;
    renderCompactPop(payload);
    return;
  }
  currentCallId = call.id;
  const several = payload.matches.length > 1;
  const pop = el("section", {
    class: `pop${call.ended ? " ended" : ""}`, "aria-label": "着信", dataset: { call: String(call.id) },
  });
  pop.append(
    el("h3", {}, `${payload.municipality.name}　${call.status_label}`),
    el("div", { class: "greeting" }, payload.greeting),
    el("div", { class: "caller" },
      "発信者番号: ", el("strong", {}, call.withheld ? "非通知" : call.from),
      call.ivr_label ? `（${call.ivr_label}）` : "",
      call.answered_by ? `・応答: ${call.answered_by}` : ""));
  if (call.inquiry_id) {
    pop.append(el("div", {}, "問合せ: ", el("a", { href: call.inquiry_url }, `#${call.inquiry_id}`)));
  }
  if (payload.matches.length === 0) {
    pop.append(el("p", { class: "no-match" },
      call.withheld ? "非通知のため寄附者を特定できません。検索してください。" : "この番号の寄附者は見つかりません。検索してください。"));
    if (!call.inquiry_id) pop.append(startTicketForm(call, null, "寄附者なしで問合せを開始"));
  } else if (several) {
    pop.append(el("p", { class: "several" }, `この番号の寄附者が${payload.matches.length}名います。選んでください。`));
  }
  for (const match of payload.matches) pop.append(donorCard(call, match, several));
  if (call.needs_wrap_up) pop.append(wrapUpForm(call));
  area.replaceChildren(pop);
  if (payload.matches.length === 0 && !call.ended) fillSearch(call.withheld ? "" : call.from);
}

function clearPop(callId) {
  if (callId === undefined || callId === currentCallId) {
    if (area) area.replaceChildren();
    if (compactArea) compactArea.replaceChildren();
    currentCallId = null;
  }
}

function handle(message) {
  switch (message.type) {
    case "state":
      // Sent on every (re)connect: the truth as of now, whatever was missed while away.
      showPresence(message.presence);
      if (message.pop) renderPop(message.pop);
      else clearPop();
      break;
    case "pop":
      renderPop(message);
      break;
    case "call":
      if (message.call.id === currentCallId || message.call.needs_wrap_up) renderPop(message);
      break;
    case "clear":
      clearPop(message.call_id);
      break;
    case "presence":
      showPresence(message.presence);
      break;
  }
}

function connect() {
  liveSocket(bar.dataset.wsPath, {
    status: document.getElementById("phone-connection"),
    onOpen: () => {
      document.body.dataset.phoneConnected = "true";
    },
    onClose: () => {
      document.body.dataset.phoneConnected = "false";
    },
    onMessage: handle,
  });
}

// Browser softphone: with the Twilio Voice SDK on the page, calls to this agent's client
// identity ring here; the agent answers with the button (or with their phone otherwise).
async function startSoftphone() {
  if (!bar.dataset.tokenUrl || !window.Twilio || !window.Twilio.Device) return;
  const response = await fetch(bar.dataset.tokenUrl, { credentials: "same-origin" });
  if (!response.ok) return;
  const { token } = await response.json();
  const device = new window.Twilio.Device(token, { codecPreferences: ["opus", "pcmu"] });
  const box = document.getElementById("softphone");
  const answer = document.getElementById("softphone-answer");
  const hangup = document.getElementById("softphone-hangup");
  let current = null;
  const idle = () => { current = null; answer.hidden = true; hangup.hidden = true; };
  device.on("incoming", (call) => {
    current = call;
    answer.hidden = false;
    hangup.hidden = false;
    call.on("disconnect", idle);
    call.on("cancel", idle);
  });
  device.on("tokenWillExpire", async () => {
    const again = await fetch(bar.dataset.tokenUrl, {
      credentials: "same-origin",
      headers: { "X-Background-Refresh": "1" },
    });
    if (again.ok) device.updateToken((await again.json()).token);
  });
  answer.addEventListener("click", () => { if (current) { current.accept(); answer.hidden = true; } });
  hangup.addEventListener("click", () => { if (current) current.disconnect(); });
  box.hidden = false;
  await device.register();
}

if (bar) {
  startSoftphone().catch(() => {
    document.getElementById("phone-connection").textContent = "ソフトフォンを開始できません。";
  });
  bar.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-presence]");
    if (!button) return;
    const reason = document.getElementById("presence-reason");
    const response = await postForm(bar.dataset.presenceUrl, {
      state: button.dataset.presence,
      reason: reason ? reason.value : "",
    });
    const data = await response.json().catch(() => ({}));
    if (response.ok) showPresence(data.presence);
    else document.getElementById("phone-connection").textContent = data.error || "変更できませんでした。";
  });
  connect();
}
