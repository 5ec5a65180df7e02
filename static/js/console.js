import { liveSocket } from "./live-socket.js";

// The console's universal search: results as the agent types, Enter opens the top hit,
// arrow keys move through the hits. Without JavaScript the form still works (server-side).

const form = document.getElementById("universal-search");
const box = document.getElementById("q");
const results = document.getElementById("search-results");

let timer = null;
let controller = null;
let pending = null;

function hits() {
  return Array.from(results.querySelectorAll(".hits a"));
}

async function refresh() {
  const params = new URLSearchParams(new FormData(form));
  params.delete("open");
  if (controller) controller.abort();
  controller = new AbortController();
  const url = `${form.dataset.searchUrl}?${params}`;
  pending = fetch(url, { signal: controller.signal, headers: { "X-Requested-With": "fetch" } })
    .then((r) => (r.ok ? r.text() : ""))
    .then((html) => {
      results.innerHTML = html; // server-rendered, autoescaped partial
      const query = params.get("q") || "";
      history.replaceState(null, "", query ? `?${params}` : location.pathname);
    })
    .catch(() => {});
  return pending;
}

box.addEventListener("input", () => {
  clearTimeout(timer);
  timer = setTimeout(refresh, 200);
});
form.querySelector("select[name=m]").addEventListener("change", refresh);

box.addEventListener("keydown", async (event) => {
  if (event.key === "Enter" && !event.isComposing) {
    event.preventDefault();
    clearTimeout(timer);
    await refresh();
    const top = hits()[0];
    if (top) location.href = top.href;
  } else if (event.key === "ArrowDown") {
    const first = hits()[0];
    if (first) {
      event.preventDefault();
      first.focus();
    }
  }
});

results.addEventListener("keydown", (event) => {
  const list = hits();
  const index = list.indexOf(document.activeElement);
  if (index < 0) return;
  if (event.key === "ArrowDown" && index < list.length - 1) {
    event.preventDefault();
    list[index + 1].focus();
  } else if (event.key === "ArrowUp") {
    event.preventDefault();
    (index === 0 ? box : list[index - 1]).focus();
  }
});

// Queue counts and my tickets stay current while the console is open: the sections marked
// data-refresh are re-read from the server every 30 seconds (only while the tab is visible).
// X-Background-Refresh: the page asked, not the agent, so it does not hold off the idle log-out.
async function refreshSections() {
  if (document.hidden) return;
  const response = await fetch(location.pathname, {
    headers: { "X-Requested-With": "fetch", "X-Background-Refresh": "1" },
  });
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const section of document.querySelectorAll("[data-refresh]")) {
    const replacement = fresh.getElementById(section.id);
    if (replacement && !section.contains(document.activeElement)) section.replaceWith(replacement);
  }
}
setInterval(() => refreshSections().catch(() => {}), 30000);

// New tickets and requesters' messages are pushed (ws/console/): refresh at once, at most once
// a second however many arrive. After a dropped socket comes back, what was pushed meanwhile is
// lost: refresh once to catch up. The poll above stays as the fallback while it is down.
let pushTimer = null;
function refreshSoon() {
  if (pushTimer) return;
  pushTimer = setTimeout(() => {
    pushTimer = null;
    refreshSections().catch(() => {});
  }, 1000);
}
liveSocket("/ws/console/", {
  status: document.getElementById("console-connection"),
  onMessage: refreshSoon,
  onOpen: ({ reconnected }) => {
    if (reconnected) refreshSections().catch(() => {});
  },
});
