"""Caching the frozen SAM image embeddings across epochs (a training lever).

When SAM's image encoder is frozen (``trainable`` ``paper``) and training slices are not
augmented, a slice's image embedding is the same in every epoch, so it is computed once and
looked up afterwards. Evaluation gains even within one pass: its items are every (slice, label,
question kind), so one slice is asked about many times. The key is the sample's ``source`` (file and slice), which the collate
passes per image as ``image_sources``. At full size an embedding is 256x64x64 values (2 MiB in
bf16), so the cache is bounded by ``max_gib``; images beyond it are encoded every time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from bundle.data.batch import MediSeeBatch
from bundle.engines.batch import unwrap
from common.errors import ConfigError
from networks.memory import check_fits

GIB = 2**30


class SamEmbeddingCache:
    """A bounded map from image source to its SAM image embedding.

    Args:
        max_gib: memory the cached embeddings may take, in GiB (on ``device``).
        device: where cached embeddings are kept; None = where they were computed (the GPU).
            ``cpu`` trades a host-to-device copy per lookup for GPU memory.

    Raises:
        ConfigError: ``max_gib`` is not positive, or more than the memory free where the embeddings
            will be kept (checked when the cache is made, after the model, before anything is cached).
    """

    def __init__(self, max_gib: float, device: str | torch.device | None = None) -> None:
        if not max_gib > 0:
            raise ConfigError(f"config 'sam_cache_gib' must be positive to cache SAM embeddings, got {max_gib!r}")
        self.max_bytes = int(max_gib * GIB)
        self.device = None if device is None else torch.device(device)
        check_fits(self.max_bytes, self.device or compute_device(), f"config 'sam_cache_gib' ({max_gib} GiB)")
        self._embeddings: dict[str, torch.Tensor] = {}
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._embeddings)

    def embed(
        self, keys: Sequence[str], pixel_values: torch.Tensor, encode: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """The embeddings of a batch of images: cached ones looked up, the others encoded (and kept while room is left).

        Args:
            keys: one source per image (``image_sources`` of the batch); a key repeated in the
                batch is encoded once.
            pixel_values: (N, 3, S, S) SAM inputs of the same images.
            encode: the frozen encoder (``MedSAM.encode_images``); called once, on the missing images only.

        Returns:
            (N, C, h, w) embeddings in image order, on ``pixel_values``' device.
        """
        if len(keys) != len(pixel_values):
            raise ValueError(f"{len(keys)} image keys for {len(pixel_values)} images")
        first = {}  # missing key -> its first position in the batch
        for i, key in enumerate(keys):
            if key not in self._embeddings:
                first.setdefault(key, i)
        self.hits += len(keys) - len(first)
        self.misses += len(first)
        computed = dict(zip(first, encode(pixel_values[list(first.values())]))) if first else {}
        for key, embedding in computed.items():
            self._store(key, embedding)
        target = pixel_values.device
        return torch.stack(
            [computed[key] if key in computed else self._embeddings[key].to(target, non_blocking=True) for key in keys]
        )

    def _store(self, key: str, embedding: torch.Tensor) -> None:
        size = embedding.numel() * embedding.element_size()
        if key in self._embeddings or self.bytes + size > self.max_bytes:
            return
        kept = embedding.detach()
        # a row of the encoder's batch output is a view that would keep the whole batch alive
        self._embeddings[key] = kept.to(self.device) if self.device is not None else kept.clone()
        self.bytes += size


def compute_device() -> torch.device:
    """Where the encoder runs, so where uncopied embeddings stay: the current GPU if there is one, else the CPU."""
    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")


def image_embeddings(
    network: torch.nn.Module, batch: MediSeeBatch, cache: SamEmbeddingCache | None = None
) -> torch.Tensor:
    """The SAM image embeddings of a batch, once per image (rows of one image share it), from ``cache`` when given.

    Args:
        network: a MediSee, possibly inside DistributedDataParallel.
        batch: a collated batch (its ``sam_pixel_values``; its ``image_sources`` key the cache).
        cache: a :class:`SamEmbeddingCache`, or None to encode every image.
    """
    # autograd keeps a graph only when the encoder trains (trainable == "all")
    encode = unwrap(network).medsam.encode_images
    if cache is None:
        return encode(batch.sam_pixel_values)
    return cache.embed(batch.image_sources, batch.sam_pixel_values, encode)


def check_frozen_encoder(network: torch.nn.Module) -> None:
    """Raises a :class:`ConfigError` when the SAM image encoder trains: its embeddings then change every step."""
    encoder = unwrap(network).medsam.sam.image_encoder
    if any(p.requires_grad for p in encoder.parameters()):
        raise ConfigError(
            "config 'sam_cache_gib' needs a frozen SAM image encoder (trainable 'paper'); it trains under 'all'"
        )
