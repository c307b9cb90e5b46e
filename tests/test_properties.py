"""Property tests: parse→serialise is the identity; planning is idempotent; outside bytes are kept."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sshd_setup.core.blocks import BEGIN, strip_managed_blocks
from sshd_setup.core.config import parse
from tests.helpers import desired_from, plan_texts

MAIN = "/etc/ssh/sshd_config"
REALISTIC_LINES = [
    "Port 22",
    "PubkeyAuthentication no",
    "TrustedUserCAKeys /etc/ssh/other.pub",
    "Include /etc/ssh/x.d/*.conf",
    "Match User bob",
    "Match all",
    "\tX11Forwarding no",
    "# a comment",
    "",
    "   ",
    "PasswordAuthentication=yes",
    'Banner "/etc/issue net"',
    "AuthorizedPrincipalsFile /etc/ssh/p/%u",
    "UsePAM yes",
    "Subsystem sftp internal-sftp",
]
line = st.one_of(
    st.sampled_from(REALISTIC_LINES), st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=40)
)
ending = st.sampled_from(["\n", "\r\n"])
config_text = st.lists(st.tuples(line, ending), max_size=25).map(lambda pairs: "".join(a + b for a, b in pairs))
modes = st.sampled_from(
    [
        {},
        {"allow_all": True},
        {"principals": [{"user": "johndoe", "principal": "jdoe"}]},
        {"principals": [{"user": "vm", "principals": ["a", "b"]}, {"user": "ops", "any_principal": True}]},
    ]
)


@given(st.text())
def test_parse_serialise_is_the_identity(text: str) -> None:
    assert parse(text, MAIN).text() == text


@settings(max_examples=150, deadline=None)
@given(config_text, modes)
def test_plan_of_plan_is_plan(text: str, mode: dict[str, object]) -> None:
    desired = desired_from(mode)
    first = plan_texts(desired, {MAIN: text})
    if first.errors:
        return  # random text that forges our markers: refused, never guessed
    planned = {change.path: change.after for change in first.files}
    second = plan_texts(desired, planned)
    assert {c.path: c.after for c in second.files} == planned
    assert second.is_noop


@settings(max_examples=150, deadline=None)
@given(config_text, modes)
def test_lines_outside_managed_blocks_are_unchanged(text: str, mode: dict[str, object]) -> None:
    if BEGIN in text:
        return
    first = plan_texts(desired_from(mode), {MAIN: text})
    after = next(c.after for c in first.files if c.path == MAIN)
    outside = "".join(strip_managed_blocks(parse(after, MAIN)).body)
    # Only a missing final newline may have been added, so our block starts on a line of its own.
    assert outside in (text, text + "\n", text + "\r\n")
