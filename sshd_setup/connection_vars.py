"""Ansible's connection variables of one host, read the way Ansible's ssh connection and sudo become read them.

Pure: no I/O. `read_connection_vars` takes a host's merged variables and returns what sshd-setup will do
with them. Arguments in ansible_ssh_args / _common_args / _extra_args are split as a shell splits them
(shlex: quotes kept together), and ssh's rule holds across them: the first value of an option wins, in
the order Ansible puts them on ssh's command line (ssh_args, common, extra). Anything we would otherwise
drop is an InputError naming it, or (when dropping it cannot change where or how we connect) a warning.
A password value never appears in any message.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sshd_setup.core.names import check_hostname, check_user
from sshd_setup.errors import InputError

ARG_VARS = ("ansible_ssh_args", "ansible_ssh_common_args", "ansible_ssh_extra_args")
ALIASES = {  # Ansible's other names for the variables inventory.py reads itself
    "ansible_ssh_host": "ansible_host",
    "ansible_ssh_port": "ansible_port",
    "ansible_ssh_user": "ansible_user",
}
PASSWORD_VARS = ("ansible_password", "ansible_ssh_pass", "ansible_ssh_password")
BECOME_PASSWORD_VARS = ("ansible_become_password", "ansible_become_pass", "ansible_sudo_pass")
BECOME_USER_VARS = ("ansible_become_user", "ansible_sudo_user")
BECOME_EXE_VARS = ("ansible_become_exe", "ansible_sudo_exe")
BECOME_FLAG_VARS = ("ansible_become_flags", "ansible_sudo_flags")
TIMEOUT_VARS = ("ansible_timeout", "ansible_ssh_timeout")
HOST_KEY_VARS = ("ansible_host_key_checking", "ansible_ssh_host_key_checking")
#: Read by inventory.py (or here): never reported as unknown.
HANDLED = frozenset(
    {
        "ansible_host",
        "ansible_port",
        "ansible_user",
        "ansible_connection",
        "ansible_become",
        "ansible_become_method",
        "ansible_ssh_private_key_file",
        "ansible_private_key_file",
        *ARG_VARS,
        *ALIASES,
        *PASSWORD_VARS,
        *BECOME_PASSWORD_VARS,
        *BECOME_USER_VARS,
        *BECOME_EXE_VARS,
        *BECOME_FLAG_VARS,
        *TIMEOUT_VARS,
        *HOST_KEY_VARS,
    }
)
#: Ansible connection variables that change nothing about where or how sshd-setup connects: a warning.
HARMLESS_VARS = frozenset(
    {
        "ansible_python_interpreter",
        "ansible_shell_type",
        "ansible_shell_executable",
        "ansible_pipelining",
        "ansible_ssh_pipelining",
        "ansible_ssh_retries",
        "ansible_ssh_transfer_method",
        "ansible_scp_if_ssh",
        "ansible_sftp_batch_mode",
        "ansible_scp_extra_args",
        "ansible_sftp_extra_args",
        "ansible_ssh_use_tty",
        "ansible_control_path",
        "ansible_control_path_dir",
        "ansible_sshpass_prompt",
        "ansible_ssh_password_mechanism",
        "ansible_ssh_verbosity",
        "ansible_remote_tmp",
        "ansible_keep_remote_files",
        "ansible_module_compression",
        "ansible_async_dir",
    }
)
#: Ansible connection variables that would change the route or the login: refused, never ignored.
REFUSED_VARS = {
    "ansible_ssh_executable": "sshd-setup connects with paramiko, not an ssh binary",
    "ansible_paramiko_proxy_command": "use -o ProxyCommand=... in ansible_ssh_common_args",
}

#: ssh -o options (lower case) that sshd-setup implements.
IMPLEMENTED_OPTIONS = frozenset(
    {"proxyjump", "proxycommand", "userknownhostsfile", "stricthostkeychecking", "connecttimeout", "identityfile"}
)
#: ssh -o options that change nothing for sshd-setup's connections: a warning.
HARMLESS_OPTIONS = frozenset(
    {
        "controlmaster",
        "controlpersist",
        "controlpath",
        "serveraliveinterval",
        "serveralivecountmax",
        "tcpkeepalive",
        "compression",
        "loglevel",
        "forwardagent",
        "forwardx11",
        "hashknownhosts",
        "checkhostip",
        "updatehostkeys",
        "addkeystoagent",
        "batchmode",
        "connectionattempts",
        "identitiesonly",
        "preferredauthentications",
        "pubkeyauthentication",
        "passwordauthentication",
        "kbdinteractiveauthentication",
        "gssapiauthentication",
        "gssapidelegatecredentials",
        "visualhostkey",
        "requesttty",
        "hostkeyalgorithms",
        "pubkeyacceptedalgorithms",
        "pubkeyacceptedkeytypes",
        "ciphers",
        "macs",
        "kexalgorithms",
        "numberofpasswordprompts",
        "exitonforwardfailure",
        "clearallforwardings",
    }
)
#: ssh flags without a value that change nothing for us (-C compression, -q quiet, -v verbose, ...).
HARMLESS_FLAGS = frozenset("CqvAaTtxX46")
SUDO_FLAGS = frozenset({"-H", "-S", "-n", "-E"})  # Ansible's default "-H -S -n", plus -E: nothing to us


@dataclass(frozen=True)
class ConnectionVars:
    """How to reach one host, beyond address/port/user/key (which HostEntry holds)."""

    ssh_args: tuple[str, ...] = ()
    """Every argument of ansible_ssh_args, _common_args, _extra_args, split as a shell would."""
    proxy_jump: str | None = None
    """`[user@]host[:port][,...]` from -o ProxyJump / -J; 'none' turns off one from ~/.ssh/config."""
    proxy_command: str | None = None
    """-o ProxyCommand; 'none' turns off one from ~/.ssh/config."""
    identity_file: str | None = None
    connect_timeout: float | None = None
    host_key_checking: bool | None = None
    password: str | None = field(default=None, repr=False)
    become_password: str | None = field(default=None, repr=False)
    warnings: tuple[str, ...] = ()

    @property
    def proxied(self) -> bool:
        """True when the inventory routes this host through a jump host or a proxy command."""
        return any(value not in (None, "none") for value in (self.proxy_jump, self.proxy_command))

    def option(self, name: str) -> str | None:
        """The value ssh would use for -o NAME from these arguments (the first one given)."""
        return ssh_options(self.ssh_args).get(name.lower())


def with_aliases(hvars: Mapping[str, Any]) -> dict[str, Any]:
    """HVARS with Ansible's older names (ansible_ssh_host, ...) under the names inventory.py reads."""
    result = dict(hvars)
    for old, new in ALIASES.items():
        if old in result and new not in result:
            result[new] = result[old]
    return result


