"""The evaluation engine: teacher-forced forward, outputs shaped for :mod:`bundle.metrics`."""

from __future__ import annotations

import torch
from monai.engines import SupervisedEvaluator

from bundle.engines.batch import model_inputs, to_device
from bundle.engines.precision import engine_autocast


class MediSeeEvaluator(SupervisedEvaluator):
    """Runs MediSee on validation/test batches.

    ``engine.state.output`` holds what the metrics read: ``pred_masks`` (logits at each slice's
    size), ``masks``, ``pred_boxes`` / ``boxes`` (normalised xyxy), ``box_valid`` and ``kinds``.

    Args:
        **kwargs: ``SupervisedEvaluator`` arguments (device, val_data_loader, network,
            key_val_metric, additional_metrics, val_handlers, ...); ``amp`` / ``amp_kwargs``
            follow the config's ``dtype`` (:mod:`bundle.engines.precision`).
    """

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("decollate", False)  # rows hold masks of different sizes
        super().__init__(**kwargs)

    def _iteration(self, engine: SupervisedEvaluator, batchdata: dict) -> dict:
        batch = to_device(batchdata, engine.state.device)
        engine.state.batch = batch
        engine.network.eval()
        with torch.no_grad(), engine_autocast(engine):
            inputs = {k: v for k, v in model_inputs(batch).items() if k != "labels"}
            outputs = engine.network(**inputs)
        return {
            "pred_masks": [m.float() for m in outputs.mask_logits],
            "masks": batch["masks"],
            "pred_boxes": outputs.boxes_xyxy.float(),
            "boxes": batch["boxes"],
            "box_valid": batch["box_valid"],
            "kinds": batch["kinds"],
        }
