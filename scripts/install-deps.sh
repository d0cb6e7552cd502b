#!/usr/bin/env bash
# Installs the system tools veer's build and tests use, from Debian's packages.
# Idempotent: installs only what is missing. Needs root (or sudo) when something is missing.
set -euo pipefail

# tool-to-check  debian-package
needed=(
  "git:git"
  "pkg-config:pkg-config"
  "sshd:openssh-server"
  "ssh-keygen:openssh-client"
  # The analysis tests start their own Prometheus (own config, data dir and loopback port).
  "prometheus:prometheus"
  # The status page test loads veer's page in headless Chromium and screenshots it.
  "chromium:chromium"
)
# Headers are checked by file, not by command.
headers=(
  "/usr/include/openssl/ssl.h:libssl-dev"
)

missing=()
for pair in "${needed[@]}"; do
  tool=${pair%%:*}; pkg=${pair##*:}
  if ! command -v "$tool" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$tool" ]; then missing+=("$pkg"); fi
done
for pair in "${headers[@]}"; do
  file=${pair%%:*}; pkg=${pair##*:}
  [ -e "$file" ] || missing+=("$pkg")
done
# `git daemon` and `git http-backend` ship with git, but check they are really there.
if command -v git >/dev/null 2>&1; then
  execdir=$(git --exec-path)
  [ -x "$execdir/git-daemon" ] || missing+=("git")
  [ -x "$execdir/git-http-backend" ] || missing+=("git")
fi

# Debian's kubectl (package kubernetes-client, 1.20), unpacked into target/tools/ rather than
# installed: another package on some machines ships a conflicting /usr/bin/kubectl, and the
# tests must run against Debian's. `apt-get download` needs no root. Idempotent.
install_kubectl() {
  local root tools
  root=$(cd "$(dirname "$0")/.." && pwd)
  tools="$root/target/tools"
  if [ -x "$tools/kubernetes-client/usr/bin/kubectl" ]; then return 0; fi
  echo "deps: fetching Debian's kubernetes-client into $tools"
  mkdir -p "$tools"
  local tmp
  tmp=$(mktemp -d)
  chmod 755 "$tmp"  # apt downloads as the _apt user when it can
  # A fresh machine may have no package lists yet: update once and retry.
  if ! (cd "$tmp" && apt-get download -qq kubernetes-client >/dev/null 2>&1); then
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq; else sudo apt-get update -qq; fi
    if ! (cd "$tmp" && apt-get download -qq kubernetes-client >/dev/null 2>&1); then
      echo "deps: apt-get download kubernetes-client failed; check that Debian's package lists are reachable" >&2
      rm -rf "$tmp"; return 1
    fi
  fi
  rm -rf "$tools/kubernetes-client"
  dpkg -x "$tmp"/kubernetes-client_*.deb "$tools/kubernetes-client"
  rm -rf "$tmp"
  "$tools/kubernetes-client/usr/bin/kubectl" version --client --short 2>/dev/null \
    || "$tools/kubernetes-client/usr/bin/kubectl" version --client
}
install_kubectl

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all present"
  exit 0
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "deps: need root to run: apt-get install -y ${missing[*]}" >&2; exit 1
  fi
else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Debian's prometheus package would start a system service; veer's tests never use it, so
# keep package scripts from starting services (in a container policy-rc.d already does).
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# On a machine with systemd the service we just installed may still be enabled; tests do not
# need it running (a Prometheus that was already there is left alone).
if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1 \
  && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
