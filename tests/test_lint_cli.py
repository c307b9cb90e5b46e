"""`sshd-setup lint`: exit codes, human and JSON output, PATH/--root/-i handling, and fuzzing of the entry point.

The `lint` command itself lives in cli.py as a thin wrapper around run_lint(); LINT_COMMAND below is that
wrapper, word for word, so its options and exit codes are tested through Typer too.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sshd_setup.commands.lint import run_lint
from sshd_setup.core.finding import Severity
from tests.helpers import CA_KEY, DEBIAN_PACKAGED_DEFAULT, FIXTURES

CASES = FIXTURES / "findings"
MAIN = "/etc/ssh/sshd_config"
FINDING_KEYS = {"code", "severity", "message", "hint", "path", "line"}


def tree(name: str, root: Path) -> Path:
    if name == "debian":
        (root / "etc/ssh/sshd_config.d").mkdir(parents=True)
        shutil.copy(DEBIAN_PACKAGED_DEFAULT, root / "etc/ssh/sshd_config")
    else:
        shutil.copytree(CASES / name, root, dirs_exist_ok=True)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


def lint_json(capsys: pytest.CaptureFixture[str], **kwargs: object) -> tuple[int, dict[str, object]]:
    code = run_lint(json_output=True, **kwargs)  # type: ignore[arg-type]
    return code, json.loads(capsys.readouterr().out)


def inventory(tmp_path: Path, foreign: str = "refuse") -> Path:
    path = tmp_path / "inventory.yml"
    path.write_text(
        textwrap.dedent(
            f"""
            all:
              hosts:
                web1:
                  sshd_setup:
                    ca_keys: ["{CA_KEY}"]
                    foreign_ca_keys: {foreign}
                    principals:
                      - {{user: johndoe, principal: jdoe@example.com}}
            """
        )
    )
    return path


# ---------------------------------------------------------------- exit codes and output


def test_clean_debian_tree_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not DEBIAN_PACKAGED_DEFAULT.exists():
        pytest.fail(f"{DEBIAN_PACKAGED_DEFAULT} missing: install openssh-server")
    root = tree("debian", tmp_path / "root")
    assert run_lint(root=root) == 0
    out = capsys.readouterr().out
    assert "0 errors, 0 warnings, 1 info" in out and "INCLUDE-NO-MATCH" in out


def test_error_findings_exit_1_with_code_file_line_and_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tree("port-2222", tmp_path / "root")
    assert run_lint(root=root) == 1
    out = capsys.readouterr().out
    assert "error PORT-NOT-22 /etc/ssh/sshd_config:2: `Port 2222`" in out
    assert "error NO-PORT-22" in out and "hint: add `Port 22`" in out
    assert "2 errors" in out


def test_json_has_a_stable_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tree("port-2222", tmp_path / "root")
    code, document = lint_json(capsys, root=root)
    assert code == 1
    assert set(document) == {"schema", "hosts"} and document["schema"] == 1
    hosts = document["hosts"]
    assert isinstance(hosts, list) and len(hosts) == 1
    assert hosts[0]["host"] == str(root) and hosts[0]["main"] == MAIN
    findings = hosts[0]["findings"]
    assert {f["code"] for f in findings} == {"PORT-NOT-22", "NO-PORT-22"}
    for finding in findings:
        assert set(finding) == FINDING_KEYS
        assert finding["severity"] in {s.value for s in Severity}
        assert isinstance(finding["line"], int) and finding["path"] == MAIN


@pytest.mark.parametrize("spelling", ["/etc/ssh/sshd_config.alt", "etc/ssh/sshd_config.alt", "LOCAL"])
def test_path_names_another_main_file_inside_root(
    spelling: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tree("debian", tmp_path / "root")
    (root / "etc/ssh/sshd_config.alt").write_text("Port 2222\nInclude /etc/ssh/sshd_config.d/*.conf\n")
    path = str(root / "etc/ssh/sshd_config.alt") if spelling == "LOCAL" else spelling
    code, document = lint_json(capsys, root=root, path=path)
    host = document["hosts"][0]  # type: ignore[index]
    assert code == 1 and host["main"] == "/etc/ssh/sshd_config.alt"
    assert {(f["code"], f["path"], f["line"]) for f in host["findings"]} >= {
        ("PORT-NOT-22", "/etc/ssh/sshd_config.alt", 1)
    }
    assert run_lint(root=root) == 0  # the default main file is still the clean one
    capsys.readouterr()


def test_path_without_root_is_a_local_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "candidate_sshd_config"
    config.write_text("ListenAddress 0.0.0.0:2200\nUsePAM yes\n")
    code, document = lint_json(capsys, path=str(config))
    host = document["hosts"][0]  # type: ignore[index]
    assert code == 1 and host["host"] == "localhost" and host["main"] == str(config.resolve())
    assert ("LISTEN-PORT-NOT-22", 1) in {(f["code"], f["line"]) for f in host["findings"]}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"host": "web1"},
        {"inventory": "INVENTORY"},
        {"inventory": "INVENTORY", "host": "nosuchhost"},
        {"inventory": "MISSING", "host": "web1"},
        {"root": "NOT-A-DIR"},
        {"path": "/etc/ssh/no_such_config"},
    ],
)
def test_bad_usage_exits_2(kwargs: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tree("debian", tmp_path / "root")
    values: dict[str, object] = {"root": root}
    for key, value in kwargs.items():
        if value == "INVENTORY":
            values[key] = inventory(tmp_path)
        elif value == "MISSING":
            values[key] = tmp_path / "missing.yml"
        elif value == "NOT-A-DIR":
            values[key] = tmp_path / "nothing-here"
        elif key in ("inventory", "root"):
            values[key] = Path(value)
        else:
            values[key] = value
    assert run_lint(**values) == 2  # type: ignore[arg-type]
    captured = capsys.readouterr()
    assert captured.err.startswith("sshd-setup: error: ") and captured.out == ""


@pytest.mark.parametrize(
    ("foreign", "code", "expected"), [("refuse", 1, "FOREIGN-CA-KEYS"), ("merge", 0, "FOREIGN-CA-MERGED")]
)
def test_an_inventory_host_adds_the_checks_that_need_the_desired_state(
    foreign: str, code: int, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tree("foreign-ca", tmp_path / "root")
    result, document = lint_json(capsys, root=root, inventory=inventory(tmp_path, foreign), host="web1")
    host = document["hosts"][0]  # type: ignore[index]
    assert result == code and host["host"] == "web1"
    assert expected in {f["code"] for f in host["findings"]}
    result, document = lint_json(capsys, root=root)  # without the inventory: information only
    assert result == 0 and [f["code"] for f in document["hosts"][0]["findings"]] == ["CA-FILE-IN-USE"]  # type: ignore[index]


# ---------------------------------------------------------------- the real `sshd-setup lint` command


def test_the_cli_command_parses_options_and_passes_exit_codes(tmp_path: Path) -> None:
    from sshd_setup.cli import app

    runner = CliRunner()
    clean = tree("debian", tmp_path / "clean")
    broken = tree("port-2222", tmp_path / "broken")
    assert runner.invoke(app, ["lint", "--root", str(clean)]).exit_code == 0
    result = runner.invoke(app, ["lint", "--root", str(broken), "--json"])
    assert result.exit_code == 1 and json.loads(result.stdout)["schema"] == 1
    result = runner.invoke(app, ["lint", "/etc/ssh/sshd_config", "--root", str(broken), "-i", str(inventory(tmp_path))])
    assert result.exit_code == 2  # -i without --host
    result = runner.invoke(
        app, ["lint", "--root", str(clean), "-i", str(inventory(tmp_path)), "--host", "web1", "--json"]
    )
    assert result.exit_code == 0 and json.loads(result.stdout)["hosts"][0]["host"] == "web1"


# ---------------------------------------------------------------- fuzzing the entry point

chunks = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(
        [
            b"Include /etc/ssh/sshd_config.d/*.conf\n",
            b"Include /etc/ssh/sshd_config\n",
            b"Include sshd_config.d/a.conf sshd_config.d/b.conf\n",
            b"Match User root\n",
            b"Match all\n",
            b"Match\n",
            b"Port 2222\n",
            b"Port x\n",
            b"ListenAddress [::1]:99999\n",
            b"TrustedUserCAKeys /etc/ssh/sshd_config.d/a.conf\n",
            b"AuthorizedPrincipalsFile /etc/ssh/sshd_config.d/%u\n",
            b"PubkeyAcceptedAlgorithms -\n",
            b"CASignatureAlgorithms ^!x,*\n",
            b"AuthenticationMethods ,,, publickey,\n",
            b"AuthorizedPrincipalsCommand\n",
            b'"unterminated\n',
            b"\xff\xfe\x00\r\n",
            b"# BEGIN sshd-setup managed block: gateway CA\n",
            b"# END sshd-setup managed block: principal mappings\n",
            b"A" * 20000 + b"\n",
        ]
    ),
)
config_bytes = st.lists(chunks, max_size=12).map(b"".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(main=config_bytes, a=config_bytes, b=config_bytes, with_inventory=st.booleans())
def test_lint_reports_and_never_raises_on_any_tree(main: bytes, a: bytes, b: bytes, with_inventory: bool) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        ssh = root / "etc/ssh/sshd_config.d"
        ssh.mkdir(parents=True)
        (root / "etc/ssh/sshd_config").write_bytes(main)
        (ssh / "a.conf").write_bytes(a)
        (ssh / "b.conf").write_bytes(b)
        kwargs: dict[str, object] = {"root": root, "json_output": True}
        if with_inventory:
            kwargs.update(inventory=inventory(root), host="web1")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run_lint(**kwargs)  # type: ignore[arg-type]
        assert code in (0, 1), err.getvalue()
        document = json.loads(out.getvalue())
        findings = document["hosts"][0]["findings"]
        assert all(set(f) == FINDING_KEYS for f in findings)
        assert "INTERNAL-ERROR" not in {f["code"] for f in findings}, findings
        assert code == (1 if any(f["severity"] == "error" for f in findings) else 0)
