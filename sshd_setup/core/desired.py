"""The desired state of one host (CA keys, principal mappings), validated from inventory data.

Validation is strict and happens before any host is contacted; every error names where it is.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from collections.abc import Mapping as MappingT
from dataclasses import dataclass, field
from typing import Any, Literal

from sshd_setup.core.names import check_path, check_principal, check_user, principal_of
from sshd_setup.core.pathpolicy import check_managed_dir, managed_file_problem, sshd_config_problem
from sshd_setup.core.sshkeys import InvalidKey, PublicKey, parse_key_file, parse_public_key
from sshd_setup.errors import InputError

Mode = Literal["single", "list", "any"]
ForeignCa = Literal["refuse", "merge", "replace"]
Flow = Literal["ssh-proxy", "access-infrastructure"]
FLOWS = ("ssh-proxy", "access-infrastructure")

DEFAULT_CA_PATH = "/etc/ssh/ca.pub"
DEFAULT_SSHD_CONFIG = "/etc/ssh/sshd_config"
PRINCIPALS_DIR = "/etc/ssh/principals"

SETTINGS_KEYS = (
    "ca_keys",
    "ca_keys_file",
    "ca_path",
    "principals",
    "allow_all",
    "create_users",
    "sshd_config",
    "foreign_ca_keys",
    "backups_keep",
    "flow",
    "port",
    "virtual_network",
    "managed_dirs",
)
MAPPING_KEYS = ("user", "principal", "principals", "file", "any_principal")


@dataclass(frozen=True)
class Mapping:
    """Certificates with these principals may log in as `user`."""

    user: str
    mode: Mode
    principals: tuple[str, ...] = ()
    file: str | None = None
    """The principals file (list mode only)."""

    def describe(self) -> str:
        if self.mode == "single":
            return f"{self.user} ← principal {self.principals[0]}"
        if self.mode == "list":
            return f"{self.user} ← principals in {self.file} ({', '.join(self.principals)})"
        return f"{self.user} ← any certificate signed by the CA"


@dataclass(frozen=True)
class Desired:
    ca_keys: tuple[PublicKey, ...]
    mappings: tuple[Mapping, ...] = ()
    ca_path: str = DEFAULT_CA_PATH
    allow_all: bool = False
    create_users: bool = False
    sshd_config: str = DEFAULT_SSHD_CONFIG
    foreign_ca_keys: ForeignCa = "refuse"
    backups_keep: int = 5
    flow: Flow = "ssh-proxy"
    port: int = 22
    """The port the gateway connects to: 22 for the SSH proxy, the target criteria's port otherwise."""
    virtual_network: str | None = None
    """The gateway's virtual network holding this host's Target (``gateway targets sync``)."""
    managed_dirs: tuple[str, ...] = ()
    """Directories besides /etc/ssh where the CA file and principals files may live (the path policy)."""
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def mapping_for(self, user: str) -> Mapping | None:
        return next((m for m in self.mappings if m.user == user), None)


def _did_you_mean(key: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(choices)})"


def _expect(value: object, kind: type | tuple[type, ...], where: str, what: str) -> None:
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else ()):
        raise InputError(where, f"{what} must be {_kind_name(kind)}, not a boolean")
    if not isinstance(value, kind):
        raise InputError(where, f"{what} must be {_kind_name(kind)}, got {type(value).__name__}")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", bool: "true or false", list: "a list", dict: "a mapping", int: "a number"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def check_settings_fragment(fragment: object, where: str) -> None:
    """Validate one `sshd_setup` dict where it is written (a group's or host's vars)."""
    if fragment is None:
        return
    _expect(fragment, dict, where, "sshd_setup")
    assert isinstance(fragment, dict)
    for key, value in fragment.items():
        here = f"{where}.{key}"
        if not isinstance(key, str) or key not in SETTINGS_KEYS:
            raise InputError(here, f"unknown key {key!r}{_did_you_mean(str(key), SETTINGS_KEYS)}")
        if key == "ca_keys":
            _expect(value, list, here, "ca_keys")
            for index, line in enumerate(value):
                _expect(line, str, f"{here}[{index}]", "a CA key")
                try:
                    parse_public_key(line)
                except InvalidKey as exc:
                    raise InputError(f"{here}[{index}]", f"not a valid SSH public key: {exc}") from None
        elif key == "ca_keys_file":
            _expect(value, str, here, "ca_keys_file")
            if not value.strip() or "\n" in value:
                raise InputError(here, "ca_keys_file must be a file name")
        elif key in ("ca_path", "sshd_config"):
            _expect(value, str, here, key)
            problem = check_path(value, key)
            if problem:
                raise InputError(here, problem)
        elif key in ("allow_all", "create_users"):
            _expect(value, bool, here, key)
        elif key == "foreign_ca_keys":
            if value not in ("refuse", "merge", "replace"):
                raise InputError(here, f"foreign_ca_keys must be 'merge', 'replace' or 'refuse', got {value!r}")
        elif key == "backups_keep":
            _expect(value, int, here, key)
            if not 1 <= value <= 1000:
                raise InputError(here, "backups_keep must be between 1 and 1000")
        elif key == "flow":
            if value not in FLOWS:
                raise InputError(here, f"flow must be 'ssh-proxy' or 'access-infrastructure', got {value!r}")
        elif key == "port":
            _expect(value, int, here, key)
            if not 1 <= value <= 65535:
                raise InputError(here, f"port must be a port number (1-65535), got {value!r}")
        elif key == "virtual_network":
            _expect(value, str, here, key)
            if not value.strip() or len(value) > 255 or not value.isprintable():
                raise InputError(here, "virtual_network must be a virtual network's name (one printable line)")
        elif key == "managed_dirs":
            _expect(value, list, here, "managed_dirs")
            for index, directory in enumerate(value):
                _expect(directory, str, f"{here}[{index}]", "a managed directory")
                problem = check_managed_dir(directory)
                if problem:
                    raise InputError(f"{here}[{index}]", problem)
        elif key == "principals":
            _expect(value, list, here, "principals")
            for index, entry in enumerate(value):
                _check_mapping(entry, f"{here}[{index}]")


