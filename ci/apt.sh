# Sourced by the ci/ scripts that install the Debian packages they need. Defines `sudo` (an
# array: empty when root, else `sudo` if there is one) and `apt_install PACKAGE...`, which
# installs quietly, names the caller in what it prints (`apt_who`, set before sourcing) and
# exits 2 when it cannot (no apt-get, or neither root nor sudo). Extra apt-get flags go in the
# `apt_flags` array (e.g. `--no-install-recommends`). Two scripts installing at once (tests run
# in parallel) wait for each other's dpkg lock rather than fail.
# shellcheck shell=bash
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo=(sudo); fi
fi
apt_updated=
[ -n "${apt_flags+set}" ] || apt_flags=()
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$apt_who: $* is missing and there is no apt-get to install it" >&2; exit 2
  fi
  if [ "$(id -u)" -ne 0 ] && [ ${#sudo[@]} -eq 0 ]; then
    echo "$apt_who: $* is missing; not root and no sudo, so it cannot be installed" >&2; exit 2
  fi
  echo "$apt_who: installing Debian package(s): $*"
  # Try with the package lists already on the machine; refresh them once if that fails (no
  # lists yet, or stale ones naming files the mirror no longer has).
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${apt_flags[@]}" "$@" >/dev/null; then
    if [ -z "$apt_updated" ]; then
      echo "$apt_who: apt-get update"
      "${sudo[@]}" apt-get update -qq -o DPkg::Lock::Timeout=300
      apt_updated=1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${apt_flags[@]}" "$@" >/dev/null
  fi
}
