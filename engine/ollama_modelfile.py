"""An Ollama `Modelfile` for an exported GGUF: FROM, the chat template as a Go template, and stop tokens.

Ollama templates are Go templates, not Jinja. The two families the supported models use (Llama-3 headers,
ChatML) are translated; any other template is kept as a comment, and Ollama falls back to the GGUF's own
`tokenizer.chat_template` metadata.
"""

from __future__ import annotations

from typing import Any

LLAMA3_TEMPLATE = ("{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n"
                   "{{ .Content }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n")
CHATML_TEMPLATE = ("{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
                   "{{ end }}<|im_start|>assistant\n")
#: End-of-turn and end-of-text tokens a chat model may emit: each present in the vocabulary becomes a stop.
END_TOKENS = ("<|eot_id|>", "<|end_of_text|>", "<|im_end|>", "<|endoftext|>", "<|end|>")


def go_template(chat_template: str | None, bos_token: str | None, add_bos: bool) -> str | None:
    """The Jinja chat template as an Ollama Go template, or None when its family is not known."""
    if not chat_template:
        return None
    if "<|start_header_id|>" in chat_template and "<|eot_id|>" in chat_template:
        template = LLAMA3_TEMPLATE
    elif "<|im_start|>" in chat_template and "<|im_end|>" in chat_template:
        template = CHATML_TEMPLATE
    else:
        return None
    # a template that writes bos_token itself needs it literally when llama.cpp does not add one
    if "bos_token" in chat_template and bos_token and not add_bos:
        template = bos_token + template
    return template


def stop_tokens(vocab: Any, eos_token: str | None) -> list[str]:
    """The EOS token and any end-of-turn tokens the vocabulary holds, each once."""
    stops = [eos_token] if eos_token else []
    return stops + [t for t in END_TOKENS if t in vocab and t not in stops]


def modelfile_text(gguf_name: str, facts: dict[str, Any]) -> str:
    """The Modelfile for `gguf_name` (a file beside it), from `gguf_convert.write_gguf`'s facts."""
    lines = [f"FROM ./{gguf_name}", ""]
    template = go_template(facts.get("chat_template"), facts.get("bos_token"), bool(facts.get("add_bos")))
    if template is not None:
        lines += [f'TEMPLATE """{template}"""', ""]
    elif facts.get("chat_template"):
        lines += ["# The chat template below (Jinja, as the GGUF's tokenizer.chat_template holds it) has no Go",
                  "# translation here; Ollama reads the GGUF's own template. For reference:"]
        lines += [f"#   {line}" for line in str(facts["chat_template"]).splitlines()]
        lines.append("")
    lines += [f'PARAMETER stop "{stop}"' for stop in stop_tokens(facts.get("vocab") or (), facts.get("eos_token"))]
    return "\n".join(lines) + "\n"
