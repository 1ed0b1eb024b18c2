"""A fault-injecting HTTP proxy on 127.0.0.1 for the served-engine tests.

It forwards every request to an upstream OpenAI-compatible server (a real ``vllm serve`` in
tests/test_served_vllm.py) and counts the generation requests per prompt, so that a test can say
"nothing was generated twice". A test queues faults, each for the next generation request whose
prompt contains a given text (or for any): ``429`` with ``Retry-After``, ``500``, ``hang`` (no
answer until the client gives up), ``drop`` (the connection closed without an answer). Every loop
is bounded; the proxy serves threads that end when it is closed.
"""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: longest a hung request holds its connection (the client's timeout is shorter)
HANG_S = 30.0


@dataclass
class Fault:
    kind: str  # "429", "500", "hang", "drop"
    match: str = ""  # a text the prompt must contain ("" = any generation request)
    retry_after: str | None = None


@dataclass
class Proxy:
    upstream: tuple[str, int]
    faults: list[Fault] = field(default_factory=list)
    #: generation requests that reached the upstream, by prompt (text, or the last message's content)
    forwarded: Counter = field(default_factory=Counter)
    #: every generation request received, faulted or not, by prompt
    received: Counter = field(default_factory=Counter)
    injected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    closing: threading.Event = field(default_factory=threading.Event)

    def take_fault(self, prompt: str) -> Fault | None:
        with self.lock:
            self.received[prompt] += 1
            for i, fault in enumerate(self.faults):
                if fault.match in prompt:
                    self.injected.append(f"{fault.kind}:{prompt[-40:]}")
                    return self.faults.pop(i)
        return None


def prompt_of(body: dict[str, Any]) -> str:
    if "prompt" in body:
        return str(body["prompt"])
    messages = body.get("messages") or [{}]
    return str(messages[-1].get("content", ""))


def start(upstream_port: int) -> tuple[http.server.ThreadingHTTPServer, Proxy]:
    """A proxy to ``127.0.0.1:upstream_port`` on a free port; ``server.server_address[1]`` is its port."""
    state = Proxy(("127.0.0.1", upstream_port))

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _forward(self, body: bytes | None) -> None:
            conn = http.client.HTTPConnection(*state.upstream, timeout=600)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status, ctype = resp.status, resp.getheader("Content-Type", "application/json")
            except OSError as exc:  # the upstream is down: as a gateway says it
                data, status, ctype = json.dumps({"error": {"message": f"upstream: {exc}"}}).encode(), 502, \
                    "application/json"
            finally:
                conn.close()
            self._send(status, data, {"Content-Type": ctype})

        def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._forward(None)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if not self.path.endswith("completions"):
                return self._forward(body)
            prompt = prompt_of(json.loads(body))
            fault = state.take_fault(prompt)
            if fault is None:
                with state.lock:
                    state.forwarded[prompt] += 1
                return self._forward(body)
            if fault.kind in ("429", "500"):
                headers = {"Content-Type": "application/json"}
                if fault.retry_after is not None:
                    headers["Retry-After"] = fault.retry_after
                msg = json.dumps({"error": {"message": f"injected {fault.kind}"}}).encode()
                return self._send(int(fault.kind), msg, headers)
            if fault.kind == "hang":
                state.closing.wait(HANG_S)
                self.close_connection = True
                return None
            if fault.kind == "drop":
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return None
            raise ValueError(fault.kind)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return server, state


def stop(server: http.server.ThreadingHTTPServer, state: Proxy) -> None:
    state.closing.set()
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, timeout: float = 300.0, proc: Any = None) -> None:
    """Until vLLM's ``GET /health`` (no key needed) answers on 127.0.0.1:port (bounded; a dead process
    fails at once)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"vllm serve exited with {proc.returncode} before it answered")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(1.0)
    raise TimeoutError(f"vllm serve on port {port} did not answer within {timeout:.0f} s")
