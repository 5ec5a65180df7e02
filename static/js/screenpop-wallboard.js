// Wallboard: replaces the figures whenever the server pushes new ones (text only, never HTML).
// The server sends the current figures on every (re)connect, so a dropped socket catches up.

import { liveSocket } from "./live-socket.js";

const board = document.getElementById("wallboard");

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
  const rows = stats.agents.people.map((p) => {
    const tr = document.createElement("tr");
    for (const text of [p.name, p.state_label, p.since]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  });
  document.getElementById("agent-people").replaceChildren(...rows);
}

if (board) {
  liveSocket(board.dataset.wsPath, {
    status: document.getElementById("wallboard-connection"),
    onMessage: (message) => {
      if (message.type === "wallboard") render(message);
    },
  });
}
