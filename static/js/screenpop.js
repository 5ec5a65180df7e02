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

// 問合せを開始: one dialog picks the caller (donor or provider), the donation or shipment they
// are calling about, a category and an optional title; Enter creates the ticket, assigned to
// the agent with the call linked, and opens it.
function startTicketButton(payload, preselect, label) {
  const button = el("button", { type: "button", class: "primary start-ticket", "aria-keyshortcuts": "Alt+I" }, label, " ", el("kbd", {}, "Alt+I"));
  button.addEventListener("click", () => openTicketDialog(payload, preselect));
  return button;
}

function requesterChoices(payload) {
  const choices = payload.matches.map((m) => ({
    value: `d${m.id}`, label: `${m.name}（${m.name_kana || "寄附者"}）${m.donor_number ? ` 寄附者番号 ${m.donor_number}` : ""}`, donor: m,
  }));
  for (const p of payload.providers || []) {
    choices.push({ value: `p${p.id}`, label: `返礼品提供事業者 ${p.name}（${payload.municipality.name}）`, provider: p });
  }
  choices.push({ value: "", label: payload.matches.length || (payload.providers || []).length ? "該当なし（問合せ者を選ばない）" : "問合せ者不明" });
  return choices;
}

function aboutChoices(donor) {
  // 「選ばない」 first: checked unless a single shipment is chosen, ArrowDown reaches the rest.
  const choices = [{ value: "", label: "寄附・配送を選ばない" }];
  for (const d of donor ? donor.donations : []) {
    for (const s of d.shipments) {
      choices.push({ value: `s${s.id}`, label: `配送: ${s.gift_name}${s.subscription ? `（${s.subscription}）` : ""}・${s.state}（${d.portal_label} ${d.number}）` });
    }
    choices.push({ value: `d${d.id}`, label: `寄附: ${jaDate(d.donated_at)} ${d.portal_label} ${d.number} ${yen(d.amount)}・${d.state}` });
  }
  return choices;
}

function radios(name, choices, checkedValue) {
  return choices.map((c, index) => {
    const input = el("input", { type: "radio", name, value: c.value, id: `${name}-${index}` });
    input.checked = c.value === checkedValue;
    return el("label", { class: "choice", for: `${name}-${index}` }, input, " ", c.label);
  });
}

function openTicketDialog(payload, preselect) {
  const call = payload.call;
  const template = document.getElementById("call-ticket-template");
  if (!template) return;
  document.querySelector("dialog.call-ticket")?.remove();
  const dialog = template.content.firstElementChild.cloneNode(true);
  const form = dialog.querySelector("form");
  const error = form.querySelector(".errorlist");
  form.action = call.start_ticket_url;
  dialog.querySelector(".call-ticket-caller").textContent =
    `${payload.municipality.name}・${call.withheld ? "非通知" : call.from}${call.ivr_label ? `（${call.ivr_label}）` : ""}`;
  const requesters = requesterChoices(payload);
  const first = preselect ?? requesters[0].value;
  const requesterSet = form.querySelector("fieldset.requester");
  requesterSet.append(...radios("requester", requesters, first));
  const aboutSet = form.querySelector("fieldset.about");
  const showAbout = (value) => {
    const chosen = requesters.find((r) => r.value === value);
    const choices = aboutChoices(chosen && chosen.donor);
    // A donor with a single shipment is almost always calling about it: chosen already.
    const shipments = choices.filter((c) => c.value.startsWith("s"));
    aboutSet.hidden = choices.length === 1;
    aboutSet.querySelectorAll("label.choice").forEach((node) => node.remove());
    aboutSet.append(...radios("about", choices, shipments.length === 1 ? shipments[0].value : ""));
  };
  showAbout(first);
  requesterSet.addEventListener("change", (event) => showAbout(event.target.value));
  form.addEventListener("keydown", (event) => {
    // Alt+C / Alt+T jump to the category and the title from anywhere in the dialog.
    const jump = event.altKey && !event.ctrlKey && !event.metaKey && form.querySelector(`[data-alt-key="${event.key.toLowerCase()}"]`);
    if (jump) {
      event.preventDefault();
      jump.focus();
      return;
    }
    // Enter creates from anywhere in the dialog (radios and selects too), not only text fields.
    if (event.key === "Enter" && !event.isComposing && !["TEXTAREA", "BUTTON"].includes(event.target.tagName)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.querySelector("button.cancel").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => dialog.remove());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    const response = await postForm(call.start_ticket_url, new FormData(form));
    const data = await response.json().catch(() => ({}));
    if (response.ok && data.url) {
      window.location.assign(data.url);
      return;
    }
    submit.disabled = false;
    error.hidden = false;
    error.textContent = data.error || "登録できませんでした。";
  });
  document.body.append(dialog);
  dialog.showModal();
  (requesterSet.querySelector("input:checked") || requesterSet.querySelector("input")).focus();
}

// The words (state, flags, labels) are the server's, shared with the donor page; dates and
// amounts arrive raw and are formatted here.
function donorCard(payload, match, several) {
  const call = payload.call;
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
              s.tracking_warning ? el("span", { class: "flag danger", dataset: { trackingInvalid: "" } }, s.tracking_warning) : "",
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
    call.inquiry_id ? "" : startTicketButton(payload, `d${match.id}`, several ? "この寄附者で問合せを開始" : "問合せを開始"));
}

