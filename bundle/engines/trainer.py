"""The training engine: MONAI's SupervisedTrainer with MediSee's iteration (paper Eq. 4-5)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sized

import torch
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents

from bundle.data.batch import MediSeeBatch
from bundle.engines.accumulation import MicroBatches, check_accumulation_steps, gradient_sync, optimizer_steps
from bundle.engines.batch import prepare_batch, unwrap
from bundle.engines.precision import engine_autocast
from bundle.engines.sam_cache import SamEmbeddingCache, check_frozen_encoder, image_embeddings
from common.errors import ConfigError


class MediSeeTrainer(SupervisedTrainer):
    """One optimisation step per iteration: forward, L_txt + L_mask + L_bbox (+ L_sim), clipped update.

    With ``gradient_accumulation_steps`` K > 1 an iteration is K micro-batches of the loader
    (:mod:`bundle.engines.accumulation`): each one's loss, scaled by 1/K, is back-propagated and
    the gradients add up; clipping, the optimizer step (and the schedule, stepped per iteration)
    follow once. Under DDP only the last micro-batch all-reduces. The epoch then has
    ceil(len(loader) / K) iterations, the last one over the micro-batches left.

    The batch reaches the device through the engine's ``prepare_batch`` (default
    :func:`bundle.engines.batch.prepare_batch`); the network is called by the iteration itself, with
    keyword inputs and the SAM embeddings it computed or cached, so MONAI's ``inferer`` is not called
    (``train#inferer`` stays in train.json: MONAI's standard training properties require it).

    Every loss term is a mean (over masks, rows with a box, answer tokens, pairs), so K
    micro-batches give the gradient of one K-times-larger batch exactly when the micro-batches
    hold equal counts of what each term averages over; otherwise the step is the mean of the
    micro-batches' means.

    Args:
        grad_clip: max gradient norm over the trainable parameters (paper setup: 1.0); None = off.
        gradient_accumulation_steps: micro-batches per optimizer step (K, default 1).
        similarity_loss: the fine-tuning L_sim (:class:`bundle.losses.SimilarityLoss`); when set,
            batches must carry the plain label query of each row (``MediSeeBatch.label_input_ids``),
            which is run without gradients as the target similarity map.
        sam_cache: a :class:`bundle.engines.SamEmbeddingCache` for the frozen SAM image
            embeddings (batches then carry ``image_sources``); None = encode every step.
        **kwargs: ``SupervisedTrainer`` arguments (device, max_epochs, train_data_loader, network,
            optimizer, loss_function, train_handlers, ...); ``amp`` / ``amp_kwargs`` follow the
            config's ``dtype`` (:mod:`bundle.engines.precision`). ``loss_function`` is a
            :class:`bundle.losses.MediSeeLoss` returning a dict with ``"loss"``.

    ``engine.state.output`` is ``{"loss": float, "losses": {name: float}}`` (means over the
    iteration's micro-batches); ``engine.state.batch`` is the last micro-batch.
    """

    def __init__(
        self,
        grad_clip: float | None = 1.0,
        similarity_loss=None,
        sam_cache: SamEmbeddingCache | None = None,
        gradient_accumulation_steps: int = 1,
        **kwargs,
    ) -> None:
        kwargs.setdefault("decollate", False)  # rows hold masks of different sizes
        kwargs.setdefault("prepare_batch", prepare_batch)
        kwargs.setdefault("non_blocking", True)
        if kwargs.pop("accumulation_steps", 1) != 1:
            raise ConfigError(
                "MediSeeTrainer takes 'gradient_accumulation_steps' (an iteration is an optimizer step), "
                "not MONAI's 'accumulation_steps' (an iteration is a micro-batch)"
            )
        accumulation = check_accumulation_steps(gradient_accumulation_steps)
        loader = kwargs.get("train_data_loader")
        if accumulation > 1 and kwargs.get("epoch_length") is None and isinstance(loader, Sized):
            with contextlib.suppress(TypeError):  # a loader over an iterable dataset has no length
                kwargs["epoch_length"] = optimizer_steps(loader, accumulation)
        # MONAI sees the loader itself (so it still sets a DistributedSampler's epoch); the engine
        # then runs over its batches grouped per optimizer step
        super().__init__(**kwargs)
        if accumulation > 1:
            self.data_loader = MicroBatches(self.data_loader, accumulation)
        self.gradient_accumulation_steps = accumulation
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

    def _iteration(self, engine: SupervisedTrainer, batchdata: MediSeeBatch | list[MediSeeBatch]) -> dict:
        micro_batches = batchdata if isinstance(batchdata, list) else [batchdata]
        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, torch.Tensor] = {}
        for index, micro_batch in enumerate(micro_batches):
            with gradient_sync(engine.network, synchronise=index == len(micro_batches) - 1):
                losses = self._accumulate(engine, micro_batch, 1.0 / len(micro_batches))
            for name, value in losses.items():
                totals[name] = totals.get(name, 0.0) + value.detach() / len(micro_batches)
        self._step(engine)
        return {"loss": float(totals["loss"]), "losses": {k: float(v) for k, v in totals.items()}}

    def _accumulate(self, engine: SupervisedTrainer, batchdata: MediSeeBatch, scale: float) -> dict[str, torch.Tensor]:
        """Forward and loss of one micro-batch, and the backward pass of its loss times ``scale``."""
        batch = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        engine.state.batch = batch
        network = engine.network
        with engine_autocast(engine):
            embeddings = image_embeddings(network, batch, self.sam_cache)
            outputs = network(**batch.model_inputs(embeddings), output_hidden_states=self.similarity_loss is not None)
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            losses = dict(engine.loss_function(outputs, batch))
            if self.similarity_loss is not None:
                losses["similarity"] = self._similarity(network, batch, embeddings, outputs)
                losses["loss"] = losses["loss"] + losses["similarity"]
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        loss = losses["loss"] * scale if scale != 1.0 else losses["loss"]
        scaler = self._loss_scaler(engine)
        (scaler.scale(loss) if scaler else loss).backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        return losses

    @staticmethod
    def _loss_scaler(engine: SupervisedTrainer):
        """MONAI's loss scaler for float16 autocast, else None."""
        # bf16 has float32's exponent range and needs no scaling; float16 gradients would underflow
        return engine.scaler if engine.amp and engine.amp_kwargs.get("dtype") == torch.float16 else None

    def _step(self, engine: SupervisedTrainer) -> None:
        """Gradient clipping and the optimizer step on the accumulated gradients (float16: through the scaler)."""
        scaler = self._loss_scaler(engine)
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

    def _similarity(self, network, batch: MediSeeBatch, embeddings: torch.Tensor, outputs) -> torch.Tensor:
        """L_sim between the reasoning query's map and the plain label query's (target) map."""
        from bundle.losses import image_token_states

        model = unwrap(network)
        with torch.no_grad():
            target = network(**batch.model_inputs(embeddings, label_query=True), output_hidden_states=True)
        image_id = model.image_token_id
        # a dialogue row is read once per turn: each reading compares its row's image states
        return self.similarity_loss(
            image_token_states(outputs.last_hidden_state, batch.input_ids, image_id)[batch.reading_rows()],
            outputs.seg_state,
            image_token_states(target.last_hidden_state, batch.label_input_ids, image_id),
            target.seg_state,
        )
