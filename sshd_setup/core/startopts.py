"""sshd's start options: the unit's ExecStart, SSHD_OPTS (/etc/default/ssh), OPTIONS (/etc/sysconfig/sshd). (pure)

sshd parses `-o KEY=VALUE` before its config file, so (first value wins) a command-line option beats every
line of sshd_config; `-p PORT` replaces every `Port` line; `-f FILE` names the config file it really reads.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from sshd_setup.core.facts import HostFacts
from sshd_setup.core.finding import Finding, Severity
from sshd_setup.core.openssh import ACCESS_KEYWORDS, CANONICAL, WATCHED_KEYWORDS

WATCHED = (*WATCHED_KEYWORDS, *ACCESS_KEYWORDS)
"""Keywords whose value given with -o on sshd's command line overrides every line of sshd_config."""
ENV_FILES = {"/etc/default/ssh": "SSHD_OPTS", "/etc/sysconfig/sshd": "OPTIONS"}
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass(frozen=True)
class StartOptions:
    source: str
    """Where they come from, e.g. 'ssh.service ExecStart (with /etc/default/ssh)'."""
    ports: tuple[int, ...] = ()
    options: tuple[tuple[str, str], ...] = ()
    """(lowercase keyword, value) of every -o, in order."""
    config: str = ""


def _strip_quotes(value: str) -> str:
    value = value.strip()
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'" else value


def _environment(facts: HostFacts, files: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for raw in files:
        for path in raw.split():
            for key, value in facts.start_env.get(path.lstrip("-"), {}).items():
                env[key] = _strip_quotes(value)
    return env


def _words(command: str, env: dict[str, str]) -> list[str]:
    expanded = _VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), command)
    try:
        return shlex.split(expanded)
    except ValueError:
        return expanded.split()


def parse_words(words: list[str], source: str) -> StartOptions:
    ports: list[int] = []
    options: list[tuple[str, str]] = []
    config = ""
    i = 0
    while i < len(words):
        word = words[i]
        value = None
        if word in ("-p", "-o", "-f") and i + 1 < len(words):
            value, i = words[i + 1], i + 1
        elif len(word) > 2 and word[:2] in ("-p", "-o", "-f"):
            value = word[2:]
        if value is not None:
            if word.startswith("-p") and value.isdigit():
                ports.append(int(value))
            elif word.startswith("-o"):
                key, _, rest = value.replace("=", " ", 1).partition(" ")
                options.append((key.lower(), rest.strip()))
            elif word.startswith("-f"):
                config = value
        i += 1
    return StartOptions(source, tuple(ports), tuple(options), config)


def start_options(facts: HostFacts, unit: str, manager: str, per_connection: bool) -> StartOptions | None:
    """The options sshd runs with: from the unit that starts it (systemd) or the init script's file."""
    if manager == "systemd":
        name = f"{unit}@.service" if per_connection else f"{unit}.service"
        commands = [c for c in facts.unit_exec.get(name, []) if "sshd" in c or not c]
        command = ""
        for value in commands:  # an empty ExecStart= resets the list
            command = value
        if not command:
            return None
        env = _environment(facts, facts.unit_env_files.get(name, []))
        shown = [p for p in (f.lstrip("-") for fs in facts.unit_env_files.get(name, []) for f in fs.split()) if p]
        source = f"{name} ExecStart" + (f" (with {', '.join(shown)})" if shown else "")
        return parse_words(_words(command.lstrip("-@+!:"), env)[1:], source)  # ExecStart's prefixes
    for path, variable in ENV_FILES.items():
        setting = facts.start_env.get(path, {}).get(variable)
        if setting:
            return parse_words(_words(_strip_quotes(setting), {}), f"{variable} in {path}")
    return None


def _port_of(address: str) -> int | None:
    match = re.fullmatch(r"\[.*\]:(\d+)|[^:]*:(\d+)", address.split()[0] if address.split() else "")
    if match is None:
        return None
    return int(match.group(1) or match.group(2))


def start_findings(options: StartOptions | None, main: str) -> list[Finding]:
    if options is None:
        return []
    out: list[Finding] = []
    where = options.source
    ports = list(options.ports) + [int(v) for k, v in options.options if k == "port" and v.isdigit()]
    listens = [(v, _port_of(v)) for k, v in options.options if k == "listenaddress"]
    for port in sorted(set(ports) - {22}):
        out.append(
            Finding(
                "START-OPTION-PORT",
                Severity.ERROR,
                f"sshd is started with port {port} ({where}): command-line ports replace every Port line of "
                + ("sshd_config" if 22 in ports else "sshd_config, so sshd does not listen on 22")
                + ", and the gateway proxies to port 22 only",
                f"remove it from {where}, or pass --allow START-OPTION-PORT if the port is intended",
            )
        )
    for address, bound in listens:
        if bound is not None and bound != 22:
            out.append(
                Finding(
                    "START-OPTION-PORT",
                    Severity.ERROR,
                    f"sshd is started with -o ListenAddress={address} ({where}): it binds port {bound}, and the "
                    "command line wins over sshd_config",
                    f"remove it from {where}, or pass --allow START-OPTION-PORT",
                )
            )
    for keyword, value in options.options:
        if keyword in WATCHED:
            out.append(
                Finding(
                    "START-OPTION-OVERRIDES",
                    Severity.ERROR,
                    f"sshd is started with -o {CANONICAL[keyword]}={value} ({where}): sshd reads the command line "
                    "before its config file, so this value wins over every line of sshd_config, ours included",
                    f"remove the option from {where}",
                )
            )
    if options.config and options.config != main:
        out.append(
            Finding(
                "START-OPTION-CONFIG",
                Severity.ERROR,
                f"sshd is started with -f {options.config} ({where}): that file, not the inventory's sshd_config "
                f"{main}, is its configuration, so changes to {main} would have no effect",
                f"set sshd_config: {options.config} in the inventory (or drop sshd_config to let sshd-setup follow -f)",
                options.config,
            )
        )
    elif options.config:
        out.append(
            Finding(
                "START-OPTION-CONFIG",
                Severity.INFO,
                f"sshd is started with -f {options.config} ({where}): that file is its configuration and is the "
                "one sshd-setup manages",
                "",
                options.config,
            )
        )
    return out


def running_options(facts: HostFacts) -> StartOptions | None:
    """The start options of the sshd this host runs (its service plan's unit)."""
    from sshd_setup.core.service import service_plan

    service = service_plan(facts)
    socket = facts.socket_unit
    return start_options(facts, service.unit, service.manager, socket is not None and socket.accept != "no")
