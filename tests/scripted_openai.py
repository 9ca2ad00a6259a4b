"""A scripted strong model and judge behind a real OpenAI-compatible HTTP server.

CodecLM's roles can live on different backends (a hosted strong model, a local target). No
hosted model is reachable from the tests, so this server plays the strong model and the
judge: it recognises each CodecLM prompt (:mod:`synth.codeclm.prompts`) and answers in the
format the stage's parser reads (:mod:`synth.codeclm.parse`), deterministically.

The judge is informative, not random: each basic instruction has a *difficulty* (a stable
hash of its text, mod 3). Difficulty 0: the judge separates the two answers at once (round 1);
1: only once the instruction has been rewritten (round 2); 2: never (rejected
``no_gap_after_depth``). Separating means 9 for the answer that starts with :data:`STRONG`
(the strong model's) and 2 for the other; otherwise both get 5.

Everything the server receives is recorded (prompt kind, model name, reply), so a test can
check which role sent what where.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from synth.codeclm.prompts import JUDGE_SYSTEM

if TYPE_CHECKING:
    from typing_extensions import Self

STRONG = "STRONG ANSWER to: "
USE_CASES = ("meal planning", "analogy reasoning", "biography writing", "travel planning", "code review", "poetry")
SKILLS = ("nutrition", "logic", "summarization", "geography", "python", "rhyme", "budgeting", "empathy")
KINDS = ("encode", "decode", "rubrics", "improve", "sanity", "judge", "answer")

_REVISION = re.compile(r"^(?P<basic>.*?) \[revision (?P<k>\d+): [^\]]*\]$", re.DOTALL)
_METADATA = re.compile(r"Use case of the instructions: (?P<uc>[^\n]*)\nSkills required to respond to the instructions: (?P<sk>[^\n]*)")
_QUESTION = re.compile(r"\[Question\]\n(?P<q>.*?)\n\n\[The Start of Assistant 1's Answer\]\n(?P<a1>.*?)\n\[The End of Assistant 1's Answer\]\n\n\[The Start of Assistant 2's Answer\]\n(?P<a2>.*?)\n\[The End of Assistant 2's Answer\]", re.DOTALL)


def stable_hash(text: str) -> int:
    """A hash that is the same in every process (``hash()`` is salted per process)."""
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)


def split_revision(instruction: str) -> tuple[str, int]:
    """(basic instruction, how many times it was rewritten).

    >>> split_revision("Plan a trip [revision 2: add a budget]")
    ('Plan a trip', 2)
    >>> split_revision("Plan a trip")
    ('Plan a trip', 0)
    """
    m = _REVISION.match(instruction)
    return (m.group("basic"), int(m.group("k"))) if m else (instruction, 0)


def difficulty(basic: str) -> int:
    """0: the judge separates the answers at once; 1: after one rewrite; 2: never.

    The salt is picked so that the 8 slots of the roles test (6 seeds) fall in all three
    classes (2, 3, 3); any other set of instructions spreads over them at random."""
    return stable_hash(f"d:{basic}") % 3


def separates(question: str) -> bool:
    """Whether the judge sees a gap between the strong and the target answer to ``question``."""
    basic, revisions = split_revision(question)
    d = difficulty(basic)
    return d == 0 or (d == 1 and revisions >= 1)


def kind(messages: Sequence[dict[str, str]]) -> str:
    """Which CodecLM prompt this chat is (one of :data:`KINDS`; ``answer``: a plain instruction)."""
    if messages and messages[0]["role"] == "system" and messages[0]["content"] == JUDGE_SYSTEM:
        return "judge"
    text = messages[-1]["content"]
    for k, marker in (("encode", "act as an instruction analyzer"), ("decode", "act as an instruction writer"), ("rubrics", "act as an instruction judge with domain expertise"),
                      ("improve", "act as an instruction improver"), ("sanity", "Could a realistic user instruction")):
        if marker in text:
            return k
    return "answer"


def _metadata(text: str) -> tuple[str, list[str]]:
    m = _METADATA.search(text)
    if m is None:
        msg = f"no metadata lines in {text[:80]!r}"
        raise ValueError(msg)
    return m.group("uc"), [s.strip() for s in m.group("sk").split(",")]


def basic_instruction(use_case: str, skills: Sequence[str], k: int) -> str:
    return f"Write one {use_case} request that needs {' and '.join(skills)} (variant {k})"


def reply(messages: Sequence[dict[str, str]]) -> str:
    """The scripted reply to one chat: a pure function of its text."""
    k = kind(messages)
    text = messages[-1]["content"]
    if k == "encode":
        seed = text.rsplit("\nInstruction: ", 1)[-1]
        h = stable_hash(seed)
        first = SKILLS[h % len(SKILLS)]
        second = SKILLS[(h // 7 + 1 + h % len(SKILLS)) % len(SKILLS)]
        skills = [first] if second == first else [first, second]
        return f"Use case: {USE_CASES[h % len(USE_CASES)]}\nSkills: {', '.join(skills)}"
    if k == "decode":
        m = re.search(r"write (\d+) diverse instructions", text)
        n = int(m.group(1)) if m else 1
        uc, skills = _metadata(text)
        return "\n".join(f"{i}. {basic_instruction(uc, skills, i)}" for i in range(1, n + 1))
    if k == "rubrics":
        n = int(re.search(r"write (\d+) rubrics", text).group(1))  # type: ignore[union-attr]
        _, skills = _metadata(text)
        rubrics = [f"how much {skills[i % len(skills)]} it needs (rubric {i + 1})" for i in range(n)]
        actions = [f"require more {skills[i % len(skills)]} (action {i + 1})" for i in range(n)]
        return "Rubrics:\n" + "\n".join(f"{i + 1}. {r}" for i, r in enumerate(rubrics)) + "\nActions:\n" + "\n".join(f"{i + 1}. {a}" for i, a in enumerate(actions))
    if k == "improve":
        action = re.search(r"Improving action: ([^\n]*)", text).group(1)  # type: ignore[union-attr]
        basic, revisions = split_revision(text.rsplit("Input instruction: ", 1)[-1])
        return f"Improved instruction: {basic} [revision {revisions + 1}: {action}]"
    if k == "sanity":
        return "yes"
    if k == "judge":
        m = _QUESTION.search(text)
        if m is None:
            return "no scores"  # unreadable: the stage rejects the row as parse_error:judge
        if not separates(m.group("q")):
            return "5 5"
        return "9 2" if m.group("a1").startswith(STRONG) else "2 9"
    return STRONG + text


class ScriptedServer:
    """The server, in a daemon thread of this process, on a free port of 127.0.0.1.

    ``requests`` lists every chat request as ``{"kind", "model", "reply"}``. Use as a context
    manager; ``url`` is the ``base_url`` for the openai backend.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def _send(self, obj: dict[str, Any], status: int = 200) -> None:
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._send({"object": "list", "data": [{"id": "strong-model", "object": "model", "created": 0, "owned_by": "test"}]})

            def do_POST(self) -> None:
                req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if not self.path.endswith("/chat/completions"):
                    self._send({"error": {"message": "only chat completions are scripted", "type": "invalid_request_error"}}, status=400)
                    return
                text = reply(req["messages"])
                with server._lock:
                    server.requests.append({"kind": kind(req["messages"]), "model": req.get("model"), "reply": text})
                    n = len(server.requests)
                usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
                self._send({"id": f"s{n}", "object": "chat.completion", "created": 0, "model": req.get("model"), "usage": usage,
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="scripted-openai", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def by_kind(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        with self._lock:
            for r in self.requests:
                out.setdefault(r["kind"], []).append(r)
        return out
