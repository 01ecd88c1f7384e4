"""A real HTTP server that speaks the OpenAI chat-completions protocol, for tests and benchmarks.

It listens on a free loopback port in a thread of the calling process (so a Celery worker in
another process reaches it over real HTTP), records every request (headers and JSON body),
counts requests in flight (the most at once is ``max_in_flight``), and answers from a script:
``server.script([...])`` queues ``Reply`` objects used one per request; when the script is
empty, ``server.default`` answers.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPORT = "FINDINGS: The lungs are clear. No pleural effusion.\nIMPRESSION: Normal chest."


@dataclass
class Reply:
    status: int = 200
    content: str = REPORT  # the model's report text
    delay: float = 0.0  # seconds before answering
    body: bytes | None = None  # raw body instead of a chat completion
    model: str = "fake-cxr-model"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: dict | None
    raw: bytes
    at: float = 0.0  # time.time() when it arrived


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.default = Reply()
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.url = ""  # base URL up to /v1, set when started

    def script(self, replies: list[Reply]) -> None:
        with self._lock:
            self._script.extend(replies)

    def _next(self) -> Reply:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def wait_for_requests(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.requests)} of {count} requests within {timeout} s")
            time.sleep(0.02)


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: with Nagle on, the body waits for the
        # client's delayed ACK, ~40 ms on every keep-alive request (real servers set NODELAY).
        disable_nagle_algorithm = True

        def log_message(self, *args) -> None:  # quiet
            pass

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length", "0") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            fake.requests.append(Request(self.path, dict(self.headers.items()), body, raw,
                                         at=time.time()))
            reply = fake._next()
            fake._enter()
            try:
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.body is not None:
                    payload = reply.body
                elif reply.status >= 400:
                    payload = json.dumps({"error": {"message": f"status {reply.status}"}}).encode()
                else:
                    payload = json.dumps({
                        "id": "chatcmpl-test", "object": "chat.completion",
                        "model": reply.model,
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": reply.content}}],
                        "usage": {"prompt_tokens": 600, "completion_tokens": 40,
                                  "total_tokens": 640},
                    }).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(payload)
            finally:
                fake._leave()

    return Handler


@contextlib.contextmanager
def fake_openai_server() -> Iterator[FakeOpenAI]:
    """Start the server on 127.0.0.1:<free port>; ``fake.url`` is its ``/v1`` base URL."""
    fake = FakeOpenAI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    # A short poll interval: shutdown() waits up to one interval (0.5 s by default) per test.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="fake-openai", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
