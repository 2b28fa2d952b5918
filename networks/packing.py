"""Sequence packing: a padded batch runs through the language model as one row of real tokens.

Conversations in a training batch differ in length, and a padded batch spends the linear layers'
FLOPs (most of the model) on padding as well. Packed, the real tokens of every row are laid end to
end in one row whose position ids restart at 0 for each conversation. With no attention mask,
transformers reads the restarts from the position ids and keeps the conversations apart:
``flash_attention_2``/``_3`` as variable-length kernels, ``flex_attention`` with a block-sparse
mask that skips the blocks between conversations, ``sdpa``/``eager`` with a dense block-diagonal
mask (exact too, but their attention then costs as much as one sequence of the packed length).
The states are put back into the padded layout afterwards, so everything downstream (LM loss,
candidate states, similarity loss) reads the same positions whether packing is on or not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

logger = logging.getLogger(__name__)

# kernels that attend within each packed conversation only; the others build a dense (T, T) mask
SPARSE_PACKED_ATTENTION = ("flash_attention_2", "flash_attention_3", "flex_attention")


@dataclass
class PackedRows:
    """One packed row and how to undo it.

    Attributes:
        inputs_embeds: (1, T, H) the real tokens of all rows, row after row (T = real tokens in all).
        position_ids: (1, T) each token's position within its own conversation.
        real: (B, L) True on the padded batch's real tokens: where the packed states go back.
    """

    inputs_embeds: torch.Tensor
    position_ids: torch.Tensor
    real: torch.Tensor


def pack_rows(inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> PackedRows:
    """Packs a padded batch (any padding side) into one row of its real tokens.

    Args:
        inputs_embeds: (B, L, H) input embeddings.
        attention_mask: (B, L), 1 on real tokens.

    Returns:
        The packed row; positions count real tokens only, as the padded forward counts them.
    """
    real = attention_mask.bool()
    positions = attention_mask.long().cumsum(dim=1) - 1
    return PackedRows(
        inputs_embeds=inputs_embeds[real].unsqueeze(0), position_ids=positions[real].unsqueeze(0), real=real
    )


def unpack_rows(hidden_states: torch.Tensor, packed: PackedRows) -> torch.Tensor:
    """(1, T, H) states of a packed row -> (B, L, H) in the padded layout, zeros on padding."""
    batch, length = packed.real.shape
    out = hidden_states.new_zeros(batch, length, hidden_states.shape[-1])
    return out.masked_scatter(packed.real.unsqueeze(-1), hidden_states[0])


def set_sequence_packing(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """Switches sequence packing of a MediSee's language model on or off.

    Outputs do not change (up to kernel rounding); only the work spent on padding goes. Under
    ``torch.compile`` every new packed length is a new shape, as every new padded length is.

    Args:
        model: a MediSee.
        enabled: on or off.

    Returns:
        ``model``, changed in place.
    """
    model.pack_sequences = bool(enabled)
    attention = model.llava.config.text_config._attn_implementation
    if enabled and attention not in SPARSE_PACKED_ATTENTION:
        logger.info(
            "sequence packing with attn_implementation %r attends through a dense block-diagonal mask; "
            "%s attend within each conversation only",
            attention,
            " / ".join(SPARSE_PACKED_ATTENTION),
        )
    return model
