#!/usr/bin/env bash
# The test command: set up (idempotent), then lint, type-check and run every test: unit and property
# tests, the sshd oracle (the real sshd judges planned trees), and integration tests on real container
# hosts (systemd-nspawn + systemd + sshd, real certificate logins). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

echo "== ruff"
.venv/bin/ruff check sshd_setup tests benchmarks
.venv/bin/ruff format --check sshd_setup tests benchmarks
echo "== mypy (strict on sshd_setup/)"
.venv/bin/mypy
echo "== shellcheck + dash -n (the scripts that run on hosts, as POSIX sh; and these scripts)"
shellcheck -s sh sshd_setup/remote/*.sh
shellcheck scripts/*.sh
for script in sshd_setup/remote/*.sh; do dash -n "$script"; done
echo "== ansible-test sanity (collection/: offline, no Docker)"
sanity_log="$(mktemp)"
if ! ./scripts/collection-sanity.sh >"$sanity_log" 2>&1; then
    grep -E "^(ERROR|FATAL)" "$sanity_log" || tail -40 "$sanity_log"
    exit 1
fi
grep -c '^Running sanity test' "$sanity_log" | sed 's/$/ sanity tests passed/'
rm -f "$sanity_log"
echo "== pytest (in parallel: each test file on one worker, so a module's test hosts boot once)"
.venv/bin/pytest -p no:cacheprovider -n "${SSHD_SETUP_TEST_WORKERS:-4}" --dist loadfile "$@"
