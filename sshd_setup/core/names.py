"""Safe sets for the names and paths that end up in sshd_config, principals files and commands.

Anything outside these sets is refused before any host is contacted: inventory text must never be able
to inject a line, an option or shell syntax.
"""

from __future__ import annotations

import posixpath
import re

_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_PRINCIPAL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,254}")
_PATH = re.compile(r"/[A-Za-z0-9_.+@/-]*")
_HOSTNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,252}")
_INVENTORY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,252}")


def _describe_bad(value: str, what: str) -> str:
    if value == "":
        return f"{what} is empty"
    if any(ch in value for ch in "\r\n"):
        return f"{what} {value!r} contains a line break"
    if any(ch.isspace() for ch in value):
        return f"{what} {value!r} contains whitespace"
    if any(ch in value for ch in "'\"`"):
        return f"{what} {value!r} contains a quote"
    if "%" in value:
        return f"{what} {value!r} contains '%' (sshd would expand it as a token)"
    if "," in value:
        return f"{what} {value!r} contains a comma (sshd would read a list)"
    if value.startswith("-"):
        return f"{what} {value!r} starts with '-' (would read as an option)"
    if any(ch in value for ch in "*?!"):
        return f"{what} {value!r} contains a wildcard or negation character"
    bad = sorted({ch for ch in value if not (ch.isascii() and (ch.isalnum() or ch in "_.-+=@/:"))})
    if bad:
        return f"{what} {value!r} contains characters outside the safe set: {''.join(bad)!r}"
    return f"{what} {value!r} is not allowed (too long or bad first character)"


def check_user(value: str) -> str | None:
    """None when value is a safe Unix user name, else a one-line reason."""
    if _USER.fullmatch(value):
        return None
    return _describe_bad(value, "user name")


def principal_of(value: str) -> str:
    """A principal given as an e-mail address means its prefix (jdoe@example.com → jdoe)."""
    return value.split("@", 1)[0] if "@" in value else value


def check_principal(value: str) -> str | None:
    if value.count("@") > 1:
        return f"principal {value!r} has more than one '@'"
    if _PRINCIPAL.fullmatch(principal_of(value)) and (
        "@" not in value or re.fullmatch(r"[A-Za-z0-9.-]+", value.split("@", 1)[1])
    ):
        return None
    return _describe_bad(value, "principal")


def check_path(value: str, what: str = "path") -> str | None:
    """Absolute, normalised, from a safe character set."""
    if not value.startswith("/"):
        return f"{what} {value!r} must be absolute"
    if not _PATH.fullmatch(value):
        return _describe_bad(value, what)
    if posixpath.normpath(value) != value or "//" in value:
        return f"{what} {value!r} is not normalised (expected {posixpath.normpath(value)!r})"
    if value == "/" or value.endswith("/"):
        return f"{what} {value!r} names a directory, not a file"
    return None


def check_hostname(value: str) -> str | None:
    if _HOSTNAME.fullmatch(value):
        return None
    return _describe_bad(value, "host address")


def check_inventory_name(value: str) -> str | None:
    if _INVENTORY_NAME.fullmatch(value):
        return None
    return _describe_bad(value, "inventory name")
