"""What "verified" means, as pure functions: each takes what was read from a host and returns problems.

Every problem is one line an operator can act on ("… is 0600, expected 0644"). The test modules of this
package read the host (through testinfra) and fail with these lines; the functions themselves touch
nothing, so they are unit-tested without hosts.
"""

from __future__ import annotations

from dataclasses import dataclass

from sshd_setup.core.blocks import MATCH_BEGIN, MATCH_END, MATCH_NAME, TOP_BEGIN, TOP_NAME, strip_managed_blocks
from sshd_setup.core.config import parse
from sshd_setup.core.desired import Desired, Mapping
from sshd_setup.core.plan import ALL_PRINCIPALS_COMMAND
from sshd_setup.core.sshkeys import InvalidKey, PublicKey, parse_public_key
from sshd_setup.templating import environment

KEPT_HEADER = "# Kept from "
"""ca_keys.j2 writes this comment above the keys kept from a foreign TrustedUserCAKeys file (merge)."""

UNMAPPED_USER = "sshd-setup-unmapped"
"""The user name asked about for "an unmapped user is unaffected" (never a mapped user: see unmapped_user)."""


def _short(text: str, limit: int = 80) -> str:
    text = text.rstrip("\r\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(key: PublicKey) -> str:
    return f"{key.key_type} {key.fingerprint}" + (f" ({key.comment})" if key.comment else "")


def file_meta_problems(path: str, exists: bool, owner: str, mode: int) -> list[str]:
    """Owner root and mode 0644: what sshd's StrictModes-like checks and the planner expect."""
    if not exists:
        return [f"{path} does not exist"]
    problems = []
    if owner != "root":
        problems.append(f"{path} is owned by {owner}, expected root")
    if mode != 0o644:
        problems.append(f"{path} has mode {mode:04o}, expected 0644")
    return problems


@dataclass(frozen=True)
class CaFileLine:
    number: int
    key: PublicKey
    kept: bool
    """Listed below the '# Kept from …' header (a foreign key kept by foreign_ca_keys: merge)."""


def parse_ca_file(text: str) -> tuple[list[CaFileLine], list[str]]:
    """The keys of a CA file with their line numbers, and a problem for every line that is not a key."""
    keys: list[CaFileLine] = []
    problems: list[str] = []
    kept = False
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if line.startswith(KEPT_HEADER):
            kept = True
        if not line or line.startswith("#"):
            continue
        try:
            keys.append(CaFileLine(number, parse_public_key(line), kept))
        except InvalidKey:  # its number only: what a CA path holds may be anything (never shown)
            problems.append(f"line {number} is not a valid SSH public key")
    return keys, problems


def ca_key_problems(path: str, text: str, desired: Desired) -> list[str]:
    """Exactly the inventory's CA keys (plus, with foreign_ca_keys: merge, the keys kept from before)."""
    keys, _invalid = parse_ca_file(text)
    problems: list[str] = []
    for wanted in desired.ca_keys:
        if not any(line.key.same_key(wanted) for line in keys):
            problems.append(f"{path} lacks the inventory's CA key {_describe(wanted)}")
    for line in keys:
        if any(line.key.same_key(wanted) for wanted in desired.ca_keys):
            continue
        if line.kept and desired.foreign_ca_keys == "merge":
            continue
        why = "not in the inventory"
        if desired.foreign_ca_keys == "merge":
            why += " and not below the '# Kept from' header of foreign_ca_keys: merge"
        problems.append(f"{path} line {line.number} trusts an unexpected key {_describe(line.key)}: {why}")
    seen: list[PublicKey] = []
    for line in keys:
        if any(line.key.same_key(other) for other in seen):
            problems.append(f"{path} line {line.number} repeats key {line.key.fingerprint}")
        seen.append(line.key)
    return problems


def ca_line_problems(path: str, text: str) -> list[str]:
    """Every line that is not blank and not a comment must be a key sshd can load."""
    keys, problems = parse_ca_file(text)
    if not keys and not problems:
        return [f"{path} holds no key at all"]
    return [f"{path} {problem}" for problem in problems]


def expected_blocks(desired: Desired) -> tuple[str, str | None]:
    """The managed blocks the inventory implies: (gateway CA block, principal mappings block or None)."""
    env = environment()
    context = {
        "ca_path": desired.ca_path,
        "allow_all": desired.allow_all,
        "mappings": desired.mappings,
        "all_principals_command": ALL_PRINCIPALS_COMMAND,
    }
    top = env.get_template("sshd_config_top.j2").render(context)
    bottom = env.get_template("sshd_config_match.j2").render(context) if desired.mappings else None
    return top, bottom


def _first_difference(found: str, expected: str) -> str:
    have, want = found.splitlines(), expected.splitlines()
    for index, (a, b) in enumerate(zip(have, want, strict=False)):
        if a.rstrip() != b.rstrip():
            return f"block line {index + 1} is {_short(a, 60)!r}, expected {_short(b, 60)!r}"
    if len(have) > len(want):
        return f"extra line {_short(have[len(want)], 60)!r}"
    return f"missing line {_short(want[len(have)], 60)!r}"


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n")


def top_block_problems(path: str, text: str, desired: Desired) -> list[str]:
    """The gateway CA block is the very first thing in sshd_config and says what the inventory says."""
    lines = text.split("\n")
    first = lines[0].rstrip("\r") if lines else ""
    start = next((i for i, line in enumerate(lines) if line.strip() == TOP_BEGIN), None)
    blocks = strip_managed_blocks(parse(text, path))
    if blocks.problem:
        return [f"{path}: sshd-setup's markers are damaged at line {blocks.problem_line}: {blocks.problem}"]
    problems: list[str] = []
    if start is None:
        problems.append(f"{path} has no '{TOP_BEGIN}' block (line 1 is {_short(first, 60)!r})")
        return problems
    if start != 0:
        problems.append(
            f"{path} line 1 is {_short(first, 60)!r}, not the managed gateway CA block (it starts at line "
            f"{start + 1}): lines above it are read first and win"
        )
    expected, _ = expected_blocks(desired)
    found = _normalise(blocks.found.get(TOP_NAME, ""))
    if found != expected:
        problems.append(
            f"{path}: the gateway CA block differs from the inventory: {_first_difference(found, expected)}"
        )
    return problems


def match_block_problems(path: str, text: str, desired: Desired) -> list[str]:
    """The principal mappings block is the very last thing in sshd_config (none when nothing is mapped)."""
    blocks = strip_managed_blocks(parse(text, path))
    if blocks.problem:
        return [f"{path}: sshd-setup's markers are damaged at line {blocks.problem_line}: {blocks.problem}"]
    _, expected = expected_blocks(desired)
    found = blocks.found.get(MATCH_NAME)
    if expected is None:
        return [f"{path} has a principal mappings block but the inventory maps no user"] if found else []
    if found is None:
        users = ", ".join(m.user for m in desired.mappings)
        return [f"{path} has no '{MATCH_BEGIN}' block: the Match blocks for {users} are gone"]
    problems: list[str] = []
    lines = text.split("\n")
    last = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].strip()), -1)
    if last < 0 or lines[last].strip() != MATCH_END:
        problems.append(
            f"{path} ends with {_short(lines[last], 60)!r} (line {last + 1}), not the principal mappings block: "
            "lines after a Match block are conditional"
        )
    if _normalise(found) != expected:
        problems.append(
            f"{path}: the principal mappings block differs from the inventory: "
            f"{_first_difference(_normalise(found), expected)}"
        )
    return problems