def _check_mapping(entry: object, where: str) -> None:
    _expect(entry, dict, where, "a principal mapping")
    assert isinstance(entry, dict)
    for key in entry:
        if key not in MAPPING_KEYS:
            raise InputError(f"{where}.{key}", f"unknown key {key!r}{_did_you_mean(str(key), MAPPING_KEYS)}")
    if "user" not in entry:
        raise InputError(where, "a mapping needs 'user'")
    _expect(entry["user"], str, f"{where}.user", "user")
    problem = check_user(entry["user"])
    if problem:
        raise InputError(f"{where}.user", problem)
    modes = [key for key in ("principal", "principals", "any_principal") if key in entry]
    if len(modes) != 1:
        raise InputError(
            where,
            "a mapping needs exactly one of 'principal', 'principals' or 'any_principal: true'"
            + (f" (found {', '.join(modes)})" if modes else ""),
        )
    if "file" in entry and modes != ["principals"]:
        raise InputError(f"{where}.file", "'file' goes only with a 'principals' list")
    if "principal" in entry:
        _check_principal(entry["principal"], f"{where}.principal")
    if "principals" in entry:
        principals = entry["principals"]
        _expect(principals, list, f"{where}.principals", "principals")
        if not principals:
            raise InputError(f"{where}.principals", "the list is empty (nobody could log in)")
        for index, principal in enumerate(principals):
            _check_principal(principal, f"{where}.principals[{index}]")
    if "any_principal" in entry and entry["any_principal"] is not True:
        raise InputError(f"{where}.any_principal", "any_principal must be true (or leave it out)")
    if "file" in entry:
        _expect(entry["file"], str, f"{where}.file", "file")
        problem = check_path(entry["file"], "principals file")
        if problem:
            raise InputError(f"{where}.file", problem)


def _check_principal(value: object, where: str) -> None:
    _expect(value, str, where, "a principal")
    assert isinstance(value, str)
    problem = check_principal(value)
    if problem:
        raise InputError(where, problem)


