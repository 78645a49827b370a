#!/usr/bin/env bash
# Makes sure this machine has an ssh server and client (Debian's openssh-server and
# openssh-client) for the tests that replicate the memory to a peer over ssh://. Idempotent and
# safe to run from several test binaries at once (one flock). Prints the sshd path on success.
#
# Exit status: 0 present (or installed); 3 the Debian registry cannot be reached or this user
# cannot install packages (tests then skip, saying so); anything else, a broken set-up.
set -euo pipefail
found() { command -v sshd 2>/dev/null || ls /usr/sbin/sshd 2>/dev/null; }
have() { found >/dev/null && command -v ssh >/dev/null && command -v ssh-keygen >/dev/null && command -v git >/dev/null; }
if have; then found; exit 0; fi
exec 9>"${TMPDIR:-/tmp}/mcpfleet-ssh-setup-$(id -u).lock"
flock 9
if have; then found; exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "ssh set-up: openssh-server is missing and only root can install it" >&2
  exit 3
fi
if ! apt-get update -qq >&2; then
  echo "ssh set-up: the Debian registry cannot be reached" >&2
  exit 3
fi
echo "ssh set-up: installing openssh-server from Debian" >&2
if ! out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
    --no-install-recommends \
    openssh-server openssh-client git 2>&1); then
  echo "$out" >&2
  exit 1
fi
found
