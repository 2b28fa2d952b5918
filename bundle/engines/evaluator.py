"""The evaluation engine: teacher-forced forward, outputs shaped for :mod:`bundle.metrics`."""

from __future__ import annotations

import torch
from monai.engines import SupervisedEvaluator

from bundle.data.batch import MediSeeBatch
from bundle.engines.batch import prepare_batch
from bundle.engines.precision import engine_autocast
from bundle.engines.sam_cache import SamEmbeddingCache, image_embeddings


class MediSeeEvaluator(SupervisedEvaluator):
    """Runs MediSee on validation/test batches.

    ``engine.state.output`` holds what the metrics read: ``pred_masks`` (logits at each slice's
    size; emptied on rows whose presence score is below ``presence_threshold``, as inference
    does), ``masks``, ``pred_boxes`` / ``boxes`` (normalised xyxy), ``box_valid``, ``present``
    (whether the target is on the image), ``presence`` (the scores; None without a rejection
    token), ``kinds`` and ``turns`` (each reading's turn number in its dialogue, 1 for a single
    question). Batches reach the device through ``prepare_batch`` (as in the trainer); the network is
    called with keyword inputs by the iteration itself, not through MONAI's ``inferer`` (which
    MONAI's standard bundle properties require in the config all the same).

    Args:
        sam_cache: a :class:`bundle.engines.SamEmbeddingCache` for the frozen SAM image embeddings
            (batches then carry ``image_sources``); None = encode every row's image.
        presence_threshold: a row keeps its mask from this presence score (the config's ``presence_threshold``).
        **kwargs: ``SupervisedEvaluator`` arguments (device, val_data_loader, network,
            key_val_metric, additional_metrics, val_handlers, ...); ``amp`` / ``amp_kwargs``
            follow the config's ``dtype`` (:mod:`bundle.engines.precision`).
    """

    def __init__(self, sam_cache: SamEmbeddingCache | None = None, presence_threshold: float = 0.5, **kwargs) -> None:
        kwargs.setdefault("decollate", False)  # rows hold masks of different sizes
        kwargs.setdefault("prepare_batch", prepare_batch)
        kwargs.setdefault("non_blocking", True)
        super().__init__(**kwargs)
        self.presence_threshold = float(presence_threshold)
        # no frozen-encoder check here: evaluation never changes the encoder; during training the
        # trainer, which shares the cache, refuses it when the encoder trains
        self.sam_cache = sam_cache

    def _iteration(self, engine: SupervisedEvaluator, batchdata: MediSeeBatch) -> dict:
        batch = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        engine.state.batch = batch
        engine.network.eval()
        with torch.no_grad(), engine_autocast(engine):
            embeddings = image_embeddings(engine.network, batch, self.sam_cache)
            outputs = engine.network(**batch.model_inputs(embeddings, targets=False))
        presence = outputs.presence_scores
        return {
            "pred_masks": [m.float() for m in outputs.gated_mask_logits(self.presence_threshold)],
            "masks": batch.masks,
            "pred_boxes": outputs.boxes_xyxy.float(),
            "boxes": batch.boxes,
            "box_valid": batch.box_valid,
            "present": batch.present_or_all(),
            "presence": None if presence is None else presence.float(),
            "kinds": batch.kinds,
            "turns": batch.turn_numbers(),
        }
