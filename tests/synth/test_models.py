"""synth.backends.models: the strict GGUF -> HF weight copy and the converted folder's checksums."""
from __future__ import annotations

import json
import shutil

import pytest

from pipelines.errors import ConfigError
from synth.backends import models


def _tiny_llama(tied: bool = True):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=tied)
    return LlamaForCausalLM(cfg)


# Bug (issue 10, item 9): the conversion loaded the GGUF weights with strict=False, so a key
# renamed by a future transformers would have left a random tensor in the default model and
# no error. Every key must now be accounted for (only the tied head may be absent).
def test_a_renamed_key_is_an_error_naming_it():
    src = _tiny_llama().state_dict()
    src["model.layers.0.self_attn.q_proj.weight_renamed"] = src.pop("model.layers.0.self_attn.q_proj.weight")
    with pytest.raises(ConfigError, match=r"missing \['model.layers.0.self_attn.q_proj.weight'\], unexpected \['model.layers.0.self_attn.q_proj.weight_renamed'\]"):
        models.copy_weights_strict(_tiny_llama(), src)


def test_tied_head_may_be_absent_and_is_tied():
    import torch

    donor = _tiny_llama()
    src = {k: v for k, v in donor.state_dict().items() if k != "lm_head.weight"}
    model = _tiny_llama()
    models.copy_weights_strict(model, src)
    assert torch.equal(model.lm_head.weight, donor.model.embed_tokens.weight)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    untied = _tiny_llama(tied=False)
    with pytest.raises(ConfigError, match=r"missing \['lm_head.weight'\]"):
        models.copy_weights_strict(untied, {k: v for k, v in untied.state_dict().items() if k != "lm_head.weight"})


def _stamped(folder):
    folder.mkdir()
    (folder / "config.json").write_text('{"a": 1}')
    (folder / "model.safetensors").write_bytes(b"\0" * 1000)
    stamp = {"format": models.STAMP_FORMAT, "gguf_sha256": models.GGUF_SHA256, "files": models.folder_checksums(folder)}
    (folder / "aligncraft.json").write_text(json.dumps(stamp))
    return folder


def test_verify_folder_finds_a_flipped_byte_a_torn_file_and_an_old_stamp(tmp_path):
    good = _stamped(tmp_path / "good")
    assert models.verify_folder(good) is None
    flipped = _stamped(tmp_path / "flipped")
    with open(flipped / "model.safetensors", "r+b") as f:
        f.seek(500)
        f.write(b"\1")
    assert models.verify_folder(flipped) == "model.safetensors does not match its sha256"
    torn = _stamped(tmp_path / "torn")
    (torn / "model.safetensors").write_bytes(b"\0" * 10)
    assert models.verify_folder(torn) == "model.safetensors has 10 bytes, the stamp says 1000"
    old = _stamped(tmp_path / "old")
    (old / "aligncraft.json").write_text(json.dumps({"gguf_sha256": models.GGUF_SHA256, "files": ["config.json"]}))
    assert models.verify_folder(old) == "stamp from another version or GGUF"
    assert models.verify_folder(tmp_path / "absent") == "no stamp"


@pytest.mark.model
@pytest.mark.slow
def test_a_corrupt_cache_is_converted_again(tmp_path, monkeypatch, smollm_dir):
    import torch
    from safetensors.torch import load_file

    monkeypatch.setenv("ALIGNCRAFT_CACHE", str(tmp_path))
    copy = models.default_model_dir()
    shutil.copytree(smollm_dir, copy)
    assert models.prepare_default_model() == copy  # a good copy is used as it is
    with open(copy / "model.safetensors", "r+b") as f:  # one flipped byte in the weights
        f.seek(-4096, 2)
        byte = f.read(1)
        f.seek(-4096, 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert models.verify_folder(copy) == "model.safetensors does not match its sha256"
    assert models.prepare_default_model() == copy
    assert models.verify_folder(copy) is None
    fresh, ref = load_file(copy / "model.safetensors"), load_file(smollm_dir / "model.safetensors")
    assert fresh.keys() == ref.keys() and all(torch.equal(fresh[k], ref[k]) for k in ref)
