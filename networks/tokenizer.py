"""The tokenizer: the LLaVA-Med one (or a trained checkpoint's), plus the image and candidate tokens."""

from __future__ import annotations

import os
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from networks.checkpoint import resolve_checkpoint
from networks.config import MediSeeConfig
from networks.errors import WeightsError, brief

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


def byte_level_tokenizer() -> PreTrainedTokenizerFast:
    """A lossless byte-level tokenizer for randomly initialised language models.

    Used only when no ``llava_path`` (and no trained checkpoint) is configured, e.g. the tiny
    preset: every byte is a token and there are no merges, so any text round-trips.
    """
    vocab = {UNK: 0, BOS: 1, EOS: 2}
    for char in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[char] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    # BOS first, as the Mistral tokenizer does
    backend.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, 1)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=BOS, eos_token=EOS, unk_token=UNK)


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
) -> PreTrainedTokenizerBase:
    """Returns the tokenizer MediSee uses, with ``<image>`` and the candidate tokens present.

    Source, first that applies: the trained ``checkpoint`` directory (it stores the tokenizer
    its embeddings were trained with), ``llava_path``, else :func:`byte_level_tokenizer`.
    Missing special tokens are appended (existing ids never move); a pad token is set
    (``<unk>``, as LLaVA-Med) if the tokenizer has none.

    Args:
        medisee_config: the ``medisee_config`` dictionary (candidate and image token names).
        llava_path: an HF-format LLaVA directory.
        checkpoint: a trained MediSee checkpoint directory.
    """
    config = medisee_config if isinstance(medisee_config, MediSeeConfig) else MediSeeConfig.from_dict(medisee_config)
    checkpoint = resolve_checkpoint(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and (checkpoint / "tokenizer_config.json").is_file():
        tokenizer = load_tokenizer(checkpoint, "checkpoint tokenizer")
    elif llava_path is not None:
        tokenizer = load_tokenizer(llava_path, "LLaVA tokenizer")
    else:
        tokenizer = byte_level_tokenizer()
    vocab = tokenizer.get_vocab()
    missing = [t for t in [config.image_token, *config.candidate_tokens] if t not in vocab]
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
