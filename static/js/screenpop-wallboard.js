// Wallboard: replaces the figures whenever the server pushes new ones (text only, never HTML).
// The server sends the current figures on every (re)connect, so a dropped socket catches up.

import { liveSocket } from "./live-socket.js";

const board = document.getElementById("wallboard");

// The supervisor's way out for an agent whose state no longer matches reality.
function resetForm(people, userId) {
  const td = document.createElement("td");
  const form = document.createElement("form");
  form.method = "post";
  form.action = people.dataset.resetUrl.replace("/0/", `/${userId}/`);
  for (const [name, value] of [["csrfmiddlewaretoken", people.dataset.csrf], ["state", "break"]]) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.append(input);
  }
  const button = document.createElement("button");
  button.type = "submit";
  button.textContent = "離席に戻す";
  form.append(button);
  td.append(form);
  return td;
}

function render(stats) {
  for (const node of document.querySelectorAll("[data-field]")) {
    const key = node.dataset.field;
    if (!(key in stats)) continue;
    const value = stats[key];
    node.textContent = key === "service_level" ? (value === null ? "—" : `${value}%`) : String(value);
  }
  const waitingTile = board.querySelector("[data-field=waiting]").closest(".tile");
  waitingTile.classList.toggle("alert", stats.waiting > 0);
  for (const count of stats.agents.counts) {
    const cell = document.querySelector(`#agent-counts td[data-state="${count.state}"]`);
    if (cell) cell.textContent = String(count.count);
  }
  const people = document.getElementById("agent-people");
  people.dataset.wrapUpAlert = String(stats.wrap_up_alert_seconds);
  const rows = stats.agents.people.map((p) => {
    const tr = document.createElement("tr");
    tr.dataset.state = p.state;
    tr.append(cell(p.name), cell(p.state_label), elapsedCell(p.seconds_in_state), cell(p.since), cell(p.reason || ""));
    tr.append(resetForm(people, p.user_id));
    return tr;
  });
  people.replaceChildren(...rows);
  const waiting = document.getElementById("waiting-calls");
  const calls = stats.waiting_calls.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.call = String(c.id);
    tr.append(cell(c.municipality), cell(c.from), cell(c.ivr_label), elapsedCell(c.wait_seconds));
    return tr;
  });
  if (!calls.length) {
    const td = cell("待ち呼はありません。");
    td.colSpan = 4;
    td.className = "muted";
    const tr = document.createElement("tr");
    tr.className = "none";
    tr.append(td);
    calls.push(tr);
  }
  waiting.replaceChildren(...calls);
  tick();
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function elapsedCell(seconds) {
  const td = cell(`${seconds}秒`);
  td.dataset.elapsedBase = String(seconds);
  td.dataset.renderedAt = String(Date.now());
  return td;
}

function duration(seconds) {
  const m = Math.floor(seconds / 60);
  return m ? `${m}分${String(seconds % 60).padStart(2, "0")}秒` : `${seconds}秒`;
}

// Times in state and waits keep counting between pushes (the server pushes on changes only);
// an agent in wrap-up past the threshold is highlighted as soon as they cross it. Counted from
// the server's figure, not from the browser's clock, which may be off.
function tick() {
  const now = Date.now();
  const people = document.getElementById("agent-people");
  const limit = Number(people.dataset.wrapUpAlert || 0);
  for (const td of document.querySelectorAll("[data-elapsed-base]")) {
    td.dataset.renderedAt ||= String(now);
    const seconds = Number(td.dataset.elapsedBase) + Math.floor((now - Number(td.dataset.renderedAt)) / 1000);
    td.textContent = duration(seconds);
    const row = td.closest("tr");
    if (row.parentElement === people) {
      const overdue = row.dataset.state === "wrap_up" && limit > 0 && seconds >= limit;
      row.classList.toggle("overdue", overdue);
      let flag = row.querySelector(".flag.danger");
      if (overdue && !flag) {
        flag = document.createElement("span");
        flag.className = "flag danger";
        flag.textContent = "後処理超過";
        row.children[1].append(" ", flag);
      } else if (!overdue && flag) {
        flag.remove();
      }
    }
  }
}

if (board) {
  tick();
  setInterval(tick, 1000);
  liveSocket(board.dataset.wsPath, {
    status: document.getElementById("wallboard-connection"),
    onMessage: (message) => {
      if (message.type === "wallboard") render(message);
    },
  });
}
