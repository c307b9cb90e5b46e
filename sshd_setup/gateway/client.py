"""One HTTP client for every Cloudflare endpoint sshd-setup calls: envelope, errors, retries, pages.

Every answer is the vendor's envelope ``{success, errors: [{code, message}], messages, result,
result_info?}``; ``call`` returns ``result`` of a well-formed success or raises:

* ``InputError`` (exit 2): the request or the answer is wrong and retrying will not help
  (401/403: token refused or lacking a permission, 404, 409 conflict, any other API error with its
  code and message, an answer that is not a success envelope);
* ``GatewayTransportError`` (exit 1): unreachable, timeout, DNS/TLS, or 429/5xx still failing after
  ``max_attempts`` tries (or a Retry-After longer than ``MAX_RETRY_AFTER``).

Only 429 and 5xx are retried, sleeping ``backoff_base * 2**(n-1)`` s or the server's Retry-After.
``paginate`` follows ``page``/``per_page`` until ``result_info`` says the last page was read.

Secrets: the token only travels in the Authorization header; every text taken from the API or
httpx goes through ``clean`` (token removed, one line, shortened); exceptions are raised ``from
None`` so no chained traceback carries the request (which holds the header).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from sshd_setup import exitcodes
from sshd_setup.errors import InputError, SshdSetupError

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_ATTEMPTS = 4
DEFAULT_BACKOFF_BASE = 1.0
MAX_RETRY_AFTER = 30.0  # seconds; a longer Retry-After is reported instead of waited for
MAX_PAGES = 10_000  # a server that never says "last page" must not loop us forever

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_TOKEN_OK = re.compile(r"^[\x21-\x7e]+$")
_MAX_TEXT = 300

Log = Callable[[str], None]
Params = Mapping[str, str | int | list[str]]


class GatewayTransportError(SshdSetupError):
    """The API could not be reached, timed out, or kept failing (429/5xx) after the retries: exit 1."""

    exit_code = exitcodes.HOST_FAILURES


@dataclass
class Answer:
    status: int
    body: Any  # parsed JSON, or None
    json_ok: bool
    text: str  # cleaned, for messages
    retry_after: str | None = None


@dataclass(frozen=True)
class Retries:
    timeout: float = DEFAULT_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_base: float = DEFAULT_BACKOFF_BASE
    sleep: Callable[[float], None] = time.sleep


def _no_log(_: str) -> None:
    pass


class ApiClient:
    """``with ApiClient(base, account, token, permission=...) as api: api.call("GET", "infrastructure/targets")``.

    ``permission`` says what a 401/403 should tell the user to grant ("the 'X' permission").
    """

    def __init__(
        self,
        api_base: str,
        account_id: str,
        token: str,
        *,
        permission: str,
        retries: Retries | None = None,
        log: Log | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not token or not _TOKEN_OK.match(token):
            raise InputError("token", "the token is empty or contains unusable characters")
        self.retries = retries or Retries()
        if self.retries.max_attempts < 1:
            raise InputError("max_attempts", "must be at least 1")
        self.account_url = f"{api_base.rstrip('/')}/accounts/{account_id}"
        self.permission = permission
        self._token = token
        self._log = log or _no_log
        self._transport = transport
        self._http: httpx.Client | None = None
        self.writes = 0  # requests other than GET that were answered (tests, --dry-run proofs)

    def __repr__(self) -> str:  # keep the token out of any repr
        return f"ApiClient(account_url={self.account_url!r})"

    def __enter__(self) -> ApiClient:
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
            "User-Agent": "sshd-setup",
        }
        # follow_redirects=False (the default): never carry the token to another address.
        self._http = httpx.Client(
            headers=headers, timeout=self.retries.timeout, transport=self._transport, follow_redirects=False
        )
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def clean(self, text: str) -> str:
        return clean_text(text, self._token)

    def log(self, text: str) -> None:
        self._log(self.clean(text))

    def url(self, path: str) -> str:
        return f"{self.account_url}/{path}" if path else self.account_url

    # -- calls ---------------------------------------------------------------------------------

    def call(self, method: str, path: str, *, params: Params | None = None, body: Any = None) -> Any:
        """``result`` of a successful call; raises as the module docstring says."""
        answer = self.request(method, path, params=params, body=body)
        self.raise_for(answer, method, path)
        return result_of(answer.body)

    def paginate(self, path: str, params: Params | None = None, *, per_page: int = 100) -> list[Any]:
        """Every entry of a paginated list. The server may cap per_page; result_info decides the end."""
        entries: list[Any] = []
        page = 1
        while page <= MAX_PAGES:
            query = {**(params or {}), "page": page, "per_page": per_page}
            answer = self.request("GET", path, params=query)
            self.raise_for(answer, "GET", path)
            result = result_of(answer.body)
            if not isinstance(result, list):
                raise InputError("API answer", f"GET {path}: result is not a list")
            entries.extend(result)
            info = answer.body.get("result_info")
            if not result or not isinstance(info, dict):
                return entries
            total_pages = info.get("total_pages")
            if not isinstance(total_pages, int):
                total, size = info.get("total_count"), info.get("per_page") or len(result)
                if not isinstance(total, int) or not isinstance(size, int) or size < 1:
                    return entries
                total_pages = math.ceil(total / size)
            if page >= total_pages:
                return entries
            page += 1
        raise InputError("API answer", f"GET {path}: more than {MAX_PAGES} pages; refusing to go on")

    # -- one request, with retries -------------------------------------------------------------

    def request(self, method: str, path: str, *, params: Params | None = None, body: Any = None) -> Answer:
        if self._http is None:
            raise RuntimeError("ApiClient used outside its with-block")
        url = self.url(path)
        attempt = 0
        retries = self.retries
        while True:
            attempt += 1
            self.log(f"{method} {url} (attempt {attempt}/{retries.max_attempts})")
            try:
                response = self._http.request(
                    method, url, params=dict(params) if params else None, json=body if body is not None else None
                )
            except httpx.TimeoutException:
                raise GatewayTransportError(
                    f"{method} {url}: no answer within {retries.timeout:g} s (timeout)"
                ) from None
            except httpx.ConnectError as exc:
                raise GatewayTransportError(
                    f"{method} {url}: cannot connect ({self.clean(str(exc)) or 'connection failed'})"
                ) from None
            except httpx.HTTPError as exc:
                raise GatewayTransportError(f"{method} {url}: {type(exc).__name__} ({self.clean(str(exc))})") from None
            answer = self.read(response)
            self.log(f"{method} → HTTP {answer.status}")
            if not (answer.status == 429 or answer.status >= 500):
                if method != "GET":
                    self.writes += 1
                return answer
            what = f"HTTP {answer.status}" + (f" ({d})" if (d := describe_errors(answer.body, self.clean)) else "")
            if attempt >= retries.max_attempts:
                raise GatewayTransportError(f"{method} {url}: gave up after {attempt} attempts, last answer {what}")
            delay = retries.backoff_base * 2 ** (attempt - 1)
            retry_after = parse_retry_after(answer.retry_after)
            if retry_after is not None:
                if retry_after > MAX_RETRY_AFTER:
                    raise GatewayTransportError(
                        f"{method} {url}: {what}; the API asks to wait {retry_after:g} s; try again later"
                    )
                delay = retry_after
            self.log(f"{what}; retrying in {delay:g} s")
            retries.sleep(delay)

    def read(self, response: httpx.Response) -> Answer:
        raw = response.content
        try:
            body = json.loads(raw)
            ok = True
        except (ValueError, UnicodeDecodeError):
            body, ok = None, False
        text = self.clean(raw.decode("utf-8", "replace"))
        return Answer(response.status_code, body, ok, text, response.headers.get("Retry-After"))

    def raise_for(self, answer: Answer, method: str, path: str, *, not_found: str | None = None) -> None:
        """Raise the right InputError unless ``answer`` is a well-formed success envelope."""
        status = answer.status
        detail = describe_errors(answer.body, self.clean)
        suffix = f" (API: {detail})" if detail else ""
        if status == 401:
            raise InputError(
                "API",
                f"HTTP 401: the token was not accepted (wrong, expired or revoked); it needs {self.permission}{suffix}",
            )
        if status == 403:
            raise InputError("API", f"HTTP 403: the token lacks {self.permission} for this account{suffix}")
        if status == 404:
            raise InputError("API", f"HTTP 404: {not_found or 'no such account; check --account-id'}{suffix}")
        if status == 409:
            raise InputError("API", f"{method} {path}: HTTP 409 conflict{suffix}")
        if not 200 <= status < 300:
            if detail:
                raise InputError("API", f"{method} {path} failed with HTTP {status}: {detail}")
            raise InputError("API", f"{method} {path} answered unexpected HTTP {status}")
        if not answer.json_ok:
            raise InputError("API answer", f"{method} {path}: answer is not valid JSON: {answer.text[:80]!r}")
        if not isinstance(answer.body, dict):
            raise InputError("API answer", f"{method} {path}: answer is not a JSON object")
        if answer.body.get("success") is not True:
            if detail:
                raise InputError("API", f"{method} {path} failed: {detail}")
            raise InputError("API answer", f"{method} {path}: answer has no 'success: true' and names no error")


# --------------------------------------------------------------------------------------------
# Pure helpers


def clean_text(text: str, token: str) -> str:
    """One printable line without the token, at most _MAX_TEXT characters."""
    if token:
        text = text.replace(token, "[redacted]")
    text = _CONTROL.sub(" ", text).strip()
    text = " ".join(text.split())
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def api_errors(body: Any) -> list[tuple[str, str]]:
    """(code, message) of every entry of the envelope's ``errors``."""
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return []
    found = []
    for error in body["errors"]:
        if isinstance(error, dict):
            found.append((str(error.get("code", "")), str(error.get("message", ""))))
        else:
            found.append(("", str(error)))
    return found


def describe_errors(body: Any, clean: Callable[[str], str]) -> str:
    parts = []
    for code, message in api_errors(body):
        text = f"{code}: {message}" if code and message else code or message
        parts.append(clean(text))
    return clean("; ".join(p for p in parts if p))


def result_of(body: Any) -> Any:
    if not isinstance(body, dict) or "result" not in body:
        raise InputError("API answer", "the answer has no 'result'")
    return body["result"]


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header; None when absent or an HTTP date (then: backoff)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 and seconds == seconds else None