def principals_in(text: str) -> list[str]:
    """Principals as sshd reads an AuthorizedPrincipalsFile: '#' starts a comment, whitespace trimmed."""
    found: list[str] = []
    for raw in text.split("\n"):
        line = raw.lstrip(" \t")
        if line.startswith("#"):
            continue
        line = line.split("#", 1)[0].rstrip(" \t\r")
        if line:
            found.append(line)
    return found


def principals_problems(path: str, text: str, mapping: Mapping) -> list[str]:
    listed = principals_in(text)
    want = list(mapping.principals)
    missing = [p for p in want if p not in listed]
    extra = [p for p in dict.fromkeys(listed) if p not in want]
    if not missing and not extra:
        return []
    parts = []
    if extra:
        parts.append(f"unexpected {', '.join(extra)}")
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    return [
        f"{path} lists {', '.join(listed) or 'no principal'}; expected exactly {', '.join(want)} for "
        f"{mapping.user} ({'; '.join(parts)})"
    ]


# ---------------------------------------------------------------- effective configuration (sshd -T)

EffectiveConfig = dict[str, list[str]]


def parse_sshd_t(output: str) -> EffectiveConfig:
    """`sshd -T` output: lower-case keyword, space, value; repeated keywords (port, hostkey) collect."""
    config: EffectiveConfig = {}
    for raw in output.splitlines():
        keyword, _, value = raw.strip().partition(" ")
        if keyword:
            config.setdefault(keyword.lower(), []).append(value.strip())
    return config


