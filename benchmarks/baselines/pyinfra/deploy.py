"""The pyinfra baseline of benchmarks/fleet.py: trust the gateway CA and map principals to users.

Host data (set by the inventory benchmarks/fleet.py writes):
    ca_public_key: one OpenSSH public key line
    principal_mappings: [{user, principal} | {user, principals, file} | {user, any_principal: True}]
    init: "sysvinit" to reload with /etc/init.d/ssh (benchmarks/scale.py's light hosts); default systemd

    pyinfra -y --parallel N inventory.py deploy.py
"""

from io import StringIO

from pyinfra import host
from pyinfra.operations import files, server, systemd, sysvinit
from pyinfra.operations.util import any_changed

CA_PATH = "/etc/ssh/ca.pub"
SSHD_CONFIG = "/etc/ssh/sshd_config"
ALL_PRINCIPALS_COMMAND = "/bin/bash -c \"echo '%t %k' | ssh-keygen -L -f - | grep -A1 Principals\""

mappings = host.data.principal_mappings


def match_block() -> str:
    command_user = "    AuthorizedPrincipalsCommandUser nobody"
    lines = []
    for m in mappings:
        lines.append(f"Match User {m['user']}")
        if "principal" in m:
            lines += [f"    AuthorizedPrincipalsCommand /bin/echo '{m['principal']}'", command_user]
        elif "file" in m:
            lines.append(f"    AuthorizedPrincipalsFile {m['file']}")
        else:
            lines += [f"    AuthorizedPrincipalsCommand {ALL_PRINCIPALS_COMMAND}", command_user]
    lines.append("Match all")
    return "\n".join(lines)


ops = [
    files.put(
        name="CA public key",
        src=StringIO(host.data.ca_public_key + "\n"),
        dest=CA_PATH,
        user="root",
        group="root",
        mode="644",
    )
]
for m in mappings:
    if "file" in m:
        ops.append(
            files.put(
                name=f"Principals file {m['file']}",
                src=StringIO("".join(p + "\n" for p in m["principals"])),
                dest=m["file"],
                user="root",
                group="root",
                mode="644",
            )
        )
ops.append(
    files.block(
        name="Gateway CA block at the very top of sshd_config",
        path=SSHD_CONFIG,
        content=f"PubkeyAuthentication yes\nTrustedUserCAKeys {CA_PATH}",
        marker="# {mark} sshd-setup managed block: gateway CA",
        before=True,
        after=True,  # both: prepend to the file
    )
)
ops.append(
    files.block(
        name="Principal mappings at the very end of sshd_config",
        path=SSHD_CONFIG,
        content=match_block(),
        marker="# {mark} sshd-setup managed block: principal mappings",
    )
)
# files.block has no validate hook: check the tree before the reload (a failure stops this host).
server.shell(name="Validate sshd_config", commands=[f"/usr/sbin/sshd -t -f {SSHD_CONFIG}"], _if=any_changed(*ops))
if host.data.get("init") == "sysvinit":  # benchmarks/scale.py's light hosts: /etc/init.d/ssh, no systemd
    sysvinit.service(name="Reload sshd", service="ssh", running=True, reloaded=True, _if=any_changed(*ops))
else:
    systemd.service(name="Reload sshd", service="ssh", running=True, reloaded=True, _if=any_changed(*ops))
