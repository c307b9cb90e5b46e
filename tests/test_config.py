"""Lossless parsing and sshd-compatible tokenising."""

from __future__ import annotations

import pytest

from sshd_setup.core.config import parse, parse_line, split_args


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Port 22",
        "Port 22\n",
        "Port 22\r\nPubkeyAuthentication yes\r\n",
        "\tPort\t22   \n# comment\n\n   \nMatch User x\n\tX11Forwarding no",
        "PubkeyAuthentication=yes\nPermitRootLogin = no\n",
        'Banner "/etc/issue net"\r\n\r\n',
        "weird line without newline \x0b\x0c and form feeds\f\n",
        "non-utf8 \udcff byte kept\n",
    ],
)
def test_unchanged_input_serialises_byte_identical(text: str) -> None:
    assert parse(text, "/etc/ssh/sshd_config").text() == text


def test_keywords_are_case_insensitive_and_both_separators_work() -> None:
    for raw in (
        "pubkeyauthentication yes",
        "PubkeyAuthentication=yes",
        "PUBKEYAUTHENTICATION = yes",
        "  PubkeyAuthentication\tyes  \r\n",
    ):
        line = parse_line(raw)
        assert line.keyword == "pubkeyauthentication"
        assert line.args == ("yes",)


def test_comments_blank_lines_and_trailing_comments() -> None:
    config = parse("# Port 2222\n\n   # indented\nPort 22 # the gateway port\n", "f")
    assert [line.keyword for line in config.lines] == [None, None, None, "port"]
    assert config.lines[3].args == ("22",)


def test_quotes_and_escapes_follow_argv_split() -> None:
    assert split_args('a "b c" \'d e\' f\\ g "h\\"i"') == ["a", "b c", "d e", "f g", 'h"i']
    line = parse_line("AuthorizedPrincipalsCommand /bin/bash -c \"echo '%t %k' | ssh-keygen -L -f -\"\n")
    assert line.args == ("/bin/bash", "-c", "echo '%t %k' | ssh-keygen -L -f -")
    assert line.value == "/bin/bash -c \"echo '%t %k' | ssh-keygen -L -f -\""


def test_unterminated_quote_is_an_error_not_an_exception() -> None:
    line = parse_line('Banner "/etc/issue\n')
    assert line.keyword == "banner"
    assert line.error == "unterminated quote"


def test_unknown_keywords_are_kept() -> None:
    config = parse("FrobnicateWidgets yes\n", "f")
    assert config.lines[0].keyword == "frobnicatewidgets"
    assert config.text() == "FrobnicateWidgets yes\n"


def test_dominant_line_ending() -> None:
    assert parse("a b\r\nc d\r\ne f\n", "f").newline == "\r\n"
    assert parse("a b\nc d\n", "f").newline == "\n"
