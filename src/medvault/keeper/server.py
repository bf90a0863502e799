"""The keeper's HTTP front: ``POST /v1/key-shares`` and ``GET /v1/health``, over kept-alive connections.

Readers keep one pooled connection per keeper (``medvault.keeper.protocol``), so the handler
speaks HTTP/1.1 with keep-alive, sends each answer in one write with Nagle's algorithm off (a
response split in two on a kept-alive connection otherwise waits out the reader's delayed
ACK, some 40 ms), and closes a connection idle for ``IDLE_SECONDS``. The service tracks the
open connections so that stopping it closes them too: a stopped keeper answers nothing.
"""

from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from medvault.keeper.protocol import KEY_SHARES_PATH

if TYPE_CHECKING:
    from medvault.keeper.service import KeeperService

__all__ = ["IDLE_SECONDS", "MAX_BODY", "key_share_handler"]

MAX_BODY = 64 * 1024
IDLE_SECONDS = 30.0  # a kept-alive HTTP connection idle this long is closed
log = logging.getLogger("medvault.keeper")


def key_share_handler(service: KeeperService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "medvault-keeper/1"
        protocol_version = "HTTP/1.1"  # keep-alive: a reader's pooled connection serves its next request
        disable_nagle_algorithm = True  # else a kept-alive connection waits out the reader's delayed ACK
        wbufsize = -1  # buffered: the headers and the body leave in one write
        timeout = IDLE_SECONDS  # an idle kept-alive connection is closed

        def setup(self) -> None:
            super().setup()
            service.connections.add(self.connection)

        def finish(self) -> None:
            service.connections.discard(self.connection)
            super().finish()

        def do_POST(self) -> None:
            if self.path != KEY_SHARES_PATH:
                self._answer(404, {"error": "not-found", "message": f"POST {KEY_SHARES_PATH}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                self.close_connection = True  # the body is left unread: the connection cannot serve another request
                self._answer(400, {"error": "malformed", "message": f"a body of 1 to {MAX_BODY} bytes is expected"})
                return
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError:
                self._answer(400, {"error": "malformed", "message": "the body is not JSON"})
                return
            self._answer(*service.handle(body))

        def do_GET(self) -> None:
            if self.path != "/v1/health":
                self._answer(404, {"error": "not-found", "message": "GET /v1/health"})
                return
            chain = service.client.chain
            self._answer(
                200, {"keeper": service.address, "chainId": chain.chain_id, "directory": chain.keepers.address}
            )

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

    return Handler
