"""The training engine: MONAI's SupervisedTrainer with MediSee's iteration (paper Eq. 4-5)."""

from __future__ import annotations

import warnings

import torch
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents

from bundle.engines.batch import LABEL_QUERY_PREFIX, model_inputs, to_device, unwrap
from bundle.engines.precision import engine_autocast
from bundle.engines.sam_cache import SamEmbeddingCache, check_frozen_encoder, image_embeddings


class MediSeeTrainer(SupervisedTrainer):
    """One optimisation step per batch: forward, L_txt + L_mask + L_bbox (+ L_sim), clipped update.

    Args:
        grad_clip: max gradient norm over the trainable parameters (paper setup: 1.0); None = off.
        similarity_loss: the fine-tuning L_sim (:class:`bundle.losses.SimilarityLoss`); when set,
            batches must carry the plain label query of each row (``label_input_ids``, ...), which
            is run without gradients as the target similarity map.
        sam_cache: a :class:`bundle.engines.SamEmbeddingCache` for the frozen SAM image
            embeddings (batches then carry ``image_sources``); None = encode every step.
        **kwargs: ``SupervisedTrainer`` arguments (device, max_epochs, train_data_loader, network,
            optimizer, loss_function, train_handlers, ...); ``amp`` / ``amp_kwargs`` follow the
            config's ``dtype`` (:mod:`bundle.engines.precision`). ``loss_function`` is a
            :class:`bundle.losses.MediSeeLoss` returning a dict with ``"loss"``.

    ``engine.state.output`` is ``{"loss": float, "losses": {name: float}}``.
    """

    def __init__(
        self, grad_clip: float | None = 1.0, similarity_loss=None, sam_cache: SamEmbeddingCache | None = None, **kwargs
    ) -> None:
        kwargs.setdefault("decollate", False)  # rows hold masks of different sizes
        super().__init__(**kwargs)
        self.grad_clip = grad_clip
        self.similarity_loss = similarity_loss
        self.sam_cache = sam_cache
        if sam_cache is not None:
            check_frozen_encoder(self.network)

    def run(self) -> None:
        """Runs the training (MONAI's ``Trainer.run``)."""
        with warnings.catch_warnings():
            # MONAI's run makes a CUDA loss scaler whenever amp is on; only float16 uses it, and
            # its constructor warns on CPUs and about its own deprecation
            warnings.filterwarnings("ignore", message=".*GradScaler.*")
            super().run()

    def _iteration(self, engine: SupervisedTrainer, batchdata: dict) -> dict:
        batch = to_device(batchdata, engine.state.device)
        engine.state.batch = batch
        network = engine.network
        engine.network.train()
        with engine_autocast(engine):
            embeddings = image_embeddings(network, batch, self.sam_cache)
            inputs = {k: v for k, v in model_inputs(batch).items() if k != "sam_pixel_values"}
            outputs = network(
                **inputs, sam_image_embeddings=embeddings, output_hidden_states=self.similarity_loss is not None
            )
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            losses = dict(engine.loss_function(outputs, batch))
            if self.similarity_loss is not None:
                losses["similarity"] = self._similarity(network, batch, embeddings, outputs)
                losses["loss"] = losses["loss"] + losses["similarity"]
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        self._update(engine, losses["loss"])
        return {"loss": float(losses["loss"].detach()), "losses": {k: float(v.detach()) for k, v in losses.items()}}

    def _update(self, engine: SupervisedTrainer, loss: torch.Tensor) -> None:
        """Backward pass, gradient clipping and optimiser step; float16 goes through MONAI's loss scaler."""
        # bf16 has float32's exponent range and needs no scaling; float16 gradients would underflow
        scaler = engine.scaler if engine.amp and engine.amp_kwargs.get("dtype") == torch.float16 else None
        engine.optimizer.zero_grad(set_to_none=True)
        (scaler.scale(loss) if scaler else loss).backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        if scaler:
            scaler.unscale_(engine.optimizer)
        if self.grad_clip is not None:
            params = [p for p in engine.network.parameters() if p.requires_grad]
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        if scaler:
            scaler.step(engine.optimizer)
            scaler.update()
        else:
            engine.optimizer.step()
        engine.fire_event(IterationEvents.MODEL_COMPLETED)

    def _similarity(self, network, batch: dict, embeddings: torch.Tensor, outputs) -> torch.Tensor:
        """L_sim between the reasoning query's map and the plain label query's (target) map."""
        from bundle.losses import image_token_states

        model = unwrap(network)
        with torch.no_grad():
            label_inputs = {
                k: v
                for k, v in model_inputs(batch, LABEL_QUERY_PREFIX).items()
                if k not in ("labels", "sam_pixel_values")
            }
            target = network(**label_inputs, sam_image_embeddings=embeddings, output_hidden_states=True)
        image_id = model.image_token_id
        return self.similarity_loss(
            image_token_states(outputs.last_hidden_state, batch["input_ids"], image_id),
            outputs.seg_state,
            image_token_states(target.last_hidden_state, batch[f"{LABEL_QUERY_PREFIX}input_ids"], image_id),
            target.seg_state,
        )
