"""The webhook's Function URL, locally: each HTTP request becomes a Function URL event for the webhook handler.

The provider (the engine) POSTs its signed webhook here exactly as it would to
``https://<id>.lambda-url.<region>.on.aws/?job_id=…``; the handler sees the same event and its answer
(statusCode, headers, body) goes back on the wire.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from faceswap_local import logs
from faceswap_local.events import function_url_event, function_url_response
from faceswap_local.lambda_host import InvocationError, LocalFunction

log = logging.getLogger("local.gateway")
MAX_BODY = 6 * 1024 * 1024  # Lambda's synchronous payload limit


class FunctionUrlGateway:
    """A threaded HTTP server in front of one handler."""

    def __init__(self, function: LocalFunction | None, host: str, port: int, region: str) -> None:
        self.function = function
        self.region = region
        self.url_id = "localwebhook0000000000000000000"[:32]
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                logs.set_component("gateway")
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY:
                    self._reply(413, {"content-type": "application/json"}, b'{"message":"Request Too Long"}')
                    return
                body = self.rfile.read(length) if length else b""
                status, headers, payload = gateway.handle(self.command, self.path, list(self.headers.items()), body,
                                                          self.client_address[0])
                self._reply(status, headers, payload)

            def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
                log.info("%s %s", self.client_address[0], format % args)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def handle(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
               source_ip: str) -> tuple[int, dict[str, str], bytes]:
        """One request → one invocation → (status, headers, body), with Lambda's own error answers."""
        if self.function is None:
            return 503, {"content-type": "application/json"}, b'{"message":"webhook function not loaded"}'
        parts = urlsplit(target)
        event = function_url_event(method=method, raw_path=parts.path, raw_query=parts.query, headers=headers,
                                   body=body, source_ip=source_ip, url_id=self.url_id, region=self.region)
        try:
            result = self.function.invoke(event)
        except InvocationError:
            return 502, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}'
        return function_url_response(result)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
