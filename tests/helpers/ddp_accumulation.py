"""Run by ``torchrun --nproc_per_node 2 -m tests.helpers.ddp_accumulation OUT.json`` (gloo, CPU).

Each rank trains the float64 tiny model under DDP on its half of two 4-row batches, as two
1-row micro-batches per optimizer step; rank 0 then trains the same model in one process on the
whole 4-row batches and writes how far the weights are apart, and when DDP all-reduced.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from monai.engines.utils import IterationEvents
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.nn.parallel import DistributedDataParallel

from bundle.data.batch import MediSeeBatch
from bundle.engines.batch import unwrap
from tests.helpers.training import (
    deterministic_tiny,
    equal_count_batch,
    micro_batches,
    scheduled_trainer,
    trainable_weights,
)

LR = 1e-3
CLIP = 0.5
ACCUMULATION = 2
SEED = 3
BATCH_SEEDS = (1, 2)


def whole_batches(model, tokenizer) -> list[MediSeeBatch]:
    return [equal_count_batch(model, tokenizer, seed=s, dtype=torch.float64) for s in BATCH_SEEDS]


def main(out: Path) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    model, tokenizer = deterministic_tiny(seed=SEED, dtype=torch.float64)
    initial = trainable_weights(model)
    per_rank = ACCUMULATION * world
    # rank r holds rows [r * K, (r + 1) * K) of each whole batch, one row per micro-batch
    loader = [
        part
        for batch in whole_batches(model, tokenizer)
        for part in micro_batches(batch, per_rank)[rank * ACCUMULATION : (rank + 1) * ACCUMULATION]
    ]
    calls = [0]

    def counting_allreduce(state, bucket):
        calls[0] += 1
        return allreduce_hook(state, bucket)

    network = DistributedDataParallel(model)
    network.register_comm_hook(None, counting_allreduce)
    trainer = scheduled_trainer(network, loader, ACCUMULATION, grad_clip=CLIP, lr=LR)
    after_backward: list[int] = []
    trainer.add_event_handler(IterationEvents.BACKWARD_COMPLETED, lambda engine: after_backward.append(calls[0]))
    trainer.run()
    distributed = trainable_weights(unwrap(network))

    if rank == 0:
        reference, tokenizer = deterministic_tiny(seed=SEED, dtype=torch.float64)
        scheduled_trainer(reference, whole_batches(reference, tokenizer), 1, grad_clip=CLIP, lr=LR).run()
        one_process = trainable_weights(reference)
        report = {
            "iterations": trainer.state.iteration,
            "micro_steps": len(after_backward),
            "allreduce_calls_after_each_backward": after_backward,
            "max_weight_difference_to_one_process": max(
                (distributed[n] - one_process[n]).abs().max().item() for n in one_process
            ),
            "max_weight_change": max((one_process[n] - initial[n]).abs().max().item() for n in initial),
        }
        out.write_text(json.dumps(report))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
