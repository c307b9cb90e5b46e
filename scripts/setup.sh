#!/usr/bin/env bash
# Set up a fresh Debian 12 machine for sshd-setup: system packages (as root), then a venv with the
# package and its dev/test extras. Idempotent; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then
    # sshd, ssh-keygen, debootstrap and systemd-nspawn for the real test hosts; never starts a daemon here.
    sh scripts/testhosts-prereqs.sh
else
    echo "setup: not root; skipping system packages (the integration tests will say what is missing)" >&2
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'
echo "setup: ready (.venv/bin/sshd-setup)"
