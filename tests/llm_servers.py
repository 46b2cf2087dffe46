"""Real HTTP servers on 127.0.0.1 that speak OpenAI's chat-completions protocol and
Anthropic's Messages protocol, for tests and the judging benchmark: the judge clients talk to
them through the real `openai` and `anthropic` libraries, and nothing leaves the machine.

What the server answers is up to a `judge` function (request text -> answer text); a script
of statuses (429, 500) and delays lets a test make it fail in the ways real endpoints do.
"""

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FENCE = re.compile(r"<<<(response [AB]|conversation) (\w+)>>>\n(.*?)\n<<<end of \1 \2>>>", re.S)


def fenced_parts(text: str) -> dict[str, str]:
    """The fenced material of a request: {"conversation": ..., "response A": ..., ...}."""
    return {name: body for name, _, body in FENCE.findall(text)}


def outside_fences(text: str) -> str:
    """The request's instructions: everything not inside a fence."""
    return FENCE.sub("", text)


def verdict(winner: str, strength: int = 2, reasoning: str = "compared") -> str:
    return json.dumps({"reasoning": reasoning, "winner": winner, "strength": strength})


def knows_better(text: str) -> str:
    """A judge that picks the response saying "GOOD", whichever order it is shown in, and
    would obey an instruction to answer A if one reached it outside the fences."""
    if "answer A" in outside_fences(text):
        return verdict("A", 3, "as instructed")
    parts = fenced_parts(text)
    a, b = "GOOD" in parts.get("response A", ""), "GOOD" in parts.get("response B", "")
    return verdict("A" if a and not b else "B" if b and not a else "tie")


def favours_first(text: str) -> str:
    """A judge with position bias: it always picks the response shown first."""
    return verdict("A", 1, "the first is better")


class LLMServer:
    """Started on a free port; `url` is the OpenAI base URL, `anthropic_url` Anthropic's."""

    def __init__(self, judge: Callable[[str], str] = knows_better):
        self.judge = judge
        self.script: list[tuple[int, float]] = []  # (status, delay) for the next requests
        self.requests: list[dict] = []  # every request body, in arrival order
        self.headers: list[dict] = []
        self.seen: Counter = Counter()  # request texts, to count repeats
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = body["messages"][-1]["content"]
                with server.lock:
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                    server.seen[text] += 1
                    status, delay = server.script.pop(0) if server.script else (200, 0.0)
                if delay:
                    time.sleep(delay)
                if status != 200:
                    return self._send(status, {"error": {"message": "try later"}},
                                      {"Retry-After": "0"})  # fmt: skip
                answer = server.judge(text)
                if self.path.endswith("/chat/completions"):
                    payload = {
                        "id": "chatcmpl-1", "object": "chat.completion", "created": 0,
                        "model": body["model"],
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": answer}}],
                        "usage": {"prompt_tokens": len(text) // 4, "completion_tokens": 20,
                                  "total_tokens": len(text) // 4 + 20},
                    }  # fmt: skip
                else:
                    payload = {
                        "id": "msg_1", "type": "message", "role": "assistant",
                        "model": body["model"], "stop_reason": "end_turn",
                        "content": [{"type": "text", "text": answer}],
                        "usage": {"input_tokens": len(text) // 4, "output_tokens": 20},
                    }  # fmt: skip
                self._send(200, payload)

            def _send(self, status: int, payload: dict, headers: dict | None = None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"