def split_ssh_args(value: Any, where: str) -> list[str]:
    """One of the ansible_ssh_*args strings as a shell splits it: `-o 'ProxyCommand=ssh -W %h:%p b'`."""
    if not isinstance(value, str) or "\n" in value:
        raise InputError(where, "must be a one-line string")
    _no_template(value, where)
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise InputError(where, f"cannot split it as a shell would: {exc}") from None


def ssh_options(args: tuple[str, ...] | list[str]) -> dict[str, str]:
    """The -o options (lower-case name → value) and -J/-i of ARGS, the first value winning as in ssh.

    Raises ValueError for arguments ssh would not take (read_connection_vars reports them first).
    """
    found: dict[str, str] = {}
    for flag, value in _parsed(args):
        if flag == "o":
            name, _, option_value = value.replace("=", " ", 1).partition(" ")
            name, option_value = name.lower(), option_value.strip()
        elif flag in "Ji" and flag:
            name, option_value = ("proxyjump" if flag == "J" else "identityfile"), value
        else:
            continue
        if name in ("proxyjump", "proxycommand") and ("proxyjump" in found or "proxycommand" in found):
            continue  # ssh: whichever of the two comes first disables the other
        found.setdefault(name, option_value)
    return found


def _parsed(args: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    """(flag letter, value) pairs: -o X / -oX, -J X, -i X; flags without a value give ''; others raise."""
    pairs: list[tuple[str, str]] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if not arg.startswith("-") or len(arg) < 2:
            raise ValueError(f"unexpected argument {arg!r} (expected ssh options such as -o Name=value)")
        letters = arg[1:]
        while letters:
            letter, letters = letters[0], letters[1:]
            if letter in "oJiFplcmDLRWwbBeEIOQS":
                value = letters
                if not value:
                    if index >= len(args):
                        raise ValueError(f"-{letter} needs a value")
                    value, index = args[index], index + 1
                pairs.append((letter, value))
                break
            pairs.append((letter, ""))
    return pairs


def _no_template(value: str, where: str) -> None:
    if "{{" in value or "{%" in value:
        raise InputError(where, "Jinja2 templates are not evaluated by sshd-setup: give the value itself")


def _check_args(source: str, args: list[str], where: str, warnings: list[str]) -> None:
    try:
        pairs = _parsed(args)
    except ValueError as exc:
        raise InputError(where, str(exc)) from None
    for flag, value in pairs:
        if flag == "o":
            name = value.replace("=", " ", 1).partition(" ")[0]
            if name.lower() in IMPLEMENTED_OPTIONS:
                continue
            if name.lower() in HARMLESS_OPTIONS:
                warnings.append(f"{source}: ssh option {name} has no effect on sshd-setup's connections (ignored)")
                continue
            raise InputError(where, f"ssh option {name!r} is not supported by sshd-setup")
        if flag in "Ji":
            continue
        if flag in HARMLESS_FLAGS:
            warnings.append(f"{source}: ssh flag -{flag} has no effect on sshd-setup's connections (ignored)")
            continue
        raise InputError(where, f"ssh flag -{flag} is not supported by sshd-setup")


def parse_hop(hop: str) -> tuple[str | None, str, int | None]:
    """(user, host, port) of one ProxyJump hop: `[user@]host[:port]`, `[v6addr]:port` or `ssh://...`."""
    rest = hop.strip().removeprefix("ssh://")
    user, _, hostport = rest.rpartition("@")
    host, port = hostport, ""
    if hostport.startswith("["):
        host, _, port = hostport[1:].partition("]")
        port = port.removeprefix(":")
    elif hostport.count(":") == 1:
        host, port = hostport.split(":")
    if port and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError(f"bad port {port!r}")
    return user or None, host, int(port) if port else None


def _jump_hops(value: str, where: str) -> str:
    if value.lower() == "none":
        return "none"
    for hop in value.split(","):
        try:
            user, host, _ = parse_hop(hop)
        except ValueError as exc:
            raise InputError(where, f"ProxyJump hop {hop!r}: {exc}") from None
        problem = (user and check_user(user)) or check_hostname(host)
        if problem:
            raise InputError(where, f"ProxyJump hop {hop!r}: {problem}")
    return value


def _first(hvars: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str, Any] | None:
    for name in names:
        if hvars.get(name) is not None:
            return name, hvars[name]
    return None


def _secret(hvars: Mapping[str, Any], names: tuple[str, ...], where: str) -> str | None:
    found = _first(hvars, names)
    if found is None:
        return None
    name, value = found
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InputError(f"{where}.{name}", "must be a string")
    text = str(value)
    _no_template(text, f"{where}.{name}")
    if any(c in text for c in "\n\r\0"):
        raise InputError(f"{where}.{name}", "contains a line break or NUL: sudo and ssh read a password as one line")
    return text


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return value.lower() in ("true", "yes", "on", "1")
    raise InputError(where, f"must be true or false, got {value!r}")


def _check_names(hvars: Mapping[str, Any], where: str, warnings: list[str]) -> None:
    known = sorted(HANDLED | HARMLESS_VARS | set(REFUSED_VARS))
    for name in hvars:
        if not name.startswith("ansible_") or name in HANDLED:
            continue
        if name in REFUSED_VARS:
            raise InputError(f"{where}.{name}", f"not supported: {REFUSED_VARS[name]}")
        if name in HARMLESS_VARS or name.endswith("_interpreter"):
            warnings.append(f"{name} has no effect on sshd-setup (ignored)")
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        if close or name.startswith(("ansible_ssh_", "ansible_become_", "ansible_sudo_")):
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise InputError(f"{where}.{name}", f"unknown connection variable{hint}")
        warnings.append(f"{name} is not a connection variable sshd-setup knows (ignored)")


def read_connection_vars(hvars: Mapping[str, Any], where: str, become: bool) -> ConnectionVars:
    """The connection settings of one host from its merged variables; WHERE: 'FILE: host NAME'."""
    warnings: list[str] = []
    _check_names(hvars, where, warnings)
    args: list[str] = []
    for name in ARG_VARS:
        if hvars.get(name) is None:
            continue
        split = split_ssh_args(hvars[name], f"{where}.{name}")
        _check_args(name, split, f"{where}.{name}", warnings)
        args.extend(split)
    options = ssh_options(args)
    args_where = f"{where}.ansible_ssh_common_args"
    jump = _jump_hops(options["proxyjump"], args_where) if "proxyjump" in options else None
    command = options.get("proxycommand")
    if command is not None and not command.strip():
        raise InputError(args_where, "ProxyCommand is empty")

    timeout: float | None = None
    found = _first(hvars, TIMEOUT_VARS)
    raw_timeout = found[1] if found else options.get("connecttimeout")
    if raw_timeout is not None:
        try:
            timeout = float(raw_timeout)
        except (TypeError, ValueError):
            timeout = 0.0
        if isinstance(raw_timeout, bool) or not 0 < timeout <= 3600:
            name = found[0] if found else "ConnectTimeout"
            raise InputError(f"{where}.{name}", f"must be a number of seconds (1-3600), got {raw_timeout!r}")
    checking = None
    found = _first(hvars, HOST_KEY_VARS)
    if found is not None:
        checking = _bool(found[1], f"{where}.{found[0]}")

    if become:
        _check_become(hvars, where, warnings)
    return ConnectionVars(
        ssh_args=tuple(args),
        proxy_jump=jump,
        proxy_command=command,
        identity_file=options.get("identityfile"),
        connect_timeout=timeout,
        host_key_checking=checking,
        password=_secret(hvars, PASSWORD_VARS, where),
        become_password=_secret(hvars, BECOME_PASSWORD_VARS, where),
        warnings=tuple(warnings),
    )


def _check_become(hvars: Mapping[str, Any], where: str, warnings: list[str]) -> None:
    method = hvars.get("ansible_become_method", "sudo")
    if method != "sudo":
        problem = f"{method!r} is not supported (sshd-setup becomes root with sudo)"
        raise InputError(f"{where}.ansible_become_method", problem)
    found = _first(hvars, BECOME_USER_VARS)
    if found is not None and found[1] != "root":
        raise InputError(f"{where}.{found[0]}", f"{found[1]!r} is not supported (sshd-setup must become root)")
    found = _first(hvars, BECOME_EXE_VARS)
    if found is not None and found[1] != "sudo":
        raise InputError(f"{where}.{found[0]}", f"{found[1]!r} is not supported (sshd-setup runs sudo from PATH)")
    found = _first(hvars, BECOME_FLAG_VARS)
    if found is not None:
        flags = str(found[1]).split()
        if not set(flags) <= SUDO_FLAGS:
            raise InputError(f"{where}.{found[0]}", f"{found[1]!r} is not supported (only -H -S -n -E are understood)")
        if flags:
            warnings.append(f"{found[0]} {found[1]!r}: sshd-setup chooses sudo's flags itself (ignored)")
