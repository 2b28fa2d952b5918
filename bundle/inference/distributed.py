"""Inference over many volumes on several processes (``torchrun``): every rank infers its share.

``configs/multi_gpu_inference.json`` merges on ``configs/model.json`` + ``configs/inference.json``:

    torchrun --nproc_per_node N -m monai.bundle run \\
        --config_file "['configs/model.json','configs/inference.json','configs/multi_gpu_inference.json']" \\
        --image FOLDER --query "..." --output_dir OUT

The rules, so that a run over W processes writes exactly what one process would:

- Every rank lists the same volumes (sorted, :func:`bundle.inference.datalist`); rank r takes
  entries r, r + W, r + 2W, ... (:func:`rank_share`). Each volume is inferred exactly once, and a
  rank with nothing to do (more ranks than volumes) only joins the summary.
- Each rank runs on its own device (:func:`rank_device`: ``cuda:LOCAL_RANK``, else the CPU) in a
  process group of its own backend (:func:`init_distributed`: NCCL on GPUs, gloo on CPUs).
- Outputs are written by the usual atomic writers; names differ between volumes, so ranks never
  write the same file. Every rank runs the inference config's ``preflight`` checks over the whole
  list (volumes readable, outputs free, the question fits), and no rank starts before all have
  checked (:func:`wait_for_every_rank`), so either every rank refuses or none does.
- One summary: rank 0 prints the findings of every volume, gathered from all ranks and sorted by
  name (:class:`GatheredSummary`); the other ranks print nothing, and only rank 0 shows a progress bar.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
from ignite.engine import Engine, Events

from bundle.inference import keys as K
from bundle.inference.summary import InferenceSummary, describe_volume

LOCAL_RANK = "LOCAL_RANK"
"""Environment variable ``torchrun`` sets to the process's index on its node."""


def rank_device() -> torch.device:
    """This process's device: ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get(LOCAL_RANK, "0")))
    return torch.device("cpu")


def init_distributed() -> None:
    """Joins the process group ``torchrun`` set up (NCCL on GPUs, gloo on CPUs) and selects this rank's GPU."""
    cuda = torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(rank_device())  # NCCL collectives run on the current device


def finish_distributed() -> None:
    """Leaves the process group (if one was joined)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def rank_and_world() -> tuple[int, int]:
    """(rank, world size); (0, 1) without a process group."""
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    """Whether this is rank 0 (or the only process)."""
    return rank_and_world()[0] == 0


def rank_share(entries: Sequence[Any], rank: int | None = None, world: int | None = None) -> list[Any]:
    """A rank's entries of a list every rank holds in the same order: r, r + W, r + 2W, ...

    Args:
        entries: the whole list.
        rank: the rank; default this process's.
        world: the number of ranks; default this process group's.
    """
    own_rank, own_world = rank_and_world()
    rank = own_rank if rank is None else rank
    world = own_world if world is None else world
    return list(entries[rank::world])


def wait_for_every_rank() -> None:
    """Returns once every rank has come here (at once without a process group).

    Between the pre-flight checks and the first write: without it, a fast rank could write its first
    volume before a slow rank has looked for existing outputs, and the slow one would refuse that fresh output.
    """
    if dist.is_initialized():
        dist.barrier()


def run_share(evaluator: Engine, entries: Sequence[dict]) -> None:
    """Runs the evaluator over this rank's entries; a rank with none has nothing to run."""
    if entries:
        evaluator.run()


class GatheredSummary(InferenceSummary):
    """The closing report of a multi-process run: rank 0 prints every rank's volumes, sorted by name.

    Attach it to each rank's evaluator (it collects, it does not print at ``COMPLETED``), then call
    :meth:`report` on every rank once the evaluators are done: it is a collective operation.
    """

    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[tuple[str, list[str]]] = []

    def attach(self, engine: Engine) -> None:
        """Registers reset and collection on ``engine``; the report is called by the workflow."""
        engine.add_event_handler(Events.STARTED, self.reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.collect)

    def reset(self, engine: Engine) -> None:
        """Forgets earlier runs."""
        super().reset(engine)
        self.blocks = []

    def collect(self, engine: Engine) -> None:
        """Keeps the summary lines of each volume of the iteration that just completed, under its name."""
        for entry, output in zip(engine.state.batch, engine.state.output):
            self.blocks.append((str(entry[K.NAME]), describe_volume({**entry, **output})))

    def report(self, engine: Engine | None = None) -> None:
        """Gathers every rank's volumes; rank 0 prints them. Every rank must call it."""
        rank, world = rank_and_world()
        gathered: list[Any] = [self.blocks]
        if dist.is_initialized():
            gathered = [None] * world
            dist.all_gather_object(gathered, self.blocks)
        if rank != 0:
            return
        blocks = sorted((block for part in gathered for block in part), key=lambda block: block[0])
        lines = [line for _, block in blocks for line in block]
        print(f"MediSee inference: {len(blocks)} volume(s) on {world} process(es)", *lines, sep="\n", flush=True)
