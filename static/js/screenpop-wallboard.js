// Wallboard: replaces the figures whenever the server pushes new ones (text only, never HTML).

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

function connect(delay = 1000) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${board.dataset.wsPath}`);
  const status = document.getElementById("wallboard-connection");
  socket.addEventListener("open", () => { status.textContent = ""; delay = 1000; });
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "wallboard") render(message);
  });
  socket.addEventListener("close", (event) => {
    if (event.code === 4403) {
      status.textContent = "（接続が終了しました。再読み込みしてください）";
      return;
    }
    status.textContent = "（再接続中…）";
    setTimeout(() => connect(Math.min(delay * 2, 30000)), delay);
  });
}

if (board) connect();
