#!/bin/sh
# Install what the integration tests' test hosts (tests/testhosts) need on a fresh Debian 12 machine.
# Run as root. Idempotent: installs only what is missing. Lasting changes: only the packages it installs
# (a policy-rc.d forbidding daemon starts exists only while apt runs; see README "What the scripts change").
#
#   sudo scripts/testhosts-prereqs.sh            # then: python -m tests.testhosts check
set -eu

if [ "$(id -u)" -ne 0 ]; then
    echo "testhosts-prereqs: run as root" >&2
    exit 1
fi

policy=/usr/sbin/policy-rc.d
marker='# Written by sshd-setup scripts/testhosts-prereqs.sh'
saved="$policy.orig-sshd-setup"

# 0. Undo what older versions of this script left behind for good: a policy-rc.d forbidding every daemon
#    start (exit 101) and a sysctl.d file. The live kernel limits are the harness's business now.
if [ -f "$policy" ] && grep -qF "$marker" "$policy"; then
    if [ -e "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi
    echo "testhosts-prereqs: removed the $policy an older version left (exit 101)"
fi
if [ -f /etc/sysctl.d/90-sshd-setup-testhosts.conf ]; then
    rm -f /etc/sysctl.d/90-sshd-setup-testhosts.conf
    echo "testhosts-prereqs: removed /etc/sysctl.d/90-sshd-setup-testhosts.conf (an older version's)"
fi

# 1. Packages: debootstrap builds the hosts' root filesystems, systemd-container boots them,
#    openssh-server/-client give sshd/ssh/ssh-keygen, iproute2 the bridge, util-linux nsenter/unshare,
#    and the shellcheck package lints the scripts that run on hosts (scripts/test.sh).
missing=""
for pkg in debootstrap systemd-container openssh-server openssh-client iproute2 util-linux shellcheck; do
    if ! dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $pkg"
    fi
done
if [ -n "$missing" ]; then
    # 2. No package may start a daemon on this machine WHILE we install: openssh-server's postinst would
    #    otherwise start an sshd here. A policy-rc.d exiting 101 forbids it, for this apt run only; the
    #    machine's own policy-rc.d (if any) is put back afterwards, even when apt fails.
    if [ -e "$policy" ]; then cp -p "$policy" "$saved"; fi
    restore_policy() {
        if [ -e "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi
    }
    trap restore_policy EXIT INT TERM
    printf '#!/bin/sh\n%s while it installs packages; removed afterwards.\nexit 101\n' "$marker" > "$policy.tmp"
    chmod 0755 "$policy.tmp"
    mv -f "$policy.tmp" "$policy"
    echo "testhosts-prereqs: installing$missing (daemon starts forbidden meanwhile: $policy, exit 101)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    apt-get install -y --no-install-recommends $missing
    restore_policy
    trap - EXIT INT TERM
    echo "testhosts-prereqs: $policy put back as it was"
else
    echo "testhosts-prereqs: packages already installed"
fi

# 3. Kernel limits (inotify instances for many booting systemds) are raised by the harness itself while
#    test hosts run and put back when the last fleet stops (tests/testhosts/fleet.py).

# 4. Sanity: what the harness itself checks before booting anything.
for tool in systemd-nspawn debootstrap ssh ssh-keygen ip nsenter unshare shellcheck; do
    command -v "$tool" >/dev/null || { echo "testhosts-prereqs: $tool still missing" >&2; exit 1; }
done
unshare --net true || { echo "testhosts-prereqs: cannot create network namespaces" >&2; exit 1; }
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || {
    echo "testhosts-prereqs: no overlay filesystem in this kernel" >&2
    exit 1
}
echo "testhosts-prereqs: ready"
