"""An OpenAI-compatible model server on the host, for the stack's worker containers.

Like ``tests/support/fake_openai.py`` (same reply), but it listens on an address the
containers reach (the compose network's gateway, on this host), records which address each
request came from (so a test can tell which container called), and can hold a request: the
first request whose body contains a ``hold`` marker is answered only when ``release()`` is
called, so a worker can be killed in the middle of its model call.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.fake_openai import REPORT


@dataclass
class Seen:
    path: str
    client: str  # the calling container's address
    body: bytes
    at: float
    held: bool


class ModelServer:
    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.hold_marker = b""
        self._held_once = False
        self._release = threading.Event()
        self._lock = threading.Lock()
        self.url = ""
        self.delay_s = 0.0  # each answer takes this long (work spread over several workers)

    def hold_first(self, marker: str) -> None:
        """Hold the first request that carries ``marker`` (until ``release``)."""
        with self._lock:
            self.hold_marker, self._held_once = marker.encode(), False
            self._release.clear()

    def release(self) -> None:
        self._release.set()

    def _should_hold(self, body: bytes) -> bool:
        with self._lock:
            if self.hold_marker and not self._held_once and self.hold_marker in body:
                self._held_once = True
                return True
            return False

    def with_marker(self, marker: str) -> list[Seen]:
        return [seen for seen in self.requests if marker.encode() in seen.body]

    def wait_for(self, marker: str, count: int, timeout: float) -> list[Seen]:
        deadline = time.monotonic() + timeout
        while len(found := self.with_marker(marker)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} of {count} model requests for {marker} "
                                   f"within {timeout:.0f} s")
            time.sleep(0.2)
        return found


def _handler(server: ModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
            held = server._should_hold(body)
            server.requests.append(Seen(self.path, self.client_address[0], body, time.time(),
                                        held))
            if held:
                server._release.wait(timeout=600)
            elif server.delay_s:
                time.sleep(server.delay_s)
            payload = json.dumps({
                "id": "chatcmpl-deploy", "object": "chat.completion", "model": "fake-cxr-model",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": REPORT}}],
                "usage": {"prompt_tokens": 600, "completion_tokens": 40, "total_tokens": 640},
            }).encode()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

    return Handler


@contextlib.contextmanager
def model_server(host: str) -> Iterator[ModelServer]:
    """Serve on ``host``:<free port>; ``server.url`` is the ``/v1`` base URL."""
    server = ModelServer()
    httpd = ThreadingHTTPServer((host, 0), _handler(server))
    httpd.daemon_threads = True
    server.url = f"http://{host}:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                              name="deploy-model", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release()
        httpd.shutdown()
        httpd.server_close()
