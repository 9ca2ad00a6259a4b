"""The OpenAI-compatible backend against a real vLLM server on the tiny random Llama.

How the server is started here, and why:
- ``python -m vllm.entrypoints.openai.api_server``, not the ``vllm serve`` script: the
  script's ``main()`` calls ``importlib.metadata.version("vllm")``, and vllm-cpu is
  installed under the distribution name ``vllm-cpu``, so ``vllm serve`` dies at once with
  ``PackageNotFoundError: No package metadata was found for vllm``. The module takes the
  same engine flags (``--model`` instead of the positional model).
- ``--dtype float32``: the server always runs the engine core in a child process, and
  nothing there requests Linux's AMX tile permission, so with a bf16 model vllm-cpu's AMX
  attention kernel dies with SIGILL ("Illegal instruction") on the first request
  (EngineDeadError, HTTP 500). float32 selects the plain vector kernel. (The offline
  backend requests the permission itself: synth/backends/vllm.py ``_request_amx``.)
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.tiny_model import pick_stop_string

pytest.importorskip("openai")
pytestmark = pytest.mark.model

STARTUP_TIMEOUT_S = 180  # ~45-80 s on 2 busy cores; fail fast if the process exits


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(proc: subprocess.Popen, url: str, log_path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
    state = f"exited with {proc.returncode}" if proc.poll() is not None else f"not up after {STARTUP_TIMEOUT_S} s"
    pytest.fail(f"vLLM server {state}; log tail:\n{tail}")


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    """(base_url, model name) of a vLLM OpenAI server on the tiny model; always terminated."""
    pytest.importorskip("vllm")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("vllm_server") / "server.log"
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(tiny_model_dir), "--port", str(port), "--host", "127.0.0.1",
        "--max-model-len", "512", "--enforce-eager", "--dtype", "float32",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        _wait_until_up(proc, f"http://127.0.0.1:{port}/v1/models", log_path)
        yield f"http://127.0.0.1:{port}/v1", str(tiny_model_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def client(server):
    from synth.backends.llm import get_llm, release

    base_url, _ = server
    llm = get_llm("openai", None, base_url=base_url, max_retries=0, timeout=120.0)
    yield llm
    release(llm)


def test_first_served_model_is_used(client, server):
    assert client.name == server[1]
    assert client.tokenizer is client.tokenizer  # loaded once


def test_completions_n_and_logprobs(client):
    outs = client.generate(["hello world", "what is 3 plus 4?"], {"n": 2, "temperature": 1.0, "max_tokens": 5, "logprobs": 2})
    assert [len(o.completions) for o in outs] == [2, 2]
    for c in (c for o in outs for c in o.completions):
        assert c.finish_reason in ("length", "stop")
        assert 1 <= len(c.logprobs) <= 5 and all(1 <= len(pos) <= 3 for pos in c.logprobs)


def test_chat_endpoint(client):
    chats = [[{"role": "user", "content": "hi"}], [{"role": "user", "content": "hello"}]]
    outs = client.chat(chats, {"temperature": 0, "max_tokens": 4, "logprobs": 2})
    assert all(o.error is None and o.completions[0].finish_reason in ("length", "stop") for o in outs)
    assert all(len(o.completions[0].logprobs) >= 1 for o in outs)
    prefill = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "the"}]
    (out,) = client.chat([prefill], {"temperature": 0, "max_tokens": 4}, continue_final_message=True)
    assert out.error is None


def test_stop_string_and_seeds(client):
    greedy = {"temperature": 0, "max_tokens": 24}
    for prompt in ["hello world", "what is 3 plus 4?", "name three fruits"]:
        picked = pick_stop_string(client.generate([prompt], greedy)[0].text)
        if picked:
            break
    else:
        pytest.fail("no usable stop string in the tiny model's greedy outputs")
    stop, before = picked
    c = client.generate([prompt], {**greedy, "stop": [stop]})[0].completions[0]
    assert (c.text, c.finish_reason, c.stop_reason) == (before, "stop", stop)
    outs = client.generate(["hello world"] * 2 + ["the model"], {"temperature": 1.0, "max_tokens": 8}, seeds=[5, 5, 5])
    assert outs[0].text == outs[1].text


def test_prompt_too_long_is_a_row_error(client):
    outs = client.generate(["word " * 600, "hello"], {"temperature": 0, "max_tokens": 4})
    assert outs[0].error.startswith("prompt_too_long") and "maximum context length" in outs[0].error
    assert outs[1].error is None and outs[1].completions


def test_unknown_model_is_a_backend_error(server):
    from pipelines.errors import BackendError
    from synth.backends.openai import OpenAILLM

    llm = OpenAILLM("no-such-model", base_url=server[0], max_retries=0)
    with pytest.raises(BackendError, match="does not serve model 'no-such-model'"):
        llm.generate(["hi"], {"max_tokens": 2})


def test_closed_port_is_a_clear_backend_error():
    from pipelines.errors import BackendError
    from synth.backends.openai import OpenAILLM

    base_url = f"http://127.0.0.1:{_free_port()}/v1"  # bound, then released: nothing listens
    t0 = time.monotonic()
    llm = OpenAILLM("some-model", base_url=base_url, max_retries=0, timeout=5.0)
    with pytest.raises(BackendError, match=f"cannot reach the server at {base_url}") as info:
        llm.generate(["hi", "there"], {"max_tokens": 2})
    assert "is the server running" in info.value.format_message()
    with pytest.raises(BackendError, match=f"cannot reach the server at {base_url}"):
        OpenAILLM(None, base_url=base_url, max_retries=0, timeout=5.0)  # asks /v1/models for a name
    assert time.monotonic() - t0 < 10
