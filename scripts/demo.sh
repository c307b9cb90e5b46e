#!/usr/bin/env bash
# The main job on local test hosts: set up, boot two real container hosts (Debian and RHEL-flavoured,
# real systemd + sshd), make a throwaway gateway CA, then `sshd-setup apply --dry-run`, `apply`, prove a
# certificate login, and apply again (unchanged). Everything it starts is stopped at the end
# (KEEP=1 keeps the hosts: stop them with `python -m tests.testhosts down --all`).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
py=.venv/bin/python
demo=.demo
rm -rf "$demo"
fleet_id=""
cleanup() {
    if [ -n "$fleet_id" ] && [ "${KEEP:-0}" != 1 ]; then $py -m tests.testhosts down "$fleet_id" >/dev/null; fi
}
trap cleanup EXIT

echo "== booting test hosts"
$py -m tests.testhosts up --spec web1 --spec web2::rhel --out "$demo" 2>&1 | tee "$demo.up.log"
fleet_id=$(sed -n 's/^stop with: python -m tests.testhosts down \([0-9]*\)$/\1/p' "$demo.up.log")
rm -f "$demo.up.log"
cp -r inventories/local/group_vars "$demo/"
ssh-keygen -q -t ecdsa -b 256 -N '' -C open-ssh-ca@demo -f "$demo/gateway_ca"

echo "== sshd-setup apply --dry-run"
.venv/bin/sshd-setup apply -i "$demo/inventory.yml" --dry-run
echo "== sshd-setup apply"
.venv/bin/sshd-setup apply --yes -i "$demo/inventory.yml"

echo "== a certificate for principal jdoe logs in as johndoe"
ssh-keygen -q -t ed25519 -N '' -f "$demo/jdoe"
ssh-keygen -q -s "$demo/gateway_ca" -I jdoe@example.com -n jdoe -V +5m "$demo/jdoe.pub"
address=$(awk '/web1:/{getline; print $2; exit}' "$demo/inventory.yml")
ssh -F /dev/null -i "$demo/jdoe" -o CertificateFile="$demo/jdoe-cert.pub" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o UserKnownHostsFile="$demo/known_hosts" "johndoe@$address" 'echo "logged in as $(id -un) on $(hostname)"'

echo "== sshd-setup apply (again: nothing to do)"
.venv/bin/sshd-setup apply --yes -i "$demo/inventory.yml"
