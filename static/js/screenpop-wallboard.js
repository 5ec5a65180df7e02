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
  const rows = stats.agents.people.map((p) => {
    const tr = document.createElement("tr");
    for (const text of [p.name, p.state_label, p.since, p.reason || ""]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    tr.append(resetForm(people, p.user_id));
    return tr;
  });
  people.replaceChildren(...rows);
}

if (board) {
  liveSocket(board.dataset.wsPath, {
    status: document.getElementById("wallboard-connection"),
    onMessage: (message) => {
      if (message.type === "wallboard") render(message);
    },
  });
}
