"""A real HTTP server on 127.0.0.1 that behaves like the gateway CA endpoint of the Cloudflare API.

Default behaviour (stateful, as documented):
  POST /client/v4/accounts/{account}/access/gateway_ca
      no CA yet  → 200 {success: true, result: {id, public_key}} and the CA now exists
      CA exists  → 400 {success: false, errors: [{code: 12130, message: ALREADY_EXISTS}]}
  GET  same path → 200 {success: true, result: [{id, public_key}]}  (empty list when none)
  wrong token → 401, unknown account → 404 (Cloudflare-shaped envelopes).

Tests override single answers with `script(method, Reply(...), ...)`: scripted replies are used
first, in order, then the default behaviour resumes; `script(method, ..., path="targets/batch")`
scripts only requests whose path ends with that text. In a reply body the text `{AUTH}` is
replaced by the Authorization header the server received (to test that clients redact it).

The Access for Infrastructure endpoints (targets, virtual networks, audit SSH settings) are in
`infra.py`, served from the same port: `gw.infra` holds their state.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

try:  # tests/ may or may not be a package
    from tests.gatewayfake.infra import Infra, envelope, error_envelope
except ModuleNotFoundError:
    from gatewayfake.infra import Infra, envelope, error_envelope  # type: ignore[no-redef]

__all__ = ["ALREADY_EXISTS", "FakeGateway", "Reply", "envelope", "error_envelope"]

ALREADY_EXISTS = "access.api.error.gateway_ca_already_exists"
_PATH = re.compile(r"^/client/v4/accounts/([^/]+)/access/gateway_ca$")
_ACCOUNT_PATH = re.compile(r"^/client/v4/accounts/([^/]+)/(.+)$")


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list → JSON; str/bytes → sent as is; None → empty body
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (timeouts)


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None
    body: bytes


class FakeGateway:
    def __init__(self, token: str, account: str, key_line: str, *, exists: bool = False) -> None:
        self.token = token
        self.account = account
        self.key_line = key_line
        self.exists = exists
        self.ca_id = "ca-0001"
        self.requests: list[Seen] = []
        self.infra = Infra()
        self._scripts: dict[str, deque[tuple[str | None, Reply]]] = {
            method: deque() for method in ("POST", "GET", "PUT", "DELETE")
        }
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for serve_forever to notice, which by default
        # takes up to 0.5 s per fake (seconds over a whole test run).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)

    # -- control ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/client/v4"

    def script(self, method: str, *replies: Reply, path: str | None = None) -> None:
        with self._lock:
            self._scripts[method].extend((path, reply) for reply in replies)

    def methods(self) -> list[str]:
        return [seen.method for seen in self.requests]

    def writes(self) -> list[Seen]:
        """Every request that could change something (all but GET)."""
        return [seen for seen in self.requests if seen.method != "GET"]

    def start(self) -> FakeGateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- behaviour -------------------------------------------------------------------------

    def answer(self, method: str, path: str, authorization: str | None, body: bytes = b"") -> Reply:
        with self._lock:
            bare = urlsplit(path).path
            queue = self._scripts.get(method, deque())
            for index, (suffix, reply) in enumerate(queue):
                if suffix is None or bare.endswith(suffix):
                    del queue[index]
                    return reply
            match = _PATH.match(path)
            other = _ACCOUNT_PATH.match(bare)
            if not match and other and self.infra.serves(other.group(2)):
                if authorization != f"Bearer {self.token}":
                    return Reply(401, error_envelope(10000, "Authentication error"))
                if other.group(1) != self.account:
                    return Reply(404, error_envelope(7003, "Could not route to account"))
                status, payload, headers = self.infra.answer(
                    method, other.group(2), parse_qs(urlsplit(path).query), body
                )
                return Reply(status, payload, headers)
            if method not in ("POST", "GET") or not match:
                return Reply(404, error_envelope(7003, "Could not route to " + path))
            if authorization != f"Bearer {self.token}":
                return Reply(401, error_envelope(10000, "Authentication error"))
            if match.group(1) != self.account:
                return Reply(404, error_envelope(7003, "Could not route to account"))
            entry = {"id": self.ca_id, "public_key": self.key_line}
            if method == "GET":
                return Reply(200, envelope([entry] if self.exists else []))
            if self.exists:
                return Reply(400, error_envelope(12130, ALREADY_EXISTS))
            self.exists = True
            return Reply(200, envelope(entry))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                authorization = self.headers.get("Authorization")
                with gateway._lock:
                    gateway.requests.append(Seen(self.command, self.path, authorization, body))
                reply = gateway.answer(self.command, self.path, authorization, body)
                if reply.delay:
                    time.sleep(reply.delay)
                if isinstance(reply.body, (dict, list)):
                    data = json.dumps(reply.body).encode()
                elif isinstance(reply.body, str):
                    data = reply.body.encode()
                else:
                    data = reply.body or b""
                data = data.replace(b"{AUTH}", (authorization or "").encode())
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            do_GET = _serve
            do_POST = _serve
            do_PUT = _serve
            do_DELETE = _serve

        return Handler
