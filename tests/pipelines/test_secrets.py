"""Secrets come from the environment, never from a recipe, and are never written.

The openai backend runs for real against a small OpenAI-compatible HTTP server started here
(stdlib ``http.server``: canned chat answers, and it records the Authorization header), so
the key travels the whole path: environment -> backend -> request, and nowhere else.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from pipelines.cli.main import cli
from pipelines.errors import ConfigError
from pipelines.run import run_recipe

pytest.importorskip("openai")

PLANTED = "sk-planted-3f9a1c77e0b24d5e"
OTHER = "sk-default-env-8d2e0a41c9"


class Handler(BaseHTTPRequestHandler):
    seen_auth: list[str] = []

    def log_message(self, *args):  # keep the test output quiet
        pass

    def _send(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send({"object": "list", "data": [{"id": "served-model", "object": "model", "created": 0, "owned_by": "me"}]})

    def do_POST(self):
        Handler.seen_auth.append(self.headers.get("Authorization", ""))
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = "answer to " + req["messages"][-1]["content"]
        self._send({"id": "c", "object": "chat.completion", "created": 0, "model": req["model"], "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})


@pytest.fixture(scope="module")
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_port}/v1"
    srv.shutdown()


def _files_containing(root, needle: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_key_from_a_named_variable_is_used_and_never_written(server, tmp_path, monkeypatch, runner):
    monkeypatch.setenv("MY_KEY", PLANTED)
    monkeypatch.setenv("OPENAI_API_KEY", OTHER)
    data = tmp_path / "in.jsonl"
    data.write_text("\n".join(json.dumps({"instruction": f"question {i}"}) for i in range(3)) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        "description": "openai secrets test", "batch_size": 2, "source": {"type": "input"},
        "llm": {"backend": "openai", "model": "served-model", "engine": {"base_url": server, "api_key_env": "MY_KEY", "max_retries": 0}},
        "stages": [{"name": "answer", "stage": "respond", "sampling": {"max_tokens": 8}}],
    }))
    out = tmp_path / "out"
    Handler.seen_auth.clear()
    res = runner.invoke(cli, ["run", str(recipe), "--input", str(data), "--out", str(out), "--no-progress", "--workers", "0"])
    assert res.exit_code == 0, res.output
    assert Handler.seen_auth and set(Handler.seen_auth) == {f"Bearer {PLANTED}"}  # the named variable's key was sent
    assert json.loads((out / "stats.json").read_text())["rows"] == 3
    assert "api_key_env" in (out / "README.md").read_text()  # the variable's name is fine to show
    for key in (PLANTED, OTHER):
        assert _files_containing(tmp_path, key) == [], f"{key} written to disk"
        assert key not in res.output


@pytest.mark.parametrize("how", ["override", "recipe"])
def test_literal_key_in_a_recipe_is_refused_without_echoing_it(tmp_path, how):
    # bug: --set llm.engine.api_key=... (or api_key: in a recipe) went into run/config.yaml,
    # the manifest and the card, which --push-to-hub uploads
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps({"instruction": "q"}) + "\n")
    llm = {"backend": "openai", "model": "m", "engine": {"base_url": "http://127.0.0.1:9/v1"}}
    if how == "recipe":
        llm["engine"]["api_key"] = PLANTED
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"description": "t", "source": {"type": "input"}, "llm": llm, "stages": [{"name": "answer", "stage": "respond"}]}))
    overrides = (f"llm.engine.api_key={PLANTED}",) if how == "override" else ()
    with pytest.raises(ConfigError, match="llm.engine.api_key: a literal secret in a recipe is refused") as e:
        run_recipe(str(recipe), input_path=str(data), out_dir=tmp_path / "out", overrides=overrides, progress=False)
    assert PLANTED not in e.value.format_message() and "api_key_env" in e.value.hint
    assert not (tmp_path / "out").exists()
