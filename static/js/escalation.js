// The ticket page's escalation panel: refreshed when the page hears the ticket changed (the
// city acknowledged or gave an instruction), and every 30 s in case a push was lost; deadlines
// of personal-data incidents count down to the 60-minute limit.
const panel = document.getElementById("escalation-panel");
const body = document.getElementById("escalation-body");

async function refresh() {
  if (!panel || !body) return;
  try {
    const response = await fetch(panel.dataset.url, {
      // A background refresh: it does not count as activity for the idle time-out.
      headers: { "X-Background-Refresh": "1" },
      credentials: "same-origin",
    });
    if (response.ok) {
      body.innerHTML = await response.text();
      tick();
    }
  } catch (_) {
    // offline for a moment: the next push or poll catches up
  }
}

function tick() {
  const now = Date.now();
  document.querySelectorAll("[data-deadline]").forEach((el) => {
    const left = Math.round((Date.parse(el.dataset.deadline) - now) / 1000);
    const sign = left < 0 ? "超過 " : "残り ";
    const abs = Math.abs(left);
    const text = `${Math.floor(abs / 60)}分${String(abs % 60).padStart(2, "0")}秒`;
    el.textContent = `報告期限まで ${sign}${text}`;
    el.classList.toggle("danger", left < 0);
  });
}

if (panel) {
  document.addEventListener("ticket:changed", (event) => {
    if (!event.detail || event.detail.part === "escalation") refresh();
  });
  setInterval(refresh, 30000);
}
tick();
setInterval(tick, 1000);
