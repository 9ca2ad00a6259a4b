"""Shared fixtures: where the third-party data lives, a CliRunner, tiny models."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# one pool of engine workers for the whole session: recipe tests reuse warm engines (at most 3)
os.environ.setdefault("ALIGNCRAFT_KEEP_ENGINES", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ALIGNCRAFT_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only third-party data (../shared/data); never copied into the repo."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA} (set ALIGNCRAFT_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture()
def runner():
    from click.testing import CliRunner

    return CliRunner()


# -- tiny random models and the embedded SmolLM2 (built once per session) ----------------
@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random 2-layer Llama causal LM with a ChatML BPE tokenizer (see tests/tiny_model.py)."""
    from tests.tiny_model import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="session")
def tiny_reward_model_dir(tmp_path_factory) -> Path:
    """A random Llama sequence classifier (num_labels=1) with the same tokenizer."""
    from tests.tiny_model import build_tiny_reward_model

    return build_tiny_reward_model(tmp_path_factory.mktemp("tiny_reward"))


@pytest.fixture(scope="session")
def smollm_dir() -> Path:
    """The embedded SmolLM2-135M-Instruct, converted once into the user cache."""
    from synth.backends.models import prepare_default_model

    return prepare_default_model()
