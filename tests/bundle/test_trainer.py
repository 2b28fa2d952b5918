"""The training engine's step on the tiny model (the full workflow is in test_workflows)."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Events

from bundle.engines import MediSeeEvaluator
from bundle.engines.batch import prepare_batch
from tests.helpers.tiny import build_tiny
from tests.helpers.training import batch_with_targets, tiny_trainer


def presence_for(trainable: str) -> str:
    """frozen_llm freezes the LM head the presence decision is read from: that ablation has none."""
    return "none" if trainable == "frozen_llm" else "token"


@pytest.mark.parametrize("trainable", ["paper", "all"])
def test_the_sam_image_encoder_trains_only_in_a_model_trained_from_scratch(trainable):
    model, tokenizer = build_tiny(trainable=trainable, presence=presence_for(trainable))
    encoder = model.medsam.sam.image_encoder
    before = [p.detach().clone() for p in encoder.parameters()]
    trainer = tiny_trainer(model, [batch_with_targets(model, tokenizer)])
    trainer.run()
    assert torch.isfinite(torch.tensor(trainer.state.output["loss"]))
    changed = any(not torch.equal(a, b) for a, b in zip(before, encoder.parameters()))
    assert changed == (trainable == "all")


@pytest.mark.slow
def test_a_compiled_network_trains_to_the_same_losses_and_weights():
    from torch._dynamo.testing import CompileCounterWithBackend

    from networks.compile import COMPILE_PARTS, compile_network

    torch.compiler.reset()
    counter = CompileCounterWithBackend("aot_eager")  # traces forward and backward, generates no code
    runs = []
    for compiled in (False, True):
        model, tokenizer = build_tiny(seed=2)
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0  # the two runs must draw nothing at random
        if compiled:
            compile_network(model, "all", backend=counter)
        losses = []
        trainer = tiny_trainer(model, [batch_with_targets(model, tokenizer)], max_epochs=2)
        trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda engine: losses.append(engine.state.output["loss"]))
        trainer.run()
        runs.append((losses, {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}))
    torch.compiler.reset()
    assert counter.frame_count >= len(COMPILE_PARTS["all"]), "every compiled part ran as a dynamo graph"
    (plain_losses, plain_weights), (losses, weights) = runs
    assert losses == pytest.approx(plain_losses, rel=1e-4)
    assert weights.keys() == plain_weights.keys()
    for name, weight in weights.items():
        assert torch.allclose(weight, plain_weights[name], atol=1e-5), name


@pytest.mark.parametrize("trainable", ["paper", "frozen_llm", "sam_lora"])
def test_a_training_step_changes_the_trainable_set_and_nothing_else(trainable):
    model, tokenizer = build_tiny(seed=6, trainable=trainable, presence=presence_for(trainable))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = tiny_trainer(model, [batch_with_targets(model, tokenizer)] * 2)
    trainer.run()
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
    trainable_names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert changed <= trainable_names
    # every trained component moved (SAM's unused multi-mask hypernetworks get zero gradients)
    for prefix in ("box_head.", "seg_router.", "text_projection."):
        assert any(n.startswith(prefix) for n in changed), prefix
    decoder_lora = {n for n in changed if n.startswith("medsam.") and ".lora_B." in n}
    decoder_weights = {n for n in changed if n.startswith("medsam.") and ".lora_" not in n}
    assert bool(decoder_lora) == (trainable == "sam_lora") and bool(decoder_weights) == (trainable != "sam_lora")
    assert any(n.startswith("llava.") for n in changed) == (trainable != "frozen_llm")


def test_both_engines_move_their_batches_through_monais_prepare_batch_hook():
    model, tokenizer = build_tiny(seed=5)
    batch = batch_with_targets(model, tokenizer)
    batch.kinds = ["label", "short", "long"]
    seen: list[str] = []

    def recording(batchdata, device=None, non_blocking=False, **kwargs):
        seen.append("prepared")
        return prepare_batch(batchdata, device, non_blocking, **kwargs)

    tiny_trainer(model, [batch], prepare_batch=recording).run()
    assert seen == ["prepared"]
    evaluator = MediSeeEvaluator(
        device=torch.device("cpu"), val_data_loader=[batch, batch], network=model, prepare_batch=recording
    )
    evaluator.run()
    assert seen == ["prepared"] * 3 and evaluator.state.output["pred_boxes"].shape == (3, 4)
