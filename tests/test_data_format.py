"""Formatting: chat templates of the Llama-3, Qwen2.5 and Gemma formats on a tiny tokenizer; masks and EOS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.data import DataOptions, prepare
from engine.data.format import IGNORE
from engine.tiny import DEMO_CHAT_TEMPLATE, train_tokenizer

QWEN25 = (
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if message.role == 'user' or (message.role == 'system' and not loop.first)"
    " or message.role == 'assistant' %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>'"
    " + '\\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)
CORPUS = [f"Ticket {i}: my order {i} is late. Category: shipping. Reply: We are checking it now." for i in range(200)]


def make_tokenizer(kind: str) -> Any:
    """A tiny BPE tokenizer dressed as a Llama-3, Qwen2.5 or Gemma tokenizer (template and special tokens)."""
    tok = train_tokenizer(CORPUS, vocab_size=400, chat_template=None)
    if kind == "llama3":
        tok.chat_template = DEMO_CHAT_TEMPLATE
    elif kind == "qwen25":
        tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
        tok.eos_token = "<|im_end|>"
        tok.bos_token = None
        tok.chat_template = QWEN25
    elif kind == "gemma":
        tok.add_special_tokens({"additional_special_tokens": ["<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"]})
        tok.bos_token, tok.eos_token = "<bos>", "<eos>"
        tok.chat_template = GEMMA
    return tok


TOKENIZERS = {kind: make_tokenizer(kind) for kind in ("llama3", "qwen25", "gemma", "plain")}
#: What the trained tokens must decode to, per template: the reply, the end of turn, and EOS.
TRAINED_TAIL = {"llama3": "<|eot_id|>", "qwen25": "<|im_end|>", "gemma": "<end_of_turn><eos>", "plain": "<|eot_id|>"}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def trained_runs(labels: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for i, lab in enumerate(labels):
        if lab != IGNORE:
            if i == 0 or labels[i - 1] == IGNORE:
                runs.append([])
            runs[-1].append(lab)
    return runs


@pytest.mark.parametrize("kind", ["llama3", "qwen25", "gemma", "plain"])
def test_only_the_response_and_its_eos_are_trained(kind: str, tmp_path: Path) -> None:
    tok = TOKENIZERS[kind]
    src = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "Where is order 7?", "completion": "Category: shipping"}])
    prepared = prepare(DataOptions(path=str(src), val_fraction=0, test_fraction=0), tok, cache_dir=tmp_path)
    (ex,) = prepared.train
    runs = trained_runs(ex.labels)
    assert len(runs) == 1
    assert tok.decode(runs[0], skip_special_tokens=False) == "Category: shipping" + TRAINED_TAIL[kind]
    assert runs[0][-1] == tok.eos_token_id and ex.input_ids[-1] == tok.eos_token_id
    n_prompt = len(ex.labels) - len(runs[0])
    assert tok.decode(ex.input_ids[:n_prompt], skip_special_tokens=False) == ex.prompt
    assert ex.labels[:n_prompt] == [IGNORE] * n_prompt
    assert ex.labels[n_prompt:] == ex.input_ids[n_prompt:]
    if kind in ("llama3", "gemma"):
        assert ex.input_ids[0] == tok.bos_token_id
    if kind == "plain":
        assert "### Response:\n" in ex.prompt
    elif kind == "qwen25":
        assert ex.prompt.endswith("<|im_start|>assistant\n") and "You are Qwen" in ex.prompt


@pytest.mark.parametrize("kind", ["llama3", "qwen25", "gemma"])
def test_every_assistant_turn_of_a_chat_is_trained(kind: str, tmp_path: Path) -> None:
    tok = TOKENIZERS[kind]
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Reply: one"},
                {"role": "user", "content": "again"}, {"role": "assistant", "content": "Reply: two"}]
    src = write_jsonl(tmp_path / "c.jsonl", [{"messages": messages}])
    (ex,) = prepare(DataOptions(path=str(src), val_fraction=0, test_fraction=0), tok, cache_dir=tmp_path).train
    decoded = [tok.decode(run, skip_special_tokens=False) for run in trained_runs(ex.labels)]
    end = TRAINED_TAIL[kind].replace("<eos>", "")
    assert decoded[0] == "Reply: one" + end
    assert decoded[-1].startswith("Reply: two" + end)
    assert ex.labels[-1] == tok.eos_token_id


def test_gemma_system_prompt_is_folded_into_the_first_turn(tmp_path: Path) -> None:
    tok = TOKENIZERS["gemma"]
    src = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "Classify", "input": "late order", "output": "shipping"}])
    opts = DataOptions(path=str(src), system_prompt="You triage tickets.", val_fraction=0, test_fraction=0)
    (ex,) = prepare(opts, tok, cache_dir=tmp_path).train
    assert "<start_of_turn>user\nYou triage tickets.\n\nClassify\n\nlate order<end_of_turn>" in ex.prompt


def test_train_on_prompt_trains_every_token(tmp_path: Path) -> None:
    tok = TOKENIZERS["llama3"]
    src = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "p", "completion": "c"}])
    opts = DataOptions(path=str(src), train_on_prompt=True, val_fraction=0, test_fraction=0)
    (ex,) = prepare(opts, tok, cache_dir=tmp_path).train
    assert ex.labels == ex.input_ids


def test_text_rows_get_bos_and_eos(tmp_path: Path) -> None:
    tok = TOKENIZERS["llama3"]
    src = write_jsonl(tmp_path / "t.jsonl", [{"text": "Ticket 3: my order is late."}])
    (ex,) = prepare(DataOptions(path=str(src), val_fraction=0, test_fraction=0), tok, cache_dir=tmp_path).train
    assert ex.input_ids[0] == tok.bos_token_id and ex.input_ids[-1] == tok.eos_token_id
    assert ex.labels[0] == IGNORE and ex.labels[1:] == ex.input_ids[1:]


def test_overlength_policies(tmp_path: Path) -> None:
    from engine.data import DataError

    tok = TOKENIZERS["llama3"]
    rows = [{"prompt": "short", "completion": "ok"}, {"prompt": "long " * 40, "completion": "ok " * 40}]
    src = write_jsonl(tmp_path / "d.jsonl", rows)
    base: dict[str, Any] = {"path": str(src), "max_length": 40, "val_fraction": 0, "test_fraction": 0}
    dropped = prepare(DataOptions(**base, overlength="drop"), tok, cache_dir=tmp_path)
    assert len(dropped.train) == 1 and dropped.report["over_max_length"] == 1
    # Truncating the long row leaves only prompt tokens, so nothing trainable: it is dropped and said so.
    truncated = prepare(DataOptions(**base, overlength="truncate"), tok, cache_dir=tmp_path)
    assert len(truncated.train) == 1 and "nothing trainable" in truncated.report["overlength_action"]
    with pytest.raises(DataError, match=r"line 2 .* over max_length 40"):
        prepare(DataOptions(**base, overlength="error"), tok, cache_dir=tmp_path)
