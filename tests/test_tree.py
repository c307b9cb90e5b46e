"""Include resolution and effective values, as sshd evaluates them (cross-checked with sshd in test_oracle)."""

from __future__ import annotations

from sshd_setup.core.matching import Connection, match_address_list, match_pattern_list, parse_match
from sshd_setup.core.tree import SnapshotSource, load_tree

MAIN = "/etc/ssh/sshd_config"


def tree_of(files: dict[str, str]):  # type: ignore[no-untyped-def]
    return load_tree(SnapshotSource.of(files))


def test_globs_expand_in_lexical_order_and_relative_paths_resolve_under_etc_ssh() -> None:
    tree = tree_of(
        {
            MAIN: "Include sshd_config.d/*.conf other.conf\n",
            "/etc/ssh/sshd_config.d/20-b.conf": "PasswordAuthentication yes\n",
            "/etc/ssh/sshd_config.d/10-a.conf": "PasswordAuthentication no\n",
            "/etc/ssh/sshd_config.d/.hidden.conf": "PasswordAuthentication maybe\n",
            "/etc/ssh/other.conf": "Port 2222\n",
        }
    )
    assert [d.path for d in tree.directives][1:] == [
        "/etc/ssh/sshd_config.d/10-a.conf",
        "/etc/ssh/sshd_config.d/20-b.conf",
        "/etc/ssh/other.conf",
    ]
    assert tree.effective_value("passwordauthentication") == "no"
    assert [d.line.value for d in tree.global_values("port")] == ["2222"]


def test_a_glob_matching_nothing_is_recorded_and_ignored() -> None:
    tree = tree_of({MAIN: "Include /etc/ssh/none.d/*.conf\nPort 22\n"})
    assert tree.includes[0].problem == "matches no file"
    assert tree.includes[0].kind == "no-match"
    assert not tree.errors


def test_the_include_problem_kind_is_a_field_set_by_the_walker() -> None:
    from sshd_setup.core.tree import SnapshotEntry, SnapshotSource, load_tree

    source = SnapshotSource(
        {
            MAIN: SnapshotEntry("Include /etc/ssh/d\nInclude /etc/ssh/locked.conf\nInclude /etc/ssh/x*\n"),
            "/etc/ssh/locked.conf": SnapshotEntry(None, "permission denied"),
            "/etc/ssh/x1.conf": SnapshotEntry("Include /etc/ssh/x1.conf\n"),
        },
        {"/etc/ssh/d"},
    )
    tree = load_tree(source, MAIN)
    assert {(use.path, use.pattern, use.kind) for use in tree.includes} == {
        (MAIN, "/etc/ssh/d", "directory"),
        (MAIN, "/etc/ssh/locked.conf", "unreadable"),
        (MAIN, "/etc/ssh/x*", ""),
        ("/etc/ssh/x1.conf", "/etc/ssh/x1.conf", "loop"),
    }


def test_include_loops_hit_the_depth_limit() -> None:
    tree = tree_of({MAIN: "Include /etc/ssh/a.conf\n", "/etc/ssh/a.conf": "Include /etc/ssh/sshd_config\n"})
    assert tree.errors and "recursive" in tree.errors[0][2]


def test_first_value_wins_and_match_overrides_global() -> None:
    tree = tree_of(
        {
            MAIN: "PubkeyAuthentication no\nPubkeyAuthentication yes\nMatch User bob\n"
            "  PubkeyAuthentication yes\nMatch User bob\n  PubkeyAuthentication no\n"
        }
    )
    assert tree.effective_value("pubkeyauthentication") == "no"
    assert tree.effective_value("pubkeyauthentication", Connection("bob")) == "yes"
    assert tree.effective_value("pubkeyauthentication", Connection("carol")) == "no"


def test_match_state_is_restored_after_an_included_file() -> None:
    tree = tree_of(
        {
            MAIN: "Include /etc/ssh/a.conf\nX11Forwarding yes\n",
            "/etc/ssh/a.conf": "Match User bob\n  X11Forwarding no\n",
        }
    )
    x11 = tree.placed("x11forwarding")
    assert x11[0].conditions and x11[1].is_global
    assert tree.effective_value("x11forwarding") == "yes"
    assert tree.effective_value("x11forwarding", Connection("bob")) == "no"


def test_include_inside_match_is_conditional() -> None:
    tree = tree_of(
        {
            MAIN: "Match User bob\n  Include /etc/ssh/bob.conf\n",
            "/etc/ssh/bob.conf": "AuthorizedPrincipalsFile /etc/ssh/bob\n",
        }
    )
    assert tree.effective_value("authorizedprincipalsfile") == "none"
    assert tree.effective_value("authorizedprincipalsfile", Connection("bob")) == "/etc/ssh/bob"


def test_match_all_applies_at_startup() -> None:
    tree = tree_of({MAIN: "Match all\nPasswordAuthentication no\n"})
    assert tree.effective_value("passwordauthentication") == "no"


def test_unreadable_included_file_is_an_error() -> None:
    source = SnapshotSource.of({MAIN: "Include /etc/ssh/secret.conf\n"})
    from sshd_setup.core.tree import SnapshotEntry

    source.files["/etc/ssh/secret.conf"] = SnapshotEntry(None, "Permission denied")
    tree = load_tree(source)
    assert tree.errors and "cannot read /etc/ssh/secret.conf" in tree.errors[0][2]


def test_match_criteria() -> None:
    conn = Connection(user="bob", host="Web1.Example.com", addr="10.1.2.3", groups=frozenset({"sftponly"}))
    assert parse_match(("User", "alice,b*")).evaluate(conn)
    assert not parse_match(("User", "*,!bob")).evaluate(conn)
    assert parse_match(("Host", "web1.example.COM")).evaluate(conn)
    assert parse_match(("Address", "10.0.0.0/8", "User", "bob")).evaluate(conn)
    assert not parse_match(("Address", "10.0.0.0/8", "User", "alice")).evaluate(conn)
    assert parse_match(("Group", "sftponly")).evaluate(conn)
    assert parse_match(("all",)).evaluate(None)
    assert parse_match(("User", "bob")).evaluate(None) is False
    assert parse_match(("Bogus", "x")).error
    assert match_pattern_list("bob", "!alice") == 0
    assert match_address_list("192.0.2.1", "192.0.2.*") == 1


def test_a_missing_main_file_is_a_flag_not_only_a_message() -> None:
    tree = tree_of({})
    assert tree.main_missing and tree.errors == [(MAIN, 0, "main configuration file does not exist")]
    assert not tree_of({MAIN: "Port 22\n"}).main_missing
