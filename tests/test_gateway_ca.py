"""`sshd-setup ca fetch` against a real HTTP server on 127.0.0.1 (tests/gatewayfake).

The CLI runs as a subprocess (`sshd-setup ca fetch ...`), so exit codes and stdout/stderr are
exactly what a user sees from `sshd_setup.cli.main`. Every run goes through `run()`, which asserts
that the recognisable token appears nowhere in stdout or stderr.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

try:  # tests/ may or may not be a package, depending on tests/__init__.py
    from tests.gatewayfake.server import ALREADY_EXISTS, FakeGateway, Reply, envelope, error_envelope
except ModuleNotFoundError:
    from gatewayfake.server import ALREADY_EXISTS, FakeGateway, Reply, envelope, error_envelope  # type: ignore[no-redef]

TOKEN = "tok-SECRET-7f3a9c1e5b-do-not-print"
ACCOUNT = "0123456789abcdef0123456789abcdef"
PATH = f"/client/v4/accounts/{ACCOUNT}/access/gateway_ca"


def _ca_line() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode() + " open-ssh-ca@cloudflareaccess.org"


def _ed25519_line(comment: str) -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode() + " " + comment


def _fingerprint(line: str) -> str:
    """Computed here independently of sshd_setup: SHA256 of the key blob, base64 without padding."""
    blob = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


CA_LINE = _ca_line()
CA_FP = _fingerprint(CA_LINE)
_BIN = Path(sys.executable).parent / "sshd-setup"
_CMD = [str(_BIN)] if _BIN.exists() else [sys.executable, "-m", "sshd_setup"]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process clients (httpx reads proxy variables) must talk to 127.0.0.1 directly."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "*")


@pytest.fixture
def gw() -> Iterator[FakeGateway]:
    server = FakeGateway(TOKEN, ACCOUNT, CA_LINE).start()
    yield server
    server.stop()


def _env(token: str | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "cloudflare_api_token")
    }
    env["NO_PROXY"] = "*"
    if token is not None:
        env["CLOUDFLARE_API_TOKEN"] = token
    return env


def run(*args: str, token: str | None = TOKEN, secret: str = TOKEN) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*_CMD, *args], env=_env(token), capture_output=True, text=True, timeout=60, check=False)
    assert secret not in proc.stdout, proc.stdout
    assert secret not in proc.stderr, proc.stderr
    return proc


def fetch(gw: FakeGateway, *extra: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    return run(
        "ca", "fetch", "--account-id", ACCOUNT, "--api-base", gw.base, "--backoff-base", "0", *extra, token=token
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("sshd-setup: error: "), lines[0]
    assert "Traceback" not in proc.stderr
    return lines[0]


# --------------------------------------------------------------------------------------------
# Success paths


def test_post_creates_ca_and_prints_key_to_stdout(gw: FakeGateway) -> None:
    proc = fetch(gw)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == CA_LINE + "\n"
    assert CA_FP in proc.stderr and "created" in proc.stderr
    assert gw.methods() == ["POST"]
    seen = gw.requests[0]
    assert seen.path == PATH
    assert seen.authorization == f"Bearer {TOKEN}"
    assert seen.body == b""


@pytest.mark.parametrize("where", ["message", "code"])
def test_already_exists_falls_back_to_get(gw: FakeGateway, where: str) -> None:
    gw.exists = True
    if where == "code":
        gw.script("POST", Reply(409, error_envelope(ALREADY_EXISTS, "conflict")))
    proc = fetch(gw)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == CA_LINE + "\n"
    assert CA_FP in proc.stderr and "existing" in proc.stderr
    assert gw.methods() == ["POST", "GET"]
    assert all(seen.path == PATH and seen.authorization == f"Bearer {TOKEN}" for seen in gw.requests)


def test_get_listing_several_uses_first_and_warns(gw: FakeGateway) -> None:
    gw.exists = True
    other = _ca_line()
    gw.script("GET", Reply(200, envelope([{"id": "a", "public_key": CA_LINE}, {"id": "b", "public_key": other}])))
    proc = fetch(gw)
    assert proc.returncode == 0
    assert proc.stdout == CA_LINE + "\n"
    assert "lists 2 gateway CAs" in proc.stderr


def test_output_writes_keys_file_atomically_with_mode_0644(gw: FakeGateway, tmp_path: Path) -> None:
    out = tmp_path / "ca_keys.pub"
    old_umask = os.umask(0o077)  # the mode must not depend on the umask
    try:
        proc = fetch(gw, "--output", str(out))
    finally:
        os.umask(old_umask)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == CA_LINE + "\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert CA_FP in proc.stdout and "written to" in proc.stdout and "also holds" not in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca_keys.pub"]  # no temp file left


def test_output_keeps_other_keys_and_is_idempotent(gw: FakeGateway, tmp_path: Path) -> None:
    out = tmp_path / "ca_keys.pub"
    other = _ed25519_line("old-ca")
    out.write_text(f"# managed by sshd-setup\n{other}")  # no trailing newline
    first = fetch(gw, "--output", str(out))
    assert first.returncode == 0, first.stderr
    assert out.read_text() == f"# managed by sshd-setup\n{other}\n{CA_LINE}\n"
    assert f"also holds 1 other CA key(s), still trusted: {_fingerprint(other)}" in first.stdout
    inode = out.stat().st_ino

    gw.exists = True
    second = fetch(gw, "--output", str(out))
    assert second.returncode == 0, second.stderr
    assert "unchanged" in second.stdout and CA_FP in second.stdout
    assert out.read_text() == f"# managed by sshd-setup\n{other}\n{CA_LINE}\n"
    assert out.stat().st_ino == inode  # not rewritten


def test_output_through_symlink_updates_the_target(gw: FakeGateway, tmp_path: Path) -> None:
    real = tmp_path / "real.pub"
    link = tmp_path / "link.pub"
    link.symlink_to(real)
    proc = fetch(gw, "--output", str(link))
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink()
    assert real.read_text() == CA_LINE + "\n"


def test_token_file_is_stripped_and_wins_over_environment(gw: FakeGateway, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"  {TOKEN}\n\n")
    proc = fetch(gw, "--token-file", str(token_file), token="tok-env-wrong")
    assert proc.returncode == 0, proc.stderr
    assert gw.requests[0].authorization == f"Bearer {TOKEN}"


def test_429_then_success(gw: FakeGateway) -> None:
    gw.script(
        "POST",
        Reply(429, error_envelope(971, "Please wait"), {"Retry-After": "0"}),
        Reply(429, error_envelope(971, "Please wait")),
    )
    start = time.monotonic()
    proc = fetch(gw)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == CA_LINE + "\n"
    assert gw.methods() == ["POST", "POST", "POST"]
    assert time.monotonic() - start < 10


def test_verbose_shows_requests_and_retries_but_not_the_token(gw: FakeGateway) -> None:
    gw.script("POST", Reply(503, "upstream down"))
    proc = fetch(gw, "--verbose")
    assert proc.returncode == 0, proc.stderr
    assert f"POST {gw.base}/accounts/{ACCOUNT}/access/gateway_ca (attempt 1/4)" in proc.stderr
    assert "HTTP 503; retrying in 0 s" in proc.stderr
    assert "attempt 2/4" in proc.stderr
    assert "$CLOUDFLARE_API_TOKEN" in proc.stderr  # names the source, not the value


# --------------------------------------------------------------------------------------------
# Error paths: exit code, one clear line, nothing written


def test_401_names_the_permission(gw: FakeGateway, tmp_path: Path) -> None:
    out = tmp_path / "keys.pub"
    proc = fetch(gw, "--output", str(out), token="tok-wrong-token")
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "401" in line and "Access: SSH Auditing" in line
    assert not out.exists()
    assert gw.methods() == ["POST"]  # 401 is not retried and does not fall back to GET


def test_403_on_post_and_get_names_the_permission(gw: FakeGateway) -> None:
    forbidden = Reply(403, error_envelope(10000, "Authentication error"))
    gw.script("POST", forbidden)
    gw.script("GET", forbidden)
    proc = fetch(gw)
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "403" in line and "Access: SSH Auditing" in line and "10000: Authentication error" in line
    assert gw.methods() == ["POST", "GET"]


def test_403_on_post_with_read_only_token_lists_existing_ca(gw: FakeGateway) -> None:
    gw.exists = True
    gw.script("POST", Reply(403, error_envelope(10000, "Authentication error")))
    proc = fetch(gw)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == CA_LINE + "\n"


def test_404_says_the_account_id_is_wrong(gw: FakeGateway) -> None:
    wrong = "ffffffffffffffffffffffffffffffff"
    proc = run("ca", "fetch", "--account-id", wrong, "--api-base", gw.base)
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "404" in line and "--account-id" in line
    assert gw.requests[0].path == f"/client/v4/accounts/{wrong}/access/gateway_ca"


def test_other_api_error_shows_code_and_message(gw: FakeGateway) -> None:
    gw.script("POST", Reply(400, error_envelope(12345, "gateway CA feature not enabled\nfor this plan")))
    proc = fetch(gw)
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "12345: gateway CA feature not enabled for this plan" in line  # newline flattened


def test_success_false_on_200_is_an_error(gw: FakeGateway) -> None:
    gw.script("POST", Reply(200, error_envelope(777, "weird")))
    proc = fetch(gw)
    assert proc.returncode == 2
    assert "777: weird" in one_error_line(proc)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(200, "<html>not json</html>"), "not valid JSON"),
        (Reply(200, b""), "not valid JSON"),
        (Reply(200, [1, 2]), "not a JSON object"),
        (Reply(200, {"success": True, "errors": []}), "no 'result'"),
        (Reply(200, envelope({"id": "x"})), "public_key is missing"),
        (Reply(200, envelope({"id": "x", "public_key": 42})), "public_key is missing"),
        (Reply(200, envelope("ssh-ed25519 AAAA")), "not an object"),
        (Reply(200, {"success": "yes", "result": {}}), "success: true"),
    ],
    ids=["html", "empty", "list", "no-result", "no-key", "key-not-str", "result-str", "success-not-bool"],
)
def test_bad_answers(gw: FakeGateway, tmp_path: Path, reply: Reply, expected: str) -> None:
    out = tmp_path / "keys.pub"
    gw.script("POST", reply)
    proc = fetch(gw, "--output", str(out))
    assert proc.returncode == 2
    assert expected in one_error_line(proc)
    assert not out.exists()


def test_get_listing_nothing_is_an_error(gw: FakeGateway) -> None:
    gw.script("POST", Reply(400, error_envelope(12130, ALREADY_EXISTS)))
    proc = fetch(gw)  # gw.exists is False, so the GET lists []
    assert proc.returncode == 2
    assert "lists none" in one_error_line(proc)


@pytest.mark.parametrize(
    "bad_key",
    [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==",  # truncated key material
        "ssh-ed25519 not-base64!!",
        "ssh-dss AAAAB3NzaC1kc3MAAACBAP",  # unsupported type
        "ssh-ed25519-cert-v01@openssh.com AAAA",  # a certificate
        CA_LINE + "\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA smuggled",  # two lines
        "",
    ],
    ids=["truncated", "base64", "dss", "cert", "two-lines", "empty"],
)
def test_invalid_key_in_result_is_refused_and_not_written(gw: FakeGateway, tmp_path: Path, bad_key: str) -> None:
    out = tmp_path / "keys.pub"
    out.write_text("# keep me\n")
    gw.script("POST", Reply(200, envelope({"id": "x", "public_key": bad_key})))
    proc = fetch(gw, "--output", str(out))
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "public_key" in line
    assert out.read_text() == "# keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.pub"]
    assert proc.stdout == ""


def test_5xx_exhausted_after_four_attempts(gw: FakeGateway) -> None:
    gw.script("POST", *[Reply(503, error_envelope(500, "service unavailable")) for _ in range(10)])
    proc = fetch(gw)
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert "gave up after 4 attempts" in line and "503" in line and "service unavailable" in line
    assert gw.methods() == ["POST"] * 4


def test_long_retry_after_is_reported_not_waited(gw: FakeGateway) -> None:
    gw.script("POST", Reply(429, error_envelope(971, "slow down"), {"Retry-After": "3600"}))
    start = time.monotonic()
    proc = fetch(gw)
    assert proc.returncode == 1
    assert "3600" in one_error_line(proc)
    assert gw.methods() == ["POST"]
    assert time.monotonic() - start < 10


def test_timeout_is_a_transport_error(gw: FakeGateway, tmp_path: Path) -> None:
    out = tmp_path / "keys.pub"
    gw.script("POST", Reply(200, envelope({"id": "x", "public_key": CA_LINE}), delay=3.0))
    start = time.monotonic()
    proc = fetch(gw, "--timeout", "0.3", "--output", str(out))
    elapsed = time.monotonic() - start
    assert proc.returncode == 1
    assert "timeout" in one_error_line(proc)
    assert elapsed < 3.0  # did not wait for the slow answer, and did not retry
    assert gw.methods() == ["POST"]
    assert not out.exists()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_a_transport_error() -> None:
    base = f"http://127.0.0.1:{_closed_port()}/client/v4"
    proc = run("ca", "fetch", "--account-id", ACCOUNT, "--api-base", base)
    assert proc.returncode == 1
    assert "cannot connect" in one_error_line(proc)


def test_redirect_is_not_followed(gw: FakeGateway) -> None:
    gw.script("POST", Reply(302, "", {"Location": f"http://127.0.0.1:{gw.port}/elsewhere"}))
    proc = fetch(gw)
    assert proc.returncode == 2
    assert "302" in one_error_line(proc)
    assert gw.methods() == ["POST"]


# --------------------------------------------------------------------------------------------
# Bad input: refused before any request


@pytest.mark.parametrize("account", ["../../etc", "abc/def", "", "a b", "x" * 65, "%2e%2e", "abc?x=1", "-abc"])
def test_bad_account_id_is_refused_before_any_request(gw: FakeGateway, account: str) -> None:
    proc = run("ca", "fetch", "--account-id", account, "--api-base", gw.base)
    assert proc.returncode == 2
    assert "--account-id" in proc.stderr
    assert gw.requests == []


@pytest.mark.parametrize(
    "base",
    ["http://gateway.example.invalid/client/v4", "ftp://127.0.0.1/x", "not a url", "http://u:p@127.0.0.1/x"],
)
def test_unsafe_api_base_is_refused_before_any_request(base: str) -> None:
    proc = run("ca", "fetch", "--account-id", ACCOUNT, "--api-base", base)
    assert proc.returncode == 2
    assert "--api-base" in one_error_line(proc)


def test_missing_token_names_the_variable(gw: FakeGateway) -> None:
    proc = fetch(gw, token=None)
    assert proc.returncode == 2
    assert "CLOUDFLARE_API_TOKEN" in one_error_line(proc)
    assert gw.requests == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "does not exist"), ("  \n", "empty"), (f"{TOKEN} second-part", "spaces"), (f"{TOKEN}\nx", "line")],
)
def test_bad_token_file(gw: FakeGateway, tmp_path: Path, content: str | None, expected: str) -> None:
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content)
    proc = fetch(gw, "--token-file", str(token_file))
    assert proc.returncode == 2
    assert expected in one_error_line(proc)
    assert gw.requests == []


def test_invalid_existing_output_file_is_refused_before_any_request(gw: FakeGateway, tmp_path: Path) -> None:
    out = tmp_path / "keys.pub"
    out.write_text("this is not a key\n")
    proc = fetch(gw, "--output", str(out))
    assert proc.returncode == 2
    assert "not a valid CA keys file" in one_error_line(proc)
    assert gw.requests == []
    assert out.read_text() == "this is not a key\n"


def test_output_in_missing_directory_is_refused_before_any_request(gw: FakeGateway, tmp_path: Path) -> None:
    proc = fetch(gw, "--output", str(tmp_path / "nope" / "keys.pub"))
    assert proc.returncode == 2
    assert "does not exist" in one_error_line(proc)
    assert gw.requests == []


# --------------------------------------------------------------------------------------------
# The token never shows, on any path, even with --verbose and a server echoing it back


_SCENARIOS: dict[str, tuple[int, list[tuple[str, Reply]]]] = {
    "success": (0, []),
    "already-exists": (0, []),  # gw.exists is set below
    "401-echo": (2, [("POST", Reply(401, error_envelope(10000, "bad token {AUTH}")))]),
    "403-echo": (
        2,
        [
            ("POST", Reply(403, error_envelope(10000, "{AUTH} lacks permission"))),
            ("GET", Reply(403, error_envelope(10000, "{AUTH} lacks permission"))),
        ],
    ),
    "404-echo": (2, [("POST", Reply(404, error_envelope(7003, "no route for {AUTH}")))]),
    "other-echo": (2, [("POST", Reply(400, error_envelope("{AUTH}", "{AUTH}")))]),
    "invalid-json-echo": (2, [("POST", Reply(200, "oops {AUTH}"))]),
    "invalid-key-echo": (2, [("POST", Reply(200, envelope({"id": "{AUTH}", "public_key": "ssh-rsa {AUTH}"})))]),
    "5xx-exhausted-echo": (1, [("POST", Reply(502, error_envelope(502, "{AUTH}"))) for _ in range(4)]),
    "429-long-echo": (1, [("POST", Reply(429, error_envelope(971, "{AUTH}"), {"Retry-After": "999"}))]),
    "timeout": (1, [("POST", Reply(200, envelope(None), delay=2.0))]),
}


@pytest.mark.parametrize("name", sorted(_SCENARIOS))
@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_token_never_printed(gw: FakeGateway, tmp_path: Path, name: str, verbose: bool) -> None:
    exit_code, replies = _SCENARIOS[name]
    gw.exists = name == "already-exists"
    for method, reply in replies:
        gw.script(method, reply)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    extra = ["--verbose"] if verbose else []
    proc = fetch(gw, "--token-file", str(token_file), "--timeout", "0.5", "--output", str(tmp_path / "k"), *extra)
    # run() already asserted the token is absent from stdout and stderr; check it really was sent.
    assert gw.requests and gw.requests[0].authorization == f"Bearer {TOKEN}"
    assert proc.returncode == exit_code, proc.stderr
    assert "Traceback" not in proc.stderr
    if name.endswith("-echo") and name != "invalid-key-echo":
        assert "[redacted]" in proc.stderr  # the echoed token was shown, but redacted


def test_token_with_bad_characters_not_printed(gw: FakeGateway) -> None:
    secret = "tok-SECRET-with space"
    proc = run("ca", "fetch", "--account-id", ACCOUNT, "--api-base", gw.base, token=secret, secret=secret)
    assert proc.returncode == 2
    assert "spaces" in one_error_line(proc)
    assert "tok-SECRET" not in proc.stderr
    assert gw.requests == []


# --------------------------------------------------------------------------------------------
# The client module directly: backoff timing without waiting, start-up cost


def test_backoff_is_exponential_and_honours_short_retry_after(gw: FakeGateway) -> None:
    from sshd_setup.gateway import api

    gw.script("POST", Reply(500), Reply(502), Reply(429, None, {"Retry-After": "3"}))
    slept: list[float] = []
    ca = api.fetch_gateway_ca(ACCOUNT, TOKEN, api_base=gw.base, backoff_base=0.5, sleep=slept.append)
    assert slept == [0.5, 1.0, 3.0]
    assert ca.created and ca.key.line() == CA_LINE and ca.key.fingerprint == CA_FP
    assert gw.methods() == ["POST"] * 4


def test_max_attempts_bounds_requests(gw: FakeGateway) -> None:
    from sshd_setup.gateway import api

    gw.script("POST", *[Reply(500) for _ in range(5)])
    slept: list[float] = []
    with pytest.raises(api.GatewayTransportError) as info:
        api.fetch_gateway_ca(ACCOUNT, TOKEN, api_base=gw.base, max_attempts=2, sleep=slept.append)
    assert info.value.exit_code == 1
    assert gw.methods() == ["POST", "POST"]
    assert slept == [1.0]
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)


def test_cli_start_up_does_not_import_httpx() -> None:
    code = (
        "import sys, sshd_setup.cli; "
        "bad = [m for m in ('httpx', 'sshd_setup.gateway.api') if m in sys.modules]; "
        "assert not bad, bad"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_cli_default_api_base_matches_client() -> None:
    from sshd_setup.gateway import api, apiargs

    assert apiargs.DEFAULT_API_BASE == api.DEFAULT_API_BASE == "https://api.cloudflare.com/client/v4"


# --------------------------------------------------------------------------------------------
# Both answer shapes (issue 19): `result` has been seen as an object and as a list, on POST and GET


def test_post_answering_a_list_is_read(gw: FakeGateway) -> None:
    gw.script("POST", Reply(200, envelope([{"id": "ca-list", "public_key": CA_LINE}])))
    proc = fetch(gw)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == CA_LINE + "\n"
    assert "ca-list" in proc.stderr and "created" in proc.stderr


def test_get_answering_an_object_is_read(gw: FakeGateway) -> None:
    gw.exists = True
    gw.script("GET", Reply(200, envelope({"id": "ca-object", "public_key": CA_LINE})))
    proc = fetch(gw)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == CA_LINE + "\n"
    assert "ca-object" in proc.stderr and "existing" in proc.stderr
    assert gw.methods() == ["POST", "GET"]


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("empty", ["", "  ", None], ids=["empty", "blank", "null"])
def test_empty_key_is_a_clear_error_and_nothing_is_written(
    gw: FakeGateway, tmp_path: Path, method: str, empty: str | None
) -> None:
    out = tmp_path / "keys.pub"
    entry = {"id": "ca-empty", "public_key": empty}
    if method == "GET":
        gw.script("POST", Reply(400, error_envelope(12130, ALREADY_EXISTS)))
        gw.script("GET", Reply(200, envelope([entry])))
    else:
        gw.script("POST", Reply(200, envelope(entry)))
    proc = fetch(gw, "--output", str(out))
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "public_key is empty" in line and "ca-empty" in line and "nothing was written" in line
    assert not out.exists()
