# Sourced by the ci/ scripts that drive headless Chromium: installs Debian's `chromium` (and
# python3) when missing, through ci/apt.sh (set `apt_who` first), and sets `chromium_bin` to the
# browser binary itself. Debian's /usr/bin/chromium is a shell wrapper that adds flags of its
# own (among them --enable-remote-extensions and --load-extension) and sources
# /etc/chromium.d; the binary behind it is run instead when it is there, so the flags are
# exactly the checker's.
# shellcheck shell=bash
# shellcheck source=ci/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
if ! command -v chromium >/dev/null 2>&1; then
  echo "$apt_who: chromium is not on PATH"
  apt_install chromium
  command -v chromium >/dev/null 2>&1 || { echo "$apt_who: chromium still not on PATH after install" >&2; exit 2; }
fi
if ! command -v python3 >/dev/null 2>&1; then
  apt_install python3
fi
chromium_bin=$(command -v chromium)
if [ -x /usr/lib/chromium/chromium ] && [ "$(head -c 2 "$chromium_bin")" = '#!' ]; then
  chromium_bin=/usr/lib/chromium/chromium
fi
