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


# -- one local Ray cluster for the tests that need one (tests/*/test_*_ray.py) ------------
_RAY: dict = {"last": None, "started": False}


@pytest.fixture(scope="session")
def ray_cluster(request):
    """A local 2-CPU Ray cluster shared by every test that asks for it, started on first use
    and stopped right after the last such test: start-up costs ~7 s on the shared box, and
    its idle workers hold ~1 GB that the rest of the suite (vLLM tests) should have.

    Start-up is trimmed: no dashboard, worker logs not sent to the driver, a 200 MB object
    store (the tests move a few MB), no progress bars, no memory monitor.
    """
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[ray]'")
    users = [it.nodeid for it in request.session.items if "ray_cluster" in getattr(it, "fixturenames", ())]
    _RAY["last"] = users[-1] if users else None
    if not ray.is_initialized():
        # Ray's memory monitor kills its workers when the *node* passes 95 %; on a shared box
        # that is other jobs' memory, and a killed vLLM actor restarts (minutes). Leave OOM to the kernel.
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False, logging_level="ERROR",
                 object_store_memory=200 * 1024**2, _system_config={"memory_monitor_refresh_ms": 0})
        _RAY["started"] = True
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    yield ray
    _stop_ray()


def _stop_ray() -> None:
    if _RAY["started"]:
        import ray

        ray.shutdown()
        _RAY["started"] = False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    if _RAY["started"] and item.nodeid == _RAY["last"]:
        _stop_ray()
