"""Small sshd_config trees where the precedence rules matter, with what sshd prints under each rule.

Shared by the local oracle (tests/test_oracle.py) and the container hosts (tests/test_precedence_hosts.py),
so OpenSSH 8.4, 9.2 and 10.0 all judge the same cases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sshd_setup.core.desired import Desired
from sshd_setup.core.matching import Connection
from sshd_setup.core.openssh import apc_last_wins
from sshd_setup.core.precedence import decide
from sshd_setup.core.tree import ConfigTree, SnapshotSource, load_tree
from tests.sshd_oracle import SshdResult

MAIN = "/etc/ssh/sshd_config"
HEADER = "AuthorizedPrincipalsCommandUser nobody\nAuthorizedKeysCommandUser nobody\n"


@dataclass(frozen=True)
class Case:
    name: str
    config: str
    user: str
    legacy: str
    """What sshd 8.7 to 9.3 prints for authorizedprincipalscommand (bz3574: the last active line wins until
    an AuthorizedKeysCommand has been read)."""
    modern: str
    """What sshd before 8.7 or from 9.4 on prints (the first active line wins)."""


CASES = (
    Case(
        "global-two",
        HEADER + "AuthorizedPrincipalsCommand /bin/echo first\nAuthorizedPrincipalsCommand /bin/echo second\n",
        "alice",
        legacy="/bin/echo second",
        modern="/bin/echo first",
    ),
    Case(
        "global-keys-command-between",
        HEADER
        + "AuthorizedPrincipalsCommand /bin/echo first\nAuthorizedPrincipalsCommand /bin/echo second\n"
        + "AuthorizedKeysCommand /bin/true\nAuthorizedPrincipalsCommand /bin/echo third\n",
        "alice",
        legacy="/bin/echo second",
        modern="/bin/echo first",
    ),
    Case(
        "match-two",
        HEADER
        + "AuthorizedPrincipalsCommand /bin/echo global\nMatch User alice\n"
        + "    AuthorizedPrincipalsCommand /bin/echo m1\n    AuthorizedPrincipalsCommand /bin/echo m2\n",
        "alice",
        legacy="/bin/echo m2",
        modern="/bin/echo m1",
    ),
    Case(
        "match-other-user",
        HEADER
        + "AuthorizedPrincipalsCommand /bin/echo global\nMatch User alice\n"
        + "    AuthorizedPrincipalsCommand /bin/echo m1\n    AuthorizedPrincipalsCommand /bin/echo m2\n",
        "bob",
        legacy="/bin/echo global",
        modern="/bin/echo global",
    ),
    Case(
        "match-keys-command-first",
        HEADER
        + "Match User alice\n    AuthorizedKeysCommand /bin/true\n"
        + "    AuthorizedPrincipalsCommand /bin/echo m1\n    AuthorizedPrincipalsCommand /bin/echo m2\n",
        "alice",
        legacy="none",
        modern="/bin/echo m1",
    ),
)


def parse_version(text: str) -> tuple[int, int]:
    """(major, minor) from `ssh -V` output such as 'OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL ...'."""
    found = re.search(r"OpenSSH_(\d+)\.(\d+)", text)
    assert found, f"no OpenSSH version in {text!r}"
    return int(found.group(1)), int(found.group(2))


def expected(case: Case, version: tuple[int, int]) -> str:
    return case.legacy if apc_last_wins(version) else case.modern


def engine_value(case: Case, version: tuple[int, int]) -> str:
    """What core/precedence.py says sshd of this version uses, as sshd -T prints it."""
    tree = load_tree(SnapshotSource.of({MAIN: case.config}, {"/etc/ssh"}), MAIN)
    winner = decide(
        tree,
        ("authorizedprincipalscommand",),
        Connection(user=case.user, host="h", addr="192.0.2.1"),
        legacy=apc_last_wins(version),
    ).winner
    return winner.line.value if winner is not None else "none"


#: Keywords compared with `sshd -T` for every login.
KEYWORDS = (
    "pubkeyauthentication",
    "trustedusercakeys",
    "passwordauthentication",
    "permitrootlogin",
    "authorizedprincipalsfile",
    "authorizedprincipalscommand",
    "authorizedprincipalscommanduser",
    "forcecommand",
    "chrootdirectory",
)


def logins(desired: Desired) -> list[tuple[str, str]]:
    """(user, client address): one unmapped user, every mapped user, and one from inside 10.0.0.0/8."""
    users = ["alice", *dict.fromkeys(m.user for m in desired.mappings)]
    return [(u, "192.0.2.1") for u in users] + [("vmuser", "10.1.2.3")]


def as_sshd_prints(keyword: str, value: str) -> str:
    """sshd -T lower-cases yes/no style values and prints some aliases under their canonical name."""
    if keyword in ("pubkeyauthentication", "passwordauthentication", "permitrootlogin"):
        value = value.lower()
    return {"prohibit-password": "without-password"}.get(value, value)


def assert_engine_agrees(tree: ConfigTree, user: str, addr: str, sshd: SshdResult, *, legacy: bool, stage: str) -> int:
    """decide() for the concrete connection names the line whose value sshd printed (a default, where no line
    decides, is not modelled); decide() for the user alone, other criteria unknown, names that line as its
    winner or among the lines that may decide, and exactly it when nothing is uncertain. Returns the count of
    values compared."""
    conn = Connection(user=user, host="h", addr=addr)
    compared = 0
    for keyword in KEYWORDS:
        ours = decide(tree, (keyword,), conn, legacy=legacy).winner
        assert tree.effective(keyword, conn, legacy=legacy) is ours
        where = f"{stage} {user}@{addr} {keyword}"
        if ours is not None:
            assert sshd.value(keyword) == as_sshd_prints(keyword, ours.line.value), f"{where} ({ours.where})"
            compared += 1
        for_user = decide(tree, (keyword,), user, legacy=legacy)
        if not for_user.maybes:
            assert for_user.winner is ours, f"{where}: user-only decision differs"
        else:
            candidates = [for_user.winner, *(m for m, _ in for_user.maybes)]
            assert ours in candidates, f"{where}: {ours} not among {candidates}"
    return compared
