"""Learn a BPE tokenizer from a NIfTI dataset's questions, for a language model trained from scratch.

    python -m bundle.train_tokenizer --dataset_dir DIR --out TOKENIZER_DIR [--vocab-size N]

The corpus is every conversation the bundle's prompts can build from ``DIR/dataset.json``: each
label in every label-question template, and every reasoning description (shared and per-volume
pools) with its explanation, in the training prompt format. The result is a byte-level BPE
(:func:`networks.tokenizer.train_bpe_tokenizer`), written atomically with ``save_pretrained``;
point ``tokenizer_path`` at it. The demo model uses one (docs/demo.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from bundle.data.nifti import label_names, read_dataset_json
from bundle.data.queries import REASONING_KINDS, PromptPool, parse_prompt_pools
from bundle.prompts import LABEL_QUESTIONS, reasoning_question
from common.cli import DefaultsHelpFormatter
from common.errors import DataError, run_command
from common.files import atomic_path
from networks.tokenizer import train_bpe_tokenizer


def _conversation(question: str, explanation: str | None = None) -> str:
    # the training prompt without the image and candidate tokens, which are added as whole tokens
    answer = f"It is and . {explanation.strip()}" if explanation else "It is and ."
    return f"[INST] \n{question.strip()} [/INST] {answer}"


def _pool_texts(pools: Mapping[str, PromptPool]) -> Iterator[str]:
    for pool in pools.values():
        for kind in REASONING_KINDS:
            explanations = getattr(pool, f"{kind}_explanation")
            for index, description in enumerate(getattr(pool, kind)):
                explanation = explanations[index] if explanations else None
                yield _conversation(reasoning_question(description), explanation)


def dataset_corpus(dataset_dir: str | Path) -> list[str]:
    """Every conversation text the prompts can build from ``dataset_dir/dataset.json``."""
    data = read_dataset_json(Path(dataset_dir))
    where = str(Path(dataset_dir) / "dataset.json")
    names = label_names(data).values()
    texts = [_conversation(template.format(class_name=name)) for name in names for template in LABEL_QUESTIONS]
    texts += _pool_texts(parse_prompt_pools(data.get("prompts") or {}, where))
    for split in ("training", "validation", "test"):
        for number, entry in enumerate(data.get(split) or []):
            if isinstance(entry, Mapping):
                texts += _pool_texts(parse_prompt_pools(entry.get("prompts") or {}, f"{where} {split}[{number}]"))
    if not texts:
        raise DataError(f"{where}: no labels or prompts to learn a tokenizer from")
    return texts


def train_tokenizer(dataset_dir: str | Path, out: str | Path, vocab_size: int) -> Path:
    """Learns the tokenizer of ``dataset_dir``'s conversations and writes it to ``out``."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out}: exists and is not empty; choose another --out")
    texts = dataset_corpus(dataset_dir)
    tokenizer = train_bpe_tokenizer(texts, vocab_size)
    with atomic_path(out, is_dir=True) as tmp:
        tokenizer.save_pretrained(tmp)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        prog="python -m bundle.train_tokenizer",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--dataset_dir", required=True, help="folder holding dataset.json")
    parser.add_argument("--out", required=True, help="tokenizer directory to create")
    parser.add_argument("--vocab-size", type=int, default=1024, help="vocabulary size, bytes and merges included")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)

    def learn() -> None:
        path = train_tokenizer(args.dataset_dir, args.out, args.vocab_size)
        print(f"wrote a {args.vocab_size}-token BPE tokenizer to {path}")

    return run_command(learn, args.debug)


if __name__ == "__main__":
    sys.exit(main())
