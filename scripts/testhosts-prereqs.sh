#!/bin/sh
# Install what the integration tests' test hosts (tests/testhosts) need on a fresh Debian 12 machine.
# Run as root. Idempotent: installs only what is missing, rewrites nothing that is already right.
#
#   sudo scripts/testhosts-prereqs.sh            # then: python -m tests.testhosts check
set -eu

if [ "$(id -u)" -ne 0 ]; then
    echo "testhosts-prereqs: run as root" >&2
    exit 1
fi

# 1. No package may start a daemon on this machine: openssh-server's postinst would otherwise start
#    an sshd here (the service manager may not be systemd). policy-rc.d exiting 101 forbids it.
#    This must be in place BEFORE openssh-server is installed.
policy=/usr/sbin/policy-rc.d
if ! { [ -x "$policy" ] && grep -qx 'exit 101' "$policy"; }; then
    if [ -e "$policy" ] && [ ! -e "$policy.orig-sshd-setup" ]; then
        cp -p "$policy" "$policy.orig-sshd-setup"
    fi
    printf '#!/bin/sh\n# Written by sshd-setup scripts/testhosts-prereqs.sh: never start daemons on install.\nexit 101\n' \
        > "$policy.tmp"
    chmod 0755 "$policy.tmp"
    mv -f "$policy.tmp" "$policy"
    echo "testhosts-prereqs: wrote $policy (exit 101)"
fi

# 2. Packages: debootstrap builds the hosts' root filesystems, systemd-container boots them,
#    openssh-server/-client give sshd/ssh/ssh-keygen, iproute2 the bridge, util-linux nsenter/unshare.
missing=""
for pkg in debootstrap systemd-container openssh-server openssh-client iproute2 util-linux; do
    if ! dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $pkg"
    fi
done
if [ -n "$missing" ]; then
    echo "testhosts-prereqs: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    apt-get install -y --no-install-recommends $missing
else
    echo "testhosts-prereqs: packages already installed"
fi

# 3. Kernel limits: with the default fs.inotify.max_user_instances (128), containers booting in
#    parallel die with "Failed to allocate manager object". Only ever raise, never lower.
conf=/etc/sysctl.d/90-sshd-setup-testhosts.conf
printf '# sshd-setup test hosts (systemd-nspawn): many systemd instances need many inotify instances.\nfs.inotify.max_user_instances = 8192\nfs.inotify.max_user_watches = 1048576\n' \
    > "$conf.tmp"
if ! cmp -s "$conf.tmp" "$conf" 2>/dev/null; then
    mv -f "$conf.tmp" "$conf"
else
    rm -f "$conf.tmp"
fi
raise() {
    current=$(cat "/proc/sys/$(echo "$1" | tr . /)")
    if [ "$current" -lt "$2" ]; then
        sysctl -q -w "$1=$2"
        echo "testhosts-prereqs: $1 $current -> $2"
    fi
}
raise fs.inotify.max_user_instances 8192
raise fs.inotify.max_user_watches 1048576

# 4. Sanity: what the harness itself checks before booting anything.
for tool in systemd-nspawn debootstrap ssh ssh-keygen ip nsenter unshare; do
    command -v "$tool" >/dev/null || { echo "testhosts-prereqs: $tool still missing" >&2; exit 1; }
done
unshare --net true || { echo "testhosts-prereqs: cannot create network namespaces" >&2; exit 1; }
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || {
    echo "testhosts-prereqs: no overlay filesystem in this kernel" >&2
    exit 1
}
echo "testhosts-prereqs: ready"
