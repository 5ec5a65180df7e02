// The ticket page's composer: drafts saved on the server as the agent types (and restored by
// the page), a warning before leaving with text not saved yet, 「送信して解決」 on
// Ctrl+Shift+Enter, a 定型文's settings applied to the selects, @mention suggestions, and the
// shortcut list on "?".

const form = document.getElementById("reply-form");
const body = document.getElementById("reply-body");

if (form && body) {
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const state = document.getElementById("draft-state");
  const SAVE_AFTER_MS = 700;
  let saved = draftFields();
  let timer = null;
  let inFlight = null;
  let submitting = false;

  function draftFields() {
    const kind = form.querySelector("input[name=kind]:checked");
    const share = form.querySelector("input[name=share_with_city]");
    return {
      body: body.value,
      kind: kind ? kind.value : "note",
      share_with_city: share && share.checked ? "on" : "",
    };
  }

  function dirty() {
    const now = draftFields();
    return Object.keys(now).some((key) => now[key] !== saved[key]);
  }

  function payload(fields) {
    const data = new FormData();
    data.append("csrfmiddlewaretoken", csrf);
    for (const [key, value] of Object.entries(fields)) data.append(key, value);
    return data;
  }

  async function save() {
    timer = null;
    if (!dirty()) return;
    const fields = draftFields();
    inFlight = fetch(form.dataset.draftUrl, {
      method: "POST",
      body: payload(fields),
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
    });
    try {
      const response = await inFlight;
      if (response.ok) {
        saved = fields;
        const at = new Date().toLocaleTimeString("ja-JP", { hour: "2-digit", minute: "2-digit" });
        state.textContent = fields.body.trim() ? `下書きを保存しました（${at}）` : "";
      } else {
        state.textContent = "下書きを保存できませんでした。";
      }
    } catch (_) {
      state.textContent = "下書きを保存できませんでした（接続を確認してください）。";
    } finally {
      inFlight = null;
    }
  }

  function scheduleSave() {
    clearTimeout(timer);
    timer = setTimeout(save, SAVE_AFTER_MS);
  }
  form.addEventListener("input", (event) => {
    if (event.target === body || event.target.name === "kind" || event.target.name === "share_with_city") {
      scheduleSave();
    }
  });
  form.addEventListener("change", (event) => {
    if (event.target.name === "kind" || event.target.name === "share_with_city") scheduleSave();
  });

  form.addEventListener("submit", () => {
    submitting = true;
    clearTimeout(timer);
  });
  window.addEventListener("beforeunload", (event) => {
    if (submitting || !dirty()) return;
    // Keep the text even if the agent leaves anyway; the browser asks them first.
    navigator.sendBeacon(form.dataset.draftUrl, payload(draftFields()));
    event.preventDefault();
    event.returnValue = "";
  });

  // Ctrl+Shift+Enter: 送信して解決 (plain Ctrl+Enter is shortcuts.js's submit).
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.shiftKey && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      event.stopPropagation();
      form.requestSubmit(document.getElementById("send-resolve"));
    }
  });

  // --- a 定型文's settings ---------------------------------------------------------------
  const macroId = document.getElementById("macro-id");
  const summary = document.getElementById("macro-summary");
  const selects = {
    status: document.getElementById("status-select"),
    category: document.getElementById("composer-category"),
    severity: document.getElementById("composer-severity"),
    assignee: document.getElementById("composer-assignee"),
  };
  document.addEventListener("canned:inserted", (event) => {
    const reply = event.detail;
    const changes = reply.changes || {};
    const refused = [];
    for (const [name, value] of Object.entries(changes)) {
      const select = selects[name];
      if (!select) continue;
      const option = Array.from(select.options).find((o) => o.value === String(value));
      if (option) select.value = option.value;
      else refused.push(name === "status" ? "状態（この状態からは変更できません）" : name);
    }
    const acts = (reply.labels || []).length > 0;
    macroId.value = acts ? String(reply.id) : "";
    summary.hidden = !acts;
    document.getElementById("macro-labels").textContent =
      `「${reply.title}」 ${(reply.labels || []).join("・")}` +
      (refused.length ? `（適用できないもの: ${refused.join("・")}）` : "");
    document.getElementById("macro-note").textContent = reply.note ? `内部メモ: ${reply.note}` : "";
  });

  // --- @mentions ----------------------------------------------------------------------------
  const list = document.getElementById("mention-list");
  let choices = [];
  let active = -1;
  let mentionTimer = null;

  function mentionQuery() {
    const before = body.value.slice(0, body.selectionStart);
    const match = before.match(/(?:^|\s)@([A-Za-z0-9._-]*)$/);
    return match ? match[1] : null;
  }

  function closeList() {
    list.hidden = true;
    body.setAttribute("aria-expanded", "false");
    body.removeAttribute("aria-activedescendant");
    choices = [];
    active = -1;
  }

  function highlight(index) {
    active = index;
    list.querySelectorAll("li").forEach((li, i) => li.setAttribute("aria-selected", String(i === index)));
    if (index >= 0) body.setAttribute("aria-activedescendant", `mention-${index}`);
  }

  function choose(index) {
    const user = choices[index];
    if (!user) return;
    const caret = body.selectionStart;
    const before = body.value.slice(0, caret).replace(/@([A-Za-z0-9._-]*)$/, `@${user.username} `);
    body.value = before + body.value.slice(caret);
    body.selectionStart = body.selectionEnd = before.length;
    closeList();
    body.dispatchEvent(new Event("input", { bubbles: true }));
  }

  async function suggest() {
    const query = mentionQuery();
    if (query === null) return closeList();
    const response = await fetch(`${form.dataset.mentionUrl}?q=${encodeURIComponent(query)}`, {
      headers: { Accept: "application/json" },
    });
    if (!response.ok || mentionQuery() !== query) return;
    choices = (await response.json()).users;
    list.replaceChildren(
      ...choices.map((user, i) => {
        const li = document.createElement("li");
        li.id = `mention-${i}`;
        li.setAttribute("role", "option");
        li.textContent = `${user.name}（@${user.username}・${user.role}）`;
        li.addEventListener("mousedown", (event) => {
          event.preventDefault();
          choose(i);
        });
        return li;
      }),
    );
    list.hidden = choices.length === 0;
    body.setAttribute("aria-expanded", String(!list.hidden));
    highlight(choices.length ? 0 : -1);
  }

  body.addEventListener("input", () => {
    clearTimeout(mentionTimer);
    mentionTimer = setTimeout(suggest, 120);
  });
  body.addEventListener("keydown", (event) => {
    if (list.hidden || !choices.length) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      highlight((active + step + choices.length) % choices.length);
    } else if ((event.key === "Enter" || event.key === "Tab") && !event.ctrlKey && !event.isComposing) {
      event.preventDefault();
      choose(active < 0 ? 0 : active);
    } else if (event.key === "Escape") {
      event.preventDefault();
      closeList();
    }
  });
  body.addEventListener("blur", () => setTimeout(closeList, 150));
}

// --- "?" lists the shortcuts ----------------------------------------------------------------
const help = document.getElementById("shortcut-help");
const helpOpen = document.getElementById("shortcut-help-open");
if (help && helpOpen) helpOpen.addEventListener("click", () => help.showModal());