def _one(config: EffectiveConfig, keyword: str) -> str:
    values = config.get(keyword)
    return values[0] if values else "(not printed)"


def global_effective_problems(config: EffectiveConfig, desired: Desired) -> list[str]:
    problems = []
    if _one(config, "pubkeyauthentication") != "yes":
        problems.append(f"sshd -T: pubkeyauthentication is {_one(config, 'pubkeyauthentication')}, expected yes")
    if _one(config, "trustedusercakeys") != desired.ca_path:
        problems.append(
            f"sshd -T: trustedusercakeys is {_one(config, 'trustedusercakeys')}, expected {desired.ca_path}"
        )
    ports = config.get("port", [])
    if str(desired.port) not in ports:
        problems.append(f"sshd -T: port is {', '.join(ports) or '(none)'}; the gateway connects to port {desired.port}")
    return problems


def expected_for(mapping: Mapping, desired: Desired) -> dict[str, str]:
    """What `sshd -T -C user=<mapped user>` must print for the keywords our Match block sets."""
    if mapping.mode == "single":
        return {
            "authorizedprincipalscommand": f"/bin/echo '{mapping.principals[0]}'",
            "authorizedprincipalscommanduser": "nobody",
        }
    if mapping.mode == "list":
        expected = {"authorizedprincipalsfile": str(mapping.file)}
        if desired.allow_all:
            expected["authorizedprincipalscommand"] = "none"
        return expected
    return {"authorizedprincipalscommand": ALL_PRINCIPALS_COMMAND, "authorizedprincipalscommanduser": "nobody"}


def mapping_effective_problems(config: EffectiveConfig, mapping: Mapping, desired: Desired) -> list[str]:
    problems = []
    for keyword, want in expected_for(mapping, desired).items():
        have = _one(config, keyword)
        if have != want:
            problems.append(f"sshd -T -C user={mapping.user}: {keyword} is {have}, expected {want}")
    return problems


def unmapped_user(desired: Desired) -> str:
    name = UNMAPPED_USER
    while desired.mapping_for(name) is not None:
        name += "x"
    return name


def unmapped_effective_problems(config: EffectiveConfig, desired: Desired, user: str) -> list[str]:
    """A user no mapping names gets none of the mappings' principals settings (allow_all: the global one)."""
    command = _one(config, "authorizedprincipalscommand")
    file = _one(config, "authorizedprincipalsfile")
    if desired.allow_all:
        if command != ALL_PRINCIPALS_COMMAND:
            return [
                f"sshd -T -C user={user}: authorizedprincipalscommand is {command}, expected the allow-all "
                f"command {ALL_PRINCIPALS_COMMAND}"
            ]
        return []
    ours_files = {m.file for m in desired.mappings if m.mode == "list" and m.file}
    ours_commands = {
        expected_for(m, desired)["authorizedprincipalscommand"] for m in desired.mappings if m.mode != "list"
    }
    problems = []
    if file in ours_files:
        owner = next(m.user for m in desired.mappings if m.file == file)
        problems.append(f"sshd -T -C user={user}: authorizedprincipalsfile is {file}, the principals file of {owner}")
    if command in ours_commands:
        problems.append(f"sshd -T -C user={user} (unmapped) gets a mapping's authorizedprincipalscommand {command}")
    return problems
