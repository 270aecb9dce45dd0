#!/usr/bin/env bash
# Installs the system programs the end-to-end tests drive: tmux and an SSH server.
set -euo pipefail
missing=()
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
  if [ -n "${CI:-}" ]; then
    echo "system-deps: CI needs ${missing[*]} and cannot install them (no root, no sudo)" >&2
    exit 1
  fi
  echo "system-deps: please install ${missing[*]} (end-to-end tests will be skipped)" >&2
  exit 0
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
  if [ -n "${CI:-}" ]; then
    echo "system-deps: could not install ${missing[*]}; CI runs the end-to-end tests, so this is an error" >&2
    exit 1
  fi
  echo "system-deps: could not install ${missing[*]} (end-to-end tests will be skipped)" >&2
fi
