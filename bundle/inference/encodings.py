"""The frozen image encodings of one volume's slices, kept for every later question about it.

At inference nothing in MediSee's image encoders changes: a slice's CLIP features (after LLaVA's
projector, what fills the image tokens) and its SAM image embedding are the same for every
question. A conversation about one volume (:class:`bundle.inference.dialogue.Dialogue`) computes
them on its first question and looks them up afterwards, so a follow-up costs only the language
model and the mask decoder. The encodings are computed batch by batch exactly as the model computes
them itself, so cached and fresh runs give the same masks.

At full size one slice holds 576x4096 CLIP values and 256x64x64 SAM values (about 6.5 MiB in
bf16); they are kept where they were computed (the model's device).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from bundle.data.batch import MediSeeBatch


class SliceEncodings:
    """Slice index -> (CLIP features, SAM embedding) of one volume."""

    def __init__(self) -> None:
        self._clip: dict[int, torch.Tensor] = {}
        self._sam: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        """How many slices are encoded."""
        return len(self._clip)

    def holds(self, indices: Sequence[int]) -> bool:
        """Whether every slice of ``indices`` is encoded."""
        return all(index in self._clip for index in indices)

    @property
    def bytes(self) -> int:
        """Memory the encodings take."""
        return sum(t.numel() * t.element_size() for store in (self._clip, self._sam) for t in store.values())

    def encode(
        self, network: torch.nn.Module, indices: Sequence[int], batch: MediSeeBatch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The (B, T, H) CLIP features and (B, C, h, w) SAM embeddings of a batch of slices.

        Args:
            network: the :class:`networks.MediSee` in eval mode.
            indices: the slice index of each image of ``batch``.
            batch: the slices' batch; it must hold pixels unless every slice is encoded already.
        """
        if not self.holds(indices):
            if batch.clip_pixel_values is None or batch.sam_pixel_values is None:
                raise ValueError("slices that are not encoded yet need a batch with pixels")
            # the whole batch at once, as the model's own forward pass would encode it
            clip = network.encode_clip(batch.clip_pixel_values)
            sam = network.medsam.encode_images(batch.sam_pixel_values)
            for index, features, embedding in zip(indices, clip, sam):
                # a row of a batch output is a view that would keep the whole batch alive
                self._clip[index], self._sam[index] = features.clone(), embedding.clone()
            return clip, sam
        return torch.stack([self._clip[i] for i in indices]), torch.stack([self._sam[i] for i in indices])
