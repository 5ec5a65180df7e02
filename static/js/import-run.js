import { liveSocket } from "./live-socket.js";

// The run page follows its import while it is queued or running: progress is pushed on
// ws/imports/<id>/ about once a second; while that socket is down the page polls the progress
// URL instead. When the run ends the page reloads to show the result.

const panel = document.getElementById("import-progress");
const POLL_MS = 3000;
let socketOpen = false;
let reloading = false;

const number = (value) => (value == null ? "—" : Number(value).toLocaleString("ja-JP"));

function duration(seconds) {
  if (seconds == null) return "—";
  if (seconds < 60) return `約${Math.max(1, seconds)}秒`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `約${minutes}分${seconds % 60 ? `${seconds % 60}秒` : ""}`;
  return `約${Math.floor(minutes / 60)}時間${minutes % 60}分`;
}

function field(name) {
  return panel.querySelector(`[data-field="${name}"]`);
}

function show(progress) {
  if (!progress || !progress.status) return;
  panel.dataset.status = progress.status;
  const set = (name, text) => {
    const el = field(name);
    if (el) el.textContent = text;
  };
  set("status_label", progress.status_label);
  set("rows_read", number(progress.rows_read));
  set("estimated_rows", number(progress.estimated_rows));
  set("rows_per_second", number(progress.rows_per_second));
  set("eta", duration(progress.eta_seconds));
  for (const name of ["imported", "updated", "unchanged", "rejected", "needs_callback"]) {
    const cell = document.querySelector(`[data-count="${name}"]`);
    // The 要確認 cell links to the list once there is something in it: leave its markup.
    if (cell && !cell.querySelector("a")) cell.textContent = number(progress[name]);
  }
  const bar = field("percent");
  if (bar && progress.percent != null) bar.value = progress.percent;
  if (progress.finished && !reloading) {
    reloading = true;
    location.reload();
  }
}

async function poll() {
  if (socketOpen || reloading || document.hidden) return;
  const response = await fetch(panel.dataset.progressUrl, {
    headers: { "X-Requested-With": "fetch", "X-Background-Refresh": "1" },
  });
  if (response.ok) show(await response.json());
}

if (panel && panel.dataset.finished !== "1") {
  liveSocket(`/ws/imports/${panel.dataset.runId}/`, {
    status: document.getElementById("import-connection"),
    onMessage: show,
    onOpen: () => {
      socketOpen = true;
    },
    onClose: () => {
      socketOpen = false;
    },
  });
  setInterval(() => poll().catch(() => {}), POLL_MS);
}
