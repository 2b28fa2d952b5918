"""The tokenizer: the LLaVA-Med one (or a trained checkpoint's), plus the image and candidate tokens."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from common.errors import ConfigError, WeightsError, brief
from networks.checkpoint import resolve_checkpoint
from networks.config import MediSeeConfig

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


SPECIAL_TOKENS = (UNK, BOS, EOS)  # ids 0, 1, 2, as in the Mistral tokenizer


def _byte_level_bpe(backend: Tokenizer) -> PreTrainedTokenizerFast:
    """Wraps a byte-level BPE model: byte pre-tokenizer and decoder, BOS first (as Mistral)."""
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    bos_id = SPECIAL_TOKENS.index(BOS)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, bos_id)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=BOS, eos_token=EOS, unk_token=UNK)


def byte_level_tokenizer() -> PreTrainedTokenizerFast:
    """A lossless byte-level tokenizer for randomly initialised language models.

    Used only when no ``llava_path``, ``tokenizer_path`` or trained checkpoint is configured,
    e.g. the tiny preset: every byte is a token and there are no merges, so any text round-trips.
    """
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS)}
    for char in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[char] = len(vocab)
    return _byte_level_bpe(Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK)))


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Learns a byte-level BPE tokenizer (the kind Mistral's is) from ``texts``.

    For a language model trained from random initialisation on a known domain (the demo): merges
    make its sequences several times shorter than :func:`byte_level_tokenizer`'s, and every byte
    stays in the vocabulary, so any text still round-trips.

    Args:
        texts: the training corpus (questions, answers, explanations).
        vocab_size: vocabulary size including the 256 bytes and the special tokens.
    """
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + len(SPECIAL_TOKENS):
        smallest = len(alphabet) + len(SPECIAL_TOKENS)
        raise ConfigError(f"the tokenizer's vocab_size must be at least {smallest}, got {vocab_size}")
    backend = Tokenizer(models.BPE(unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), initial_alphabet=alphabet, show_progress=False
    )
    backend.train_from_iterator(texts, trainer=trainer)
    return _byte_level_bpe(backend)


def load_tokenizer(path: str | os.PathLike, what: str = "tokenizer") -> PreTrainedTokenizerBase:
    """Loads a local tokenizer directory (never from a hub), naming the path on failure."""
    path = Path(path)
    if not path.is_dir():
        raise WeightsError(f"{what} directory not found: {path}")
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    except Exception as exc:
        raise WeightsError(f"cannot load the {what} in {path}: {brief(exc)}") from None


def build_tokenizer(
    medisee_config: dict | MediSeeConfig | None = None,
    llava_path: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    tokenizer_path: str | os.PathLike | None = None,
) -> PreTrainedTokenizerBase:
    """Returns the tokenizer MediSee uses, with ``<image>``, the candidate and rejection tokens present.

    Source, first that applies: the trained ``checkpoint`` directory (it stores the tokenizer
    its embeddings were trained with), ``tokenizer_path`` (a tokenizer directory, e.g. from
    ``python -m bundle.train_tokenizer``), ``llava_path``, else :func:`byte_level_tokenizer`.
    Missing special tokens are appended (existing ids never move); a pad token is set
    (``<unk>``, as LLaVA-Med) if the tokenizer has none.

    Args:
        medisee_config: the ``medisee_config`` dictionary (candidate and image token names).
        llava_path: an HF-format LLaVA directory.
        checkpoint: a trained MediSee checkpoint directory.
        tokenizer_path: a tokenizer directory for a language model trained from scratch.
    """
    config = medisee_config if isinstance(medisee_config, MediSeeConfig) else MediSeeConfig.from_dict(medisee_config)
    checkpoint = resolve_checkpoint(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and (checkpoint / "tokenizer_config.json").is_file():
        tokenizer = load_tokenizer(checkpoint, "checkpoint tokenizer")
    elif tokenizer_path is not None:
        tokenizer = load_tokenizer(tokenizer_path, "tokenizer_path")
    elif llava_path is not None:
        tokenizer = load_tokenizer(llava_path, "LLaVA tokenizer")
    else:
        tokenizer = byte_level_tokenizer()
    vocab = tokenizer.get_vocab()
    missing = [t for t in config.added_tokens if t not in vocab]
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token
    return tokenizer


def token_id(tokenizer: PreTrainedTokenizerBase, token: str) -> int:
    """The id of a single token that must exist in the vocabulary."""
    vocab = tokenizer.get_vocab()
    if token not in vocab:
        raise WeightsError(f"token {token!r} is not in the tokenizer vocabulary")
    return vocab[token]
