"""Train the offline default text model's tokenizer: a byte-level BPE over the Python standard library.

Run once; the generated files are committed and the server never retrains at start-up:

    python scripts/train_tokenizer.py [--output DIR]

Byte-level pre-tokenization and decoding mean any unicode text survives encode -> decode unchanged.
"""

from __future__ import annotations

import argparse
import json
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

VOCAB_SIZE = 8192
MODEL_MAX_LENGTH = 1024
ENDOFTEXT = "<|endoftext|>"
SPECIAL_TOKENS = [ENDOFTEXT, "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "src/llmapi/backends/local/assets/gpt2-124m-random"
_THIRD_PARTY_DIRS = {"site-packages", "dist-packages"}


def stdlib_sources() -> list[Path]:
    """The standard library's .py files in a fixed order, third-party packages left out."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = (p for p in root.rglob("*.py") if not _THIRD_PARTY_DIRS.intersection(p.relative_to(root).parts))
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def read_texts(paths: list[Path]) -> Iterator[str]:
    for path in paths:
        try:
            yield path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # a handful of test fixtures are deliberately not UTF-8


def train(paths: list[Path]) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(read_texts(paths), trainer=trainer, length=len(paths))
    return tokenizer


def write_hf_directory(tokenizer: Tokenizer, output: Path) -> None:
    """Write the files `PreTrainedTokenizerFast.from_pretrained` reads."""
    output.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(output / "tokenizer.json"), pretty=False)
    added_tokens = {
        str(tokenizer.token_to_id(token)): {
            "content": token,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for token in SPECIAL_TOKENS
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": ENDOFTEXT,
        "eos_token": ENDOFTEXT,
        "pad_token": ENDOFTEXT,
        "unk_token": None,
        "additional_special_tokens": SPECIAL_TOKENS[1:],
        "added_tokens_decoder": added_tokens,
        "model_max_length": MODEL_MAX_LENGTH,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }
    special_tokens_map = {
        "bos_token": ENDOFTEXT,
        "eos_token": ENDOFTEXT,
        "pad_token": ENDOFTEXT,
        "additional_special_tokens": SPECIAL_TOKENS[1:],
    }
    _write_json(output / "tokenizer_config.json", config)
    _write_json(output / "special_tokens_map.json", special_tokens_map)


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    paths = stdlib_sources()
    tokenizer = train(paths)
    write_hf_directory(tokenizer, args.output)
    print(f"trained on {len(paths)} files; vocab {tokenizer.get_vocab_size()}; wrote {args.output}")


if __name__ == "__main__":
    main()
