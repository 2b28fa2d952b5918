"""Trained MediSee checkpoints: safetensors weights + architecture json + tokenizer, in one directory.

A checkpoint holds the trainable set (``medisee_config#trainable``; for the paper's: LoRA, LM
embeddings and head, mask decoder, text projection, routers, box head) and, optionally, the
whole state dict (``include="all"``: every parameter and persistent buffer, e.g. SAM's random
positional-encoding matrix), for models trained from random initialisation, such as the demo model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from common.errors import WeightsError, brief, list_names
from common.files import atomic_path, usual_permissions

WEIGHTS_NAME = "medisee.safetensors"
CONFIG_NAME = "medisee.json"
FORMAT_VERSION = 1


def save_checkpoint(model, tokenizer, directory: str | os.PathLike, include: str | None = None) -> Path:
    """Writes ``directory`` atomically (a temporary directory renamed into place).

    Args:
        model: a :class:`networks.MediSee`.
        tokenizer: the tokenizer its embeddings were trained with.
        directory: the checkpoint directory to (re)write.
        include: ``trainable`` (the trained set) or ``all`` (every parameter and persistent
            buffer). None: ``all`` for a model trained from random initialisation
            (``trainable == "all"``, whose random buffers must travel too), else ``trainable``.
    """
    if include is None:
        include = "all" if model.config.trainable == "all" else "trainable"
    if include not in ("trainable", "all"):
        raise ValueError("include must be 'trainable' or 'all'")
    if include == "all":
        tensors = model.state_dict()
    else:
        tensors = {name: param for name, param in model.named_parameters() if param.requires_grad}
    state = {name: tensor.detach().to("cpu").contiguous() for name, tensor in tensors.items()}
    meta = {
        "format_version": FORMAT_VERSION,
        "include": include,
        "medisee_config": model.config.to_dict(),
        "candidate_token_ids": model.candidate_token_ids,
        "rejection_token_id": model.rejection_token_id,
        "image_token_id": model.image_token_id,
        "vocab_size": model.llava.get_input_embeddings().num_embeddings,
        "text_config": model.llava.config.text_config.to_dict(),
        "vision_config": model.llava.config.vision_config.to_dict(),
        "sam_config": vars(model.medsam.config),
    }
    with atomic_path(directory, is_dir=True) as tmp:
        save_file(state, tmp / WEIGHTS_NAME, metadata={"format": "pt", "medisee_include": include})
        usual_permissions(tmp / WEIGHTS_NAME)  # safetensors creates it readable by its owner only
        (tmp / CONFIG_NAME).write_text(json.dumps(meta, indent=2, default=str) + "\n")
        tokenizer.save_pretrained(tmp)
    return Path(directory)


def resolve_checkpoint(directory: str | os.PathLike) -> Path:
    """A checkpoint directory as given, or, for a folder of them (training's ``checkpoints/``),
    the last one by name (training names them ``iteration_<zero-padded N>``, so the newest)."""
    directory = Path(directory)
    if (directory / WEIGHTS_NAME).is_file() or not directory.is_dir():
        return directory
    inside = sorted(p for p in directory.iterdir() if (p / WEIGHTS_NAME).is_file() and (p / CONFIG_NAME).is_file())
    return inside[-1] if inside else directory


def read_checkpoint_meta(directory: str | os.PathLike) -> tuple[Path, dict]:
    """The checkpoint directory (:func:`resolve_checkpoint`) and its metadata (``medisee.json``), weights unread.

    Raises:
        WeightsError: the directory, its weights or its metadata are missing or unreadable, or
            its format is another one (names the directory and the ``checkpoint`` setting).
    """
    directory = resolve_checkpoint(directory)
    if not directory.exists():
        raise WeightsError(f"MediSee checkpoint not found: {directory} (config 'checkpoint')")
    weights, config = directory / WEIGHTS_NAME, directory / CONFIG_NAME
    for path in (weights, config):
        if not path.is_file():
            raise WeightsError(f"MediSee checkpoint {directory} has no {path.name} (config 'checkpoint')")
    try:
        meta = json.loads(config.read_text())
    except (json.JSONDecodeError, OSError) as exc:
        raise WeightsError(f"cannot read MediSee checkpoint {directory}: {brief(exc)}") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise WeightsError(
            f"MediSee checkpoint {directory} has format {meta.get('format_version')}, expected {FORMAT_VERSION}"
        )
    return directory, meta


def checkpoint_presence(meta: dict) -> str:
    """The ``presence`` mode a checkpoint was trained with (checkpoints from before it existed: ``none``)."""
    return (meta.get("medisee_config") or {}).get("presence", "none")


def _grown_rows(state: dict, params: dict, old_vocab: int, new_vocab: int) -> set[str]:
    """Names of the vocabulary-sized tensors (embeddings, LM head) of a checkpoint with ``old_vocab`` rows
    that the model holds with ``new_vocab`` rows, all else equal."""
    return {
        name
        for name, tensor in state.items()
        if name in params
        and tensor.ndim == params[name].ndim
        and tensor.shape[0] == old_vocab
        and params[name].shape[0] == new_vocab
        and tensor.shape[1:] == params[name].shape[1:]
    }


def load_checkpoint(model, directory: str | os.PathLike, grow_vocabulary: bool = False) -> dict:
    """Loads a checkpoint written by :func:`save_checkpoint` into a freshly built model.

    Every trainable parameter must be in the file; every tensor in the file must be in the
    model's state dict with the same shape; the token ids and the presence mode must agree.
    ``directory`` may also be a folder of checkpoints (:func:`resolve_checkpoint`).

    Args:
        model: a freshly built :class:`networks.MediSee`.
        directory: the checkpoint (or a folder of them).
        grow_vocabulary: for a warm start (training only): the model may add tokens after the
            checkpoint's vocabulary (e.g. the rejection token, to train presence on a model trained
            without it); the checkpoint's rows are copied and the new rows keep their initialisation.

    Returns:
        The checkpoint's metadata (``medisee.json``).

    Raises:
        WeightsError: naming the directory and the offending keys.
    """
    directory, meta = read_checkpoint_meta(directory)
    try:
        state = load_file(directory / WEIGHTS_NAME)
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"cannot read MediSee checkpoint {directory}: {brief(exc)}") from None
    for key in ("candidate_token_ids", "image_token_id"):
        ours = model.candidate_token_ids if key == "candidate_token_ids" else model.image_token_id
        if meta.get(key) != ours:
            raise WeightsError(f"MediSee checkpoint {directory}: {key} {meta.get(key)} differs from the model's {ours}")
    params = model.state_dict()  # tensors share storage with the model: copy_ writes through
    grown: set[str] = set()
    presence = checkpoint_presence(meta)
    if presence != model.config.presence:
        old_vocab, new_vocab = meta.get("vocab_size"), model.llava.get_input_embeddings().num_embeddings
        if not (grow_vocabulary and presence == "none" and isinstance(old_vocab, int) and old_vocab <= new_vocab):
            raise WeightsError(
                f"MediSee checkpoint {directory} was trained with medisee_config#presence {presence!r}, the model is "
                f"built with {model.config.presence!r}: set 'medisee_config#presence' to {presence!r}"
                + (" (or train presence from it with 'grow_vocabulary': true)" if presence == "none" else "")
            )
        grown = _grown_rows(state, params, old_vocab, new_vocab)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    missing, unexpected = trainable - set(state), set(state) - set(params)
    if missing or unexpected:
        parts = [f"missing: {list_names(missing)}"] if missing else []
        parts += [f"unexpected: {list_names(unexpected)}"] if unexpected else []
        trained = meta.get("medisee_config", {}).get("trainable")
        if trained is not None and trained != model.config.trainable:
            parts.append(f"it was trained with trainable {trained!r}: set config 'trainable' to {trained!r}")
        raise WeightsError(f"MediSee checkpoint {directory} does not match the model ({'; '.join(parts)})")
    wrong = [
        f"{n} {tuple(t.shape)} vs {tuple(params[n].shape)}"
        for n, t in state.items()
        if t.shape != params[n].shape and n not in grown
    ]
    if wrong:
        raise WeightsError(f"MediSee checkpoint {directory} has mismatched shapes: {list_names(wrong)}")
    with torch.no_grad():
        for name, tensor in state.items():
            target = params[name][: tensor.shape[0]] if name in grown else params[name]
            target.copy_(tensor)
    return meta
