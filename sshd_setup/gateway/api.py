"""Fetch the SSH gateway's CA public key from the Cloudflare API.

Flow: ``POST {api_base}/accounts/{id}/access/gateway_ca`` (no body) creates the CA and answers
``{id, public_key}``. When an error in the envelope ``{success, errors: [{code, message}], messages,
result}`` names ``access.api.error.gateway_ca_already_exists`` (in its code or its message), the CA
exists already: ``GET`` the same path lists ``[{id, public_key}]`` and the first entry is used.
When the POST is refused with 403 (a token with only *Access: SSH Auditing Read* may list but not
create), the GET is tried as well; if that fails too, the 403 is reported.

Which error is which (the CLI turns both into one line on stderr):

* ``InputError`` (exit 2) -- the input or the API's answer is wrong and retrying will not help:
  a bad account id, API base URL or token (empty, unreadable file, unusable characters);
  401/403 (token refused or lacking "Access: SSH Auditing"); 404 (no such account);
  any other API error (its code and message are shown); an answer that is not JSON, lacks
  fields or holds a key that is not a valid SSH public key; an unexpected HTTP status.
* ``GatewayTransportError`` (exit 1, a ``SshdSetupError``) -- the API could not be reached or
  did not answer usefully in time: timeouts, connection refused, DNS/TLS failures, and 429 /
  5xx answers still failing after ``max_attempts`` tries (or a Retry-After too long to wait).

Retries: only 429 and 5xx answers are retried, at most ``max_attempts`` requests per call,
sleeping ``backoff_base * 2**(n-1)`` seconds, or the server's Retry-After (in seconds) when it
is at most ``MAX_RETRY_AFTER``. Transport errors are not retried: they fail fast and clearly.

Secrets: the token only ever travels in the Authorization header. It is never put into a
message, log line or exception, and every text taken from the API or from httpx is passed
through ``_clean`` which removes the token (in case a server echoes it back) and control
characters, and shortens it to one line. Exceptions are raised ``from None``, so no chained
traceback carries httpx objects (requests hold the header).
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from sshd_setup.core.sshkeys import InvalidKey, PublicKey, parse_public_key
from sshd_setup.errors import InputError, SshdSetupError
from sshd_setup.inputfile import MAX_KEY_FILE_BYTES, NotReadable, read_bounded

DEFAULT_API_BASE = "https://api.cloudflare.com/client/v4"
TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
ALREADY_EXISTS = "access.api.error.gateway_ca_already_exists"
PERMISSION = "Access: SSH Auditing"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_ATTEMPTS = 4
DEFAULT_BACKOFF_BASE = 1.0
MAX_RETRY_AFTER = 30.0  # seconds; a longer Retry-After is reported instead of waited for

# Cloudflare account ids are 32 hex digits; accept any short run of URL-safe characters so
# nothing can escape the path segment (no '/', '.', '%', '?', '#').
_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# What may go in an HTTP header value as a bearer token: visible ASCII, no spaces.
_TOKEN_OK = re.compile(r"^[\x21-\x7e]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_MAX_TEXT = 300

Log = Callable[[str], None]


class GatewayTransportError(SshdSetupError):
    """The API could not be reached, timed out, or kept failing (429/5xx) after the retries: exit 1."""

    exit_code = 1


@dataclass(frozen=True)
class GatewayCA:
    """The gateway CA as the API describes it; ``key`` is already validated."""

    key: PublicKey
    ca_id: str | None
    created: bool  # True: this call created it (POST); False: it existed (GET)
    listed: int = 1  # how many CAs the GET listed (the first is used)


# --------------------------------------------------------------------------------------------
# Input validation (no I/O besides reading the token file)


def check_account_id(account_id: str) -> str:
    if not _ACCOUNT_ID.match(account_id):
        raise InputError(
            "--account-id",
            "expected the Cloudflare account ID (32 hex digits; letters, digits, '-' and '_' only)",
        )
    return account_id


def check_api_base(api_base: str) -> str:
    """Return the base URL without a trailing slash; refuse anything that could leak the token.

    https is required, except for loopback hosts (tests, local proxies), where http is allowed.
    """
    where = "--api-base"
    try:
        url = httpx.URL(api_base)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise InputError(where, "not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise InputError(where, "expected an http(s) URL such as " + DEFAULT_API_BASE)
    if url.userinfo or url.query or url.fragment:
        raise InputError(where, "must not contain credentials, a query or a fragment")
    if url.scheme == "http" and not _is_loopback(url.host):
        raise InputError(where, "plain http is only allowed to a loopback address; use https")
    return str(url).rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_token(token_file: Path | None, environ: Mapping[str, str]) -> tuple[str, str]:
    """Return (token, where it came from). ``--token-file`` wins over the environment.

    Error messages name the source, never the content.
    """
    if token_file is not None:
        source = f"token file {token_file}"
        try:
            token = read_bounded(token_file, MAX_KEY_FILE_BYTES).decode("utf-8").strip()
        except NotReadable as exc:  # a FIFO, a device, a huge file: one line, at once
            raise InputError(str(token_file), f"token file {exc}") from None
        except FileNotFoundError:
            raise InputError(str(token_file), "token file does not exist") from None
        except IsADirectoryError:
            raise InputError(str(token_file), "token file is a directory") from None
        except PermissionError:
            raise InputError(str(token_file), "token file is not readable (permission denied)") from None
        except UnicodeDecodeError:
            raise InputError(str(token_file), "token file is not UTF-8 text") from None
        except OSError as exc:
            raise InputError(str(token_file), f"cannot read token file ({exc.strerror})") from None
    else:
        source = f"${TOKEN_ENV}"
        token = (environ.get(TOKEN_ENV) or "").strip()
        if not token:
            raise InputError(
                "token",
                f"set {TOKEN_ENV} or pass --token-file FILE (an API token with the '{PERMISSION}' permission)",
            )
    if not token:
        raise InputError(source, "the token is empty")
    if not _TOKEN_OK.match(token):
        raise InputError(source, "the token contains spaces, line breaks or non-ASCII characters")
    return token, source


# --------------------------------------------------------------------------------------------
# The client


def gateway_ca_url(api_base: str, account_id: str) -> str:
    return f"{check_api_base(api_base)}/accounts/{check_account_id(account_id)}/access/gateway_ca"


def fetch_gateway_ca(
    account_id: str,
    token: str,
    *,
    api_base: str = DEFAULT_API_BASE,
    timeout: float = DEFAULT_TIMEOUT,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    backoff_base: float = DEFAULT_BACKOFF_BASE,
    sleep: Callable[[float], None] = time.sleep,
    log: Log | None = None,
    transport: httpx.BaseTransport | None = None,
) -> GatewayCA:
    """Create the gateway CA, or find the existing one; return its validated public key.

    Raises InputError or GatewayTransportError (see the module docstring); never returns an
    unvalidated key.
    """
    url = gateway_ca_url(api_base, account_id)
    if not token or not _TOKEN_OK.match(token):
        raise InputError("token", "the token is empty or contains unusable characters")
    if max_attempts < 1:
        raise InputError("max_attempts", "must be at least 1")
    client = _Client(url, token, timeout, max_attempts, backoff_base, sleep, log or _no_log, transport)
    return client.fetch()


def _no_log(_: str) -> None:
    pass


@dataclass
class _Answer:
    status: int
    body: Any  # parsed JSON, or None
    json_ok: bool
    text: str  # cleaned, for messages


class _Client:
    def __init__(
        self,
        url: str,
        token: str,
        timeout: float,
        max_attempts: int,
        backoff_base: float,
        sleep: Callable[[float], None],
        log: Log,
        transport: httpx.BaseTransport | None,
    ) -> None:
        self.url = url
        self._token = token
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.sleep = sleep
        self._log = log
        self.transport = transport

    def __repr__(self) -> str:  # keep the token out of any repr
        return f"_Client(url={self.url!r})"

    # -- helpers -------------------------------------------------------------------------------

    def clean(self, text: str) -> str:
        return _clean(text, self._token)

    def log(self, text: str) -> None:
        self._log(self.clean(text))

    # -- flow ----------------------------------------------------------------------------------

    def fetch(self) -> GatewayCA:
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
            "User-Agent": "sshd-setup",
        }
        # follow_redirects=False (the default): never carry the token to another address.
        with httpx.Client(
            headers=headers, timeout=self.timeout, transport=self.transport, follow_redirects=False
        ) as http:
            post = self.request(http, "POST")
            if _names_already_exists(post.body):
                self.log("the gateway CA exists already; listing it")
                return self.from_list(self.request(http, "GET"))
            if post.status == 403:
                self.log("POST refused (403); trying GET in case the CA exists and the token may read it")
                get = self.request(http, "GET")
                if 200 <= get.status < 300 and _listed_any(get.body):
                    return self.from_list(get)
            self.raise_for(post, "POST")
            result = _result_of(post.body)
            if not isinstance(result, dict):
                raise InputError("API answer", "POST result is not an object with 'public_key'")
            return GatewayCA(key=self.key_of(result, "result"), ca_id=_id_of(result), created=True)

    def from_list(self, get: _Answer) -> GatewayCA:
        self.raise_for(get, "GET")
        result = _result_of(get.body)
        if not isinstance(result, list):
            raise InputError("API answer", "GET result is not a list of CAs")
        if not result:
            raise InputError("API answer", "the API says a gateway CA exists but lists none")
        first = result[0]
        if not isinstance(first, dict):
            raise InputError("API answer", "GET result[0] is not an object with 'public_key'")
        return GatewayCA(key=self.key_of(first, "result[0]"), ca_id=_id_of(first), created=False, listed=len(result))

    def key_of(self, entry: dict[str, Any], where: str) -> PublicKey:
        line = entry.get("public_key")
        if not isinstance(line, str) or not line.strip():
            raise InputError("API answer", f"{where}.public_key is missing or not a string")
        try:
            return parse_public_key(line)
        except InvalidKey as exc:
            raise InputError(
                "API answer", f"{where}.public_key is not a valid SSH public key: {self.clean(str(exc))}"
            ) from None

    # -- one request, with retries -------------------------------------------------------------

    def request(self, http: httpx.Client, method: str) -> _Answer:
        attempt = 0
        while True:
            attempt += 1
            self.log(f"{method} {self.url} (attempt {attempt}/{self.max_attempts})")
            try:
                response = http.request(method, self.url)
            except httpx.TimeoutException:
                raise GatewayTransportError(
                    f"{method} {self.url}: no answer within {self.timeout:g} s (timeout)"
                ) from None
            except httpx.ConnectError as exc:
                raise GatewayTransportError(
                    f"{method} {self.url}: cannot connect ({self.clean(str(exc)) or 'connection failed'})"
                ) from None
            except httpx.HTTPError as exc:
                raise GatewayTransportError(
                    f"{method} {self.url}: {type(exc).__name__} ({self.clean(str(exc))})"
                ) from None
            answer = self.read(response)
            self.log(f"{method} → HTTP {answer.status}")
            if not (answer.status == 429 or answer.status >= 500):
                return answer
            what = f"HTTP {answer.status}" + (f" ({d})" if (d := _describe_errors(answer, self.clean)) else "")
            if attempt >= self.max_attempts:
                raise GatewayTransportError(
                    f"{method} {self.url}: gave up after {attempt} attempts, last answer {what}"
                )
            delay = self.backoff_base * 2 ** (attempt - 1)
            retry_after = _retry_after(response.headers.get("Retry-After"))
            if retry_after is not None:
                if retry_after > MAX_RETRY_AFTER:
                    raise GatewayTransportError(
                        f"{method} {self.url}: {what}; the API asks to wait {retry_after:g} s; try again later"
                    )
                delay = retry_after
            self.log(f"{what}; retrying in {delay:g} s")
            self.sleep(delay)

    def read(self, response: httpx.Response) -> _Answer:
        raw = response.content
        try:
            body = json.loads(raw)
            ok = True
        except (ValueError, UnicodeDecodeError):
            body, ok = None, False
        return _Answer(response.status_code, body, ok, self.clean(raw.decode("utf-8", "replace")))

    def raise_for(self, answer: _Answer, method: str) -> None:
        """Raise the right InputError unless ``answer`` is a well-formed success envelope."""
        status = answer.status
        detail = _describe_errors(answer, self.clean)
        suffix = f" (API: {detail})" if detail else ""
        if status == 401:
            raise InputError(
                "API",
                f"HTTP 401: the token was not accepted (wrong, expired or revoked); it needs the "
                f"'{PERMISSION}' permission{suffix}",
            )
        if status == 403:
            raise InputError(
                "API",
                f"HTTP 403: the token lacks the '{PERMISSION}' permission "
                f"(Write to create the CA, Read to list it) for this account{suffix}",
            )
        if status == 404:
            raise InputError("API", f"HTTP 404: no such account; check --account-id{suffix}")
        if not 200 <= status < 300:
            if detail:
                raise InputError("API", f"{method} failed with HTTP {status}: {detail}")
            raise InputError("API", f"{method} answered unexpected HTTP {status}")
        if not answer.json_ok:
            raise InputError("API answer", f"{method} answer is not valid JSON: {answer.text[:80]!r}")
        if not isinstance(answer.body, dict):
            raise InputError("API answer", f"{method} answer is not a JSON object")
        if answer.body.get("success") is not True:
            if detail:
                raise InputError("API", f"{method} failed: {detail}")
            raise InputError("API answer", f"{method} answer has no 'success: true' and names no error")


# --------------------------------------------------------------------------------------------
# Pure helpers


def _clean(text: str, token: str) -> str:
    """One printable line without the token, at most _MAX_TEXT characters."""
    if token:
        text = text.replace(token, "[redacted]")
    text = _CONTROL.sub(" ", text).strip()
    text = " ".join(text.split())
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _errors(body: Any) -> list[tuple[str, str]]:
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return []
    found = []
    for error in body["errors"]:
        if isinstance(error, dict):
            found.append((str(error.get("code", "")), str(error.get("message", ""))))
        else:
            found.append(("", str(error)))
    return found


def _names_already_exists(body: Any) -> bool:
    return any(ALREADY_EXISTS in code or ALREADY_EXISTS in message for code, message in _errors(body))


def _describe_errors(answer: _Answer, clean: Callable[[str], str]) -> str:
    parts = []
    for code, message in _errors(answer.body):
        text = f"{code}: {message}" if code and message else code or message
        parts.append(clean(text))
    return clean("; ".join(p for p in parts if p))


def _result_of(body: Any) -> Any:
    if not isinstance(body, dict) or "result" not in body:
        raise InputError("API answer", "the answer has no 'result'")
    return body["result"]


def _listed_any(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("result"), list) and bool(body["result"])


def _id_of(entry: dict[str, Any]) -> str | None:
    value = entry.get("id")
    return None if value is None else _clean(str(value), "")[:100]


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header; None when absent or an HTTP date (then: backoff)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 and seconds == seconds else None