def build_desired(
    settings: MappingT[str, Any],
    where: str,
    read_keys_file: Callable[[str], tuple[str, str]],
    origins: MappingT[str, str] | None = None,
) -> Desired:
    """Turn merged, fragment-checked settings into a Desired.

    read_keys_file(name) returns (text, display path) of a ca_keys_file; it may raise InputError.
    origins: where each setting was written (key -> 'file: group.vars.sshd_setup'), for error lines.
    """
    warnings: list[str] = []
    keys: list[PublicKey] = [parse_public_key(line) for line in settings.get("ca_keys", [])]
    if "ca_keys_file" in settings:
        text, shown = read_keys_file(settings["ca_keys_file"])
        try:
            from_file = parse_key_file(text)
        except InvalidKey as exc:
            raise InputError(shown, f"not a valid SSH public key file: {exc}") from None
        if not from_file:
            raise InputError(shown, "the CA keys file holds no key")
        keys.extend(from_file)
    if not keys:
        raise InputError(where, "no CA key: set sshd_setup.ca_keys or sshd_setup.ca_keys_file")
    unique: list[PublicKey] = []
    for key in keys:
        if any(key.same_key(seen) for seen in unique):
            warnings.append(f"{where}: CA key {key.fingerprint} is listed twice; keeping it once")
            continue
        unique.append(key)

    flow = settings.get("flow", "ssh-proxy")
    port = int(settings.get("port", 22))
    if flow == "ssh-proxy" and port != 22:
        raise InputError(
            f"{where}.port", f"port {port} needs flow: access-infrastructure (the SSH proxy connects to port 22 only)"
        )
    # The SSH proxy signs certificates for the e-mail prefix; Access for Infrastructure names the Unix
    # username the policy allows, so there a principal is used exactly as written.
    principal = principal_of if flow == "ssh-proxy" else str

    mappings: list[Mapping] = []
    files_seen: dict[str, str] = {}
    all_raw: list[str] = []
    for index, entry in enumerate(settings.get("principals", [])):
        here = f"{where}.principals[{index}]"
        user = entry["user"]
        if any(m.user == user for m in mappings):
            raise InputError(here, f"user {user!r} is mapped twice (sshd would use only the first block)")
        if "principal" in entry:
            mapping = Mapping(user, "single", (principal(entry["principal"]),))
            raw_principals = [entry["principal"]]
        elif "principals" in entry:
            raw_principals = list(entry["principals"])
            principals = tuple(dict.fromkeys(principal(p) for p in raw_principals))
            file = entry.get("file") or f"{PRINCIPALS_DIR}/{user}"
            if file in files_seen:
                raise InputError(f"{here}.file", f"{file} is already the principals file of {files_seen[file]!r}")
            files_seen[file] = user
            mapping = Mapping(user, "list", principals, file)
        else:
            mapping = Mapping(user, "any")
            raw_principals = []
        all_raw.extend(raw_principals)
        mappings.append(mapping)
    if flow == "ssh-proxy":
        warnings.extend(_email_collisions(all_raw, f"{where}.principals"))

    ca_path = settings.get("ca_path", DEFAULT_CA_PATH)
    if ca_path in files_seen:
        raise InputError(where, f"ca_path {ca_path} is also used as a principals file")
    managed_dirs = tuple(settings.get("managed_dirs", ()))
    sshd_config = settings.get("sshd_config", DEFAULT_SSHD_CONFIG)
    _check_paths(ca_path, sshd_config, mappings, managed_dirs, where, origins or {})
    return Desired(
        ca_keys=tuple(unique),
        mappings=tuple(mappings),
        ca_path=ca_path,
        allow_all=bool(settings.get("allow_all", False)),
        create_users=bool(settings.get("create_users", False)),
        sshd_config=sshd_config,
        foreign_ca_keys=settings.get("foreign_ca_keys", "refuse"),
        backups_keep=int(settings.get("backups_keep", 5)),
        flow=flow,
        port=port,
        virtual_network=settings.get("virtual_network"),
        managed_dirs=managed_dirs,
        warnings=tuple(warnings),
    )


def _check_paths(
    ca_path: str,
    sshd_config: str,
    mappings: list[Mapping],
    managed_dirs: tuple[str, ...],
    where: str,
    origins: MappingT[str, str],
) -> None:
    """The managed-path policy on the merged settings (managed_dirs may come from another group)."""

    def at(key: str) -> str:
        return f"{origins.get(key, where)}.{key}"

    problem = sshd_config_problem(sshd_config, managed_dirs)
    if problem:
        raise InputError(at("sshd_config"), problem)
    problem = managed_file_problem(ca_path, "ca_path", managed_dirs)
    if problem:
        raise InputError(at("ca_path"), problem)
    if ca_path == sshd_config:
        raise InputError(at("ca_path"), f"ca_path {ca_path} is the sshd_config file itself")
    for index, mapping in enumerate(mappings):
        if mapping.file is None:
            continue
        here = f"{at('principals')}[{index}].file"
        problem = managed_file_problem(mapping.file, "principals file", managed_dirs)
        if problem:
            raise InputError(here, problem)
        if mapping.file == sshd_config:
            raise InputError(here, f"principals file {mapping.file} is the sshd_config file itself")


def _email_collisions(raw: list[str], where: str) -> list[str]:
    by_prefix: dict[str, list[str]] = {}
    for value in raw:
        if "@" in value:
            by_prefix.setdefault(principal_of(value), []).append(value)
    return [
        f"{where}: e-mail addresses {' and '.join(addresses)} share the prefix {prefix!r}: "
        f"the gateway signs both as {prefix!r}, so either person can log in"
        for prefix, addresses in by_prefix.items()
        if len(set(addresses)) > 1
    ]
