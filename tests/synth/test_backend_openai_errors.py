"""The openai backend against a tiny local HTTP server that times out or fails on purpose.

No model: ``http.server`` in a thread answers the OpenAI routes, sleeping past the client's
timeout for prompts that contain "slow" and answering HTTP 500 for "fail".
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pyarrow as pa
import pytest

from pipelines.errors import BackendError
from pipelines.stage import REASON

pytest.importorskip("openai")

TIMEOUT_S = 0.3
RETRIES = 1


class _Handler(BaseHTTPRequestHandler):
    hits: ClassVar[dict[str, int]] = {}

    def log_message(self, *args):  # keep pytest's output clean
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = body["messages"][-1]["content"] if "messages" in body else body["prompt"]
        _Handler.hits[text] = _Handler.hits.get(text, 0) + 1
        if "slow" in text:
            time.sleep(TIMEOUT_S * 4)
        if "fail" in text:
            return self._send(500, {"error": {"message": "engine died", "type": "server_error"}})
        if "messages" in body:
            choice = {"index": 0, "message": {"role": "assistant", "content": f"answer to {text}"}, "finish_reason": "stop"}
            return self._send(200, {"id": "c", "object": "chat.completion", "created": 0, "model": "m", "choices": [choice]})
        choice = {"index": 0, "text": f"answer to {text}", "finish_reason": "stop", "logprobs": None}
        return self._send(200, {"id": "c", "object": "text_completion", "created": 0, "model": "m", "choices": [choice]})

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass


@pytest.fixture(scope="module")
def base_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _llm(base_url):
    from synth.backends.openai import OpenAILLM

    return OpenAILLM("m", base_url=base_url, max_retries=RETRIES, timeout=TIMEOUT_S)


# Bug (issue 10, item 16): a request that timed out after the client's retries raised
# BackendError (APITimeoutError is an APIConnectionError) and stopped the whole run; a 5xx
# after the retries did the same. Both are now that row's error, after the retries.
def test_timeout_and_5xx_become_row_errors_after_retries(base_url):
    outs = _llm(base_url).generate(["fine", "slow one", "fail one"], {"max_tokens": 4})
    assert outs[0].error is None and outs[0].text == "answer to fine"
    assert outs[1].error.startswith("server_error: timeout after 1 retries")
    assert outs[2].error.startswith("server_error: HTTP 500 after 1 retries")
    assert _Handler.hits["slow one"] == _Handler.hits["fail one"] == RETRIES + 1  # retried, then given up


def test_stage_rejects_the_failed_rows_and_keeps_the_rest(base_url):
    from synth.respond import Respond

    st = Respond(backend="openai", model="m", engine={"base_url": base_url, "max_retries": RETRIES, "timeout": TIMEOUT_S}, sampling={"max_tokens": 4})
    t = pa.table({"id": ["a", "b", "c"], "instruction": ["fine chat", "slow chat", "fail chat"]})
    kept, rejected = st.process(t)
    assert kept.column("response").to_pylist() == ["answer to fine chat"]
    assert rejected.column("id").to_pylist() == ["b", "c"]
    assert rejected.column(REASON).to_pylist() == ["server_error", "server_error"]


def test_unreachable_server_still_stops_the_run():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    with pytest.raises(BackendError, match="cannot reach the server"):
        _llm(f"http://127.0.0.1:{port}/v1").generate(["x"], {"max_tokens": 4})
