// One websocket that comes back by itself: every live client (phone bar, console, ticket
// presence, wallboard) opens its socket through here.
//
// A dropped socket (server restart, network, proxy timeout) is reopened after an exponential
// backoff with jitter, capped at about 10 seconds, so a restart does not bring every open tab back
// in the same instant. While down, the status element says 「再接続中…」; once back, onOpen runs
// with reconnected=true so the client can read what it missed. A close with code 4403 (refused:
// logged out, no permission) is final: retrying cannot help, the page says to log in again.

export const REFUSED = 4403;
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 10000;

function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${path}`;
}

function loginLink() {
  const login = document.body.dataset.loginUrl || "/login/";
  const link = document.createElement("a");
  link.href = `${login}?next=${encodeURIComponent(location.pathname + location.search)}`;
  link.textContent = "ログインし直してください";
  return link;
}

// Shows the socket's state in `status` (text only) and as data-live on it.
function showStatus(status, state) {
  if (!status) return;
  status.dataset.live = state;
  if (state === "open") status.replaceChildren();
  else if (state === "reconnecting") status.replaceChildren("再接続中…");
  else if (state === "refused") status.replaceChildren(loginLink());
}

/**
 * Opens `path` and keeps it open.
 * options: onMessage(data), onOpen({reconnected}), onClose(event), status (element).
 * Returns {send(data), close()}.
 */
export function liveSocket(path, { onMessage, onOpen, onClose, status } = {}) {
  let socket = null;
  let failures = 0;
  let everOpened = false;
  let stopped = false;
  let timer = null;

  function retryDelay() {
    const ceiling = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** failures);
    failures += 1;
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  function connect() {
    timer = null;
    socket = new WebSocket(socketUrl(path));
    socket.addEventListener("open", () => {
      failures = 0;
      showStatus(status, "open");
      if (onOpen) onOpen({ reconnected: everOpened });
      everOpened = true;
    });
    socket.addEventListener("message", (event) => {
      if (onMessage) onMessage(JSON.parse(event.data));
    });
    socket.addEventListener("close", (event) => {
      if (onClose) onClose(event);
      if (stopped) return;
      if (event.code === REFUSED) {
        showStatus(status, "refused");
        return;
      }
      showStatus(status, "reconnecting");
      timer = setTimeout(connect, retryDelay());
    });
  }

  // Back online: try now rather than at the end of a long backoff.
  window.addEventListener("online", () => {
    if (timer) {
      clearTimeout(timer);
      connect();
    }
  });

  connect();
  return {
    send(data) {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(data));
    },
    close() {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (socket) socket.close();
    },
  };
}