function providerCard(payload, provider) {
  const call = payload.call;
  const tickets = provider.open_inquiries.map((i) =>
    el("li", {}, el("a", { href: i.url }, `#${i.id} ${i.title}`), ` ${i.status_label} ${jaDateTime(i.created_at)}`));
  return el("div", { class: "match provider", dataset: { provider: String(provider.id) } },
    el("div", {}, el("span", { class: "flag" }, "返礼品提供事業者"), " ", el("strong", {}, provider.name), ` ${provider.name_kana} `,
      `事業者コード ${provider.code}`, provider.contact_person ? `・担当 ${provider.contact_person}` : ""),
    el("div", { class: "muted" }, `${payload.municipality.name}の返礼品提供事業者`),
    el("div", {}, "未完了の問合せ:", tickets.length ? el("ul", {}, tickets) : " なし"),
    call.inquiry_id ? "" : startTicketButton(payload, `p${provider.id}`, "この事業者で問合せを開始"));
}

function fillSearch(number) {
  const input = document.querySelector("#universal-search input[name=q], input[type=search][name=q]");
  if (!input) return;
  input.value = number || "";
  input.focus();
  input.dispatchEvent(new Event("input", { bubbles: true }));
}

// The wrap-up asks which inquiry the call is recorded on: the one opened during the call, an
// open one of the caller, or 「その場で回答」. The server refuses a wrap-up without one (except
// the codes that are not inquiries) and says why; the form shows its words.
function wrapUpForm(payload) {
  const call = payload.call;
  const template = document.getElementById("wrap-up-template");
  const form = template.content.firstElementChild.cloneNode(true);
  form.action = call.wrap_up_url;
  form.dataset.inquiry = String(call.inquiry_id || "");
  const choice = form.querySelector("fieldset.inquiry-choice");
  const options = choice.querySelector(".inquiry-options");
  const quick = choice.querySelector(".quick-answer");
  const error = form.querySelector(".errorlist");
  if (call.inquiry_id) {
    choice.replaceChildren(el("p", { class: "linked-inquiry" }, "この通話は ", el("a", { href: call.inquiry_url }, `問合せ #${call.inquiry_id}`), " に記録されます。"));
  } else {
    const open = [];
    for (const m of payload.matches) for (const i of m.open_inquiries) open.push({ ...i, who: m.name });
    for (const p of payload.providers || []) for (const i of p.open_inquiries) open.push({ ...i, who: p.name });
    options.append(...open.map((i) =>
      el("label", { class: "choice" }, el("input", { type: "radio", name: "inquiry", value: String(i.id) }), ` 既存の問合せ #${i.id} ${i.title}（${i.who}・${i.status_label}）`)));
    const callers = requesterChoices(payload).filter((r) => r.value);
    if (callers.length === 1) {
      quick.append(el("input", { type: "hidden", name: "requester", value: callers[0].value }));
    } else if (callers.length > 1) {
      const select = el("select", { name: "requester" }, el("option", { value: "" }, "選ばない"),
        callers.map((c) => el("option", { value: c.value }, c.label)));
      quick.prepend(el("label", {}, "問合せ者 ", select));
    }
    const showQuick = () => { quick.hidden = !form.querySelector("input[name=inquiry][value=quick]").checked; };
    choice.addEventListener("change", showQuick);
    showQuick();
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const response = await postForm(call.wrap_up_url, new FormData(form));
    if (response.ok) {
      clearPop(call.id);
    } else {
      const data = await response.json().catch(() => ({}));
      error.hidden = false;
      error.textContent = data.error || "登録できませんでした。";
    }
  });
  return form;
}

function renderCompactPop(payload) {
  const call = payload.call;
  const [first] = payload.matches;
  const [provider] = payload.providers || [];
  const who = first
    ? `${first.name}${payload.matches.length > 1 ? ` ほか${payload.matches.length - 1}名` : ""}`
    : provider ? `返礼品提供事業者 ${provider.name}` : "寄附者不明";
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
  const providers = payload.providers || [];
  for (const provider of providers) pop.append(providerCard(payload, provider));
  if (payload.matches.length === 0 && providers.length === 0) {
    pop.append(el("p", { class: "no-match" },
      call.withheld ? "非通知のため寄附者を特定できません。検索してください。" : "この番号の寄附者は見つかりません。検索してください。"));
    if (!call.inquiry_id) pop.append(startTicketButton(payload, "", "寄附者なしで問合せを開始"));
  } else if (several) {
    pop.append(el("p", { class: "several" }, `この番号の寄附者が${payload.matches.length}名います。選んでください。`));
  }
  for (const match of payload.matches) pop.append(donorCard(payload, match, several));
  if (call.needs_wrap_up) pop.append(wrapUpForm(payload));
  // A push while the agent types the wrap-up keeps what they typed.
  const typed = area.querySelector(`.pop[data-call="${call.id}"] form.wrap-up`);
  const fresh = pop.querySelector("form.wrap-up");
  if (typed && fresh && typed.dataset.inquiry === fresh.dataset.inquiry) fresh.replaceWith(typed);
  area.replaceChildren(pop);
  if (payload.matches.length === 0 && providers.length === 0 && !call.ended) fillSearch(call.withheld ? "" : call.from);
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

// Alt+I: 問合せを開始 for the call on screen, even from the search box the agent is typing in.
document.addEventListener("keydown", (event) => {
  if (!event.altKey || event.ctrlKey || event.metaKey || event.key.toLowerCase() !== "i") return;
  if (document.querySelector("dialog.call-ticket[open]")) return;
  const button = area && area.querySelector(".pop button.start-ticket");
  if (button) {
    event.preventDefault();
    button.click();
  }
});

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
