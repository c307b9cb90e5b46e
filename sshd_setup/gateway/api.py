"""Fetch the SSH gateway's CA public key from the Cloudflare API.

Flow: ``POST {api_base}/accounts/{id}/access/gateway_ca`` (no body) creates the CA and answers
``{id, public_key}``; both the POST and the GET answer have been seen with ``result`` as an object
and as a list, so either is read (a list: its first entry). When an error in the envelope
``{success, errors: [{code, message}], messages, result}`` names
``access.api.error.gateway_ca_already_exists`` (in its code or its message), the CA exists
already: ``GET`` the same path lists ``[{id, public_key}]`` and the first entry is used.
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

An empty or missing ``public_key`` is an InputError naming it (nothing is written).
Retries, redaction of the token and the envelope rules live in ``sshd_setup.gateway.client``.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from sshd_setup.core.sshkeys import InvalidKey, PublicKey, parse_public_key
from sshd_setup.errors import InputError
from sshd_setup.gateway.client import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIMEOUT,
    MAX_RETRY_AFTER,
    Answer,
    ApiClient,
    GatewayTransportError,
    Log,
    Retries,
    api_errors,
    clean_text,
    describe_errors,
    result_of,
)
from sshd_setup.inputfile import MAX_KEY_FILE_BYTES, NotReadable, read_bounded

__all__ = [
    "ALREADY_EXISTS",
    "DEFAULT_API_BASE",
    "MAX_RETRY_AFTER",
    "PERMISSION",
    "TOKEN_ENV",
    "GatewayCA",
    "GatewayTransportError",
    "check_account_id",
    "check_api_base",
    "fetch_gateway_ca",
    "gateway_ca_url",
    "load_token",
]

DEFAULT_API_BASE = "https://api.cloudflare.com/client/v4"
TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
ALREADY_EXISTS = "access.api.error.gateway_ca_already_exists"
PERMISSION = "Access: SSH Auditing"
_CA_PATH = "access/gateway_ca"

# Cloudflare account ids are 32 hex digits; accept any short run of URL-safe characters so
# nothing can escape the path segment (no '/', '.', '%', '?', '#').
_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# What may go in an HTTP header value as a bearer token: visible ASCII, no spaces.
_TOKEN_OK = re.compile(r"^[\x21-\x7e]+$")


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
# The gateway CA


def gateway_ca_url(api_base: str, account_id: str) -> str:
    return f"{check_api_base(api_base)}/accounts/{check_account_id(account_id)}/{_CA_PATH}"


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
    base = check_api_base(api_base)
    check_account_id(account_id)
    retries = Retries(timeout=timeout, max_attempts=max_attempts, backoff_base=backoff_base, sleep=sleep)
    needs = f"the '{PERMISSION}' permission"
    client = ApiClient(base, account_id, token, permission=needs, retries=retries, log=log, transport=transport)
    with client as api:
        return _fetch(api)


def _fetch(api: ApiClient) -> GatewayCA:
    post = api.request("POST", _CA_PATH)
    if _names_already_exists(post.body):
        api.log("the gateway CA exists already; listing it")
        return _from_answer(api, api.request("GET", _CA_PATH), "GET", created=False)
    if post.status == 403:
        api.log("POST refused (403); trying GET in case the CA exists and the token may read it")
        get = api.request("GET", _CA_PATH)
        if 200 <= get.status < 300 and _listed_any(get.body):
            return _from_answer(api, get, "GET", created=False)
    return _from_answer(api, post, "POST", created=True)


def _from_answer(api: ApiClient, answer: Answer, method: str, *, created: bool) -> GatewayCA:
    """The CA of a POST or GET answer: ``result`` has been seen both as an object and as a list."""
    _raise_for(api, answer, method)
    result = result_of(answer.body)
    listed = 1
    where = "result"
    if isinstance(result, list):
        if not result:
            raise InputError("API answer", "the API says a gateway CA exists but lists none")
        listed, result, where = len(result), result[0], "result[0]"
    if not isinstance(result, dict):
        raise InputError("API answer", f"{method} {where} is not an object with 'public_key'")
    return GatewayCA(key=_key_of(api, result, where), ca_id=_id_of(result), created=created, listed=listed)


def _raise_for(api: ApiClient, answer: Answer, method: str) -> None:
    if answer.status == 403:
        detail = describe_errors(answer.body, api.clean)
        raise InputError(
            "API",
            f"HTTP 403: the token lacks the '{PERMISSION}' permission (Write to create the CA, Read to list "
            "it) for this account" + (f" (API: {detail})" if detail else ""),
        )
    api.raise_for(answer, method, _CA_PATH)


def _key_of(api: ApiClient, entry: dict[str, Any], where: str) -> PublicKey:
    line = entry.get("public_key")
    if "public_key" in entry and (line is None or (isinstance(line, str) and not line.strip())):
        ca = _id_of(entry)
        raise InputError(
            "API answer",
            f"{where}.public_key is empty: the API returned the gateway CA{f' {ca}' if ca else ''} without a "
            "key; nothing was written",
        )
    if not isinstance(line, str):
        raise InputError("API answer", f"{where}.public_key is missing or not a string")
    try:
        return parse_public_key(line)
    except InvalidKey as exc:
        raise InputError(
            "API answer", f"{where}.public_key is not a valid SSH public key: {api.clean(str(exc))}"
        ) from None


# --------------------------------------------------------------------------------------------
# Pure helpers


def _names_already_exists(body: Any) -> bool:
    return any(ALREADY_EXISTS in code or ALREADY_EXISTS in message for code, message in api_errors(body))


def _listed_any(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("result"), list) and bool(body["result"])


def _id_of(entry: dict[str, Any]) -> str | None:
    value = entry.get("id")
    return None if value is None else clean_text(str(value), "")[:100]
