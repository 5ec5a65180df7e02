#!/usr/bin/env bash
# Debian packages the tests drive for real: Chromium (end-to-end UI tests), Dovecot (IMAP), and
# for the fault tests (tests/faults) a private redis-server and PostgreSQL cluster.
# Installed only when missing; needs root (as on the project's machines and CI).
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x /usr/sbin/dovecot ] || missing+=(dovecot-imapd dovecot-pop3d)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
# WeasyPrint (PDFs: the deletion certificate) needs Pango, and Japanese text needs Noto CJK.
compgen -G "/usr/lib/*/libpango-1.0.so.0" >/dev/null || missing+=(libpango-1.0-0 libpangoft2-1.0-0)
compgen -G "/usr/share/fonts/opentype/noto/NotoSansCJK-*.ttc" >/dev/null || missing+=(fonts-noto-cjk)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing system packages: ${missing[*]} (install them as root)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
