"""GPU training benchmark: the bundle's own training step (``MediSeeTrainer``) on the full-size model in bf16.

    python bench/train_gpu.py                              # one GPU: full size, bf16, phantom slices
    python bench/train_gpu.py --tiny --device cpu          # smoke run on a CPU (tiny sizes)

Builds ``configs/train.json`` (+ ``configs/tiny.json``) with the network created on the device,
writes a small phantom dataset, and runs the configured trainer (forward, losses, backward,
clipped AdamW step, LR schedule; validation and checkpoints left out) for ``--warmup`` + ``--steps``
iterations per batch size, with and without gradient checkpointing of the language model (the
config's ``gradient_checkpointing``). Trainable parameters are float32 master weights under bf16
autocast (``master_dtype``), as the bundle trains. One sample = one conversation row (``max_targets`` 1:
one target per image). It reports samples/s, model FLOP utilisation, peak memory and the share of
padding tokens among those the language model runs on (0 when packed). ``--sam-cache-gib``
turns on the cache of frozen SAM embeddings (``sam_cache_gib``), ``--length-grouping K`` batches
of similar conversation length (``length_grouping``), ``--compile`` compiles network parts
(``compile``; its compilation falls in the warm-up steps, recompilations for new lengths may not),
``--pack`` runs the language model on the real tokens only (``pack_sequences``; pair it with
``--attn flex_attention`` on a GPU without flash-attn: sdpa attends through a dense mask),
``--accumulation K`` makes each step K micro-batches of the batch size (``gradient_accumulation_steps``:
the peak memory is then a micro-batch's, the samples per step K times as many).

Model FLOPs per sample = the teacher-forced forward of ``bench/flops.py`` at the rows' mean real
(unpadded) length, so padding counts as waste + one more language-model forward for the backward pass through the frozen LLM (input
gradients only; weight gradients of LoRA, heads and decoder, and recomputation under gradient
checkpointing, are not counted). Utilisation = model FLOP/s / the measured matmul rate.
A batch size that runs out of GPU memory is reported as such (larger ones are skipped).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import torch
from ignite.engine import Events
from monai.engines.utils import IterationEvents

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root: run as a script

from bench.common import (  # noqa: E402
    ROOT,
    build_network,
    clock,
    config_files,
    matmul_rate,
    peak_memory_gib,
    print_table,
    reset_peak_memory,
)
from bench.flops import language_model, slice_flops  # noqa: E402
from bundle.phantoms import write_dataset  # noqa: E402
from networks.compile import COMPILE_PARTS  # noqa: E402
from networks.llava import (
    ATTENTION_IMPLEMENTATIONS,  # noqa: E402
    set_gradient_checkpointing,  # noqa: E402
)

SIZE_KEYS = ("text_config", "vision_config", "sam_config", "medisee_config")
TRAINER_HANDLERS = "$@train#handlers[:1]"  # the LR schedule only: no validation, checkpoints or logs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="configs/tiny.json sizes (CPU smoke runs)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-sizes", type=int, nargs="+", help="default 4 8 16 (tiny: 4)")
    parser.add_argument("--checkpointing", nargs="+", choices=["off", "on"], default=["off", "on"],
                        help="gradient checkpointing of the language model")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations per setting")
    parser.add_argument("--steps", type=int, default=10, help="timed iterations per setting")
    parser.add_argument("--num-workers", type=int, default=0, help="data loader workers (the config's num_workers)")
    parser.add_argument(
        "--sam-cache-gib",
        type=float,
        default=0.0,
        help="cache the frozen SAM embeddings (the config's sam_cache_gib); the warm-up then covers an epoch",
    )
    parser.add_argument(
        "--length-grouping",
        type=int,
        default=0,
        help="batches sorted by length together (the config's length_grouping; 0 = off)",
    )
    parser.add_argument(
        "--compile",
        choices=list(COMPILE_PARTS),
        default="none",
        help="the config's compile (torch.compile of network parts)",
    )
    parser.add_argument(
        "--pack", action="store_true", help="pack each batch's conversations into one row (the config's pack_sequences)"
    )
    parser.add_argument(
        "--attn", choices=ATTENTION_IMPLEMENTATIONS, default="sdpa", help="the config's attn_implementation"
    )
    parser.add_argument(
        "--accumulation", type=int, default=1, help="micro-batches per optimizer step (gradient_accumulation_steps)"
    )
    parser.add_argument("--volumes", type=int, default=4, help="phantom volumes in the training set")
    parser.add_argument("--shape", type=int, nargs=3, help="phantom voxels (default 128 128 32; tiny: 64 64 16)")
    args = parser.parse_args()
    args.batch_sizes = args.batch_sizes or ([4] if args.tiny else [4, 8, 16])
    args.shape = args.shape or ([64, 64, 16] if args.tiny else [128, 128, 32])
    return args


class IterationClock:
    """Records the end time of every iteration and the rows, padded length and real tokens of each
    (micro-)batch; stops after ``total`` iterations."""

    def __init__(self, device: torch.device, warmup: int, total: int) -> None:
        self.device, self.warmup, self.total = device, warmup, total
        self.times: list[float] = []
        self.rows: list[int] = []
        self.lengths: list[int] = []
        self.tokens: list[int] = []
        self.batches_at_warmup = 0

    def batch_done(self, engine) -> None:
        """After each forward: one micro-batch per forward when accumulating."""
        ids = engine.state.batch.input_ids
        self.rows.append(int(ids.shape[0]))
        self.lengths.append(int(ids.shape[1]))
        self.tokens.append(int(engine.state.batch.attention_mask.sum()))

    def __call__(self, engine) -> None:
        self.times.append(clock(self.device))
        if len(self.times) == self.warmup:
            self.batches_at_warmup = len(self.rows)
            reset_peak_memory(self.device)
        if len(self.times) >= self.total:
            engine.terminate()

    def timed(self) -> tuple[float, int, float, float]:
        """(seconds, rows, mean padded length, padding share in %) of the iterations after the warm-up."""
        start = self.batches_at_warmup
        rows, lengths = self.rows[start:], self.lengths[start:]
        padded = sum(r * n for r, n in zip(rows, lengths))
        padding = 100 * (1 - sum(self.tokens[start:]) / padded)
        return self.times[-1] - self.times[self.warmup - 1], sum(rows), sum(lengths) / len(lengths), padding


def workflow(args, dataset_dir: Path, output_dir: Path, batch_size: int, network=None):
    """The training workflow; ``network`` (already built) is reused instead of building another one."""
    from monai.bundle import ConfigWorkflow

    overrides = {
        "dataset_dir": str(dataset_dir), "output_dir": str(output_dir), "device": torch.device(args.device),
        "batch_size": batch_size, "epochs": 1000, "max_targets": 1, "num_workers": args.num_workers,
        "sam_cache_gib": args.sam_cache_gib, "length_grouping": args.length_grouping, "compile": args.compile,
        "pack_sequences": args.pack, "attn_implementation": args.attn, "random_weights": True,
        "gradient_accumulation_steps": args.accumulation,
        "train#trainer#train_handlers": TRAINER_HANDLERS,
    }  # fmt: skip
    if network is not None:
        overrides.update(network_def=network, network=network)
    flow = ConfigWorkflow(
        config_file=config_files(train=True, tiny=args.tiny),
        workflow_type="train",
        bundle_root=str(ROOT),
        **overrides,
    )
    flow.initialize()
    if network is not None and flow.parser.get_parsed_content("network") is not network:
        raise RuntimeError("the workflow copied the given network instead of using it")
    return flow


def measure(flow, args) -> IterationClock:
    """Runs the configured trainer for warm-up + timed iterations (with a SAM cache, the warm-up fills it)."""
    device = torch.device(args.device)
    trainer = flow.parser.get_parsed_content("train#trainer")
    warmup = args.warmup
    if trainer.sam_cache is not None:
        warmup = max(warmup, len(trainer.data_loader) + 1)  # an epoch of optimizer steps
    timer = IterationClock(device, warmup, warmup + args.steps)
    trainer.add_event_handler(IterationEvents.FORWARD_COMPLETED, timer.batch_done)
    trainer.add_event_handler(Events.ITERATION_COMPLETED, timer)
    trainer.run()
    return timer


def main() -> None:
    args = parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        # one validation volume: the config builds the validator (never run here) and refuses an empty split
        write_dataset(
            data,
            n=args.volumes + 1,
            seed=0,
            shape=tuple(args.shape),
            val_fraction=1 / (args.volumes + 1),
            test_fraction=0.0,
        )
        flow = workflow(args, data, Path(tmp) / "run0", args.batch_sizes[0])
        network, build_seconds = build_network(flow.parser, device)
        sizes = {key: flow.parser.get_parsed_content(key) for key in SIZE_KEYS}
        print(f"network built on {device} in {build_seconds:.1f} s", flush=True)
        logging.disable(logging.INFO)  # the engines' progress logs would bury the table
        rate = matmul_rate(device)
        for mode in args.checkpointing:
            set_gradient_checkpointing(network, mode == "on")
            for batch_size in args.batch_sizes:
                flow = flow or workflow(args, data, Path(tmp) / f"run-{mode}-{batch_size}", batch_size, network)
                reset_peak_memory(device)
                try:
                    timer = measure(flow, args)
                except torch.OutOfMemoryError:
                    rows.append((mode, batch_size, "OOM", "-", "-", "-", "-", "-"))
                    flow = None
                    torch.cuda.empty_cache()
                    break
                flow = None  # a new workflow (data loader, optimizer) for the next setting
                seconds, samples, length, padding = timer.timed()
                real_length = round(length * (1 - padding / 100))  # useful work only: padding is not counted
                padding = 0.0 if args.pack else padding  # packed, the language model sees no padding
                flops = slice_flops(sizes, real_length)
                if args.sam_cache_gib > 0:
                    del flops["SAM image encoder"]  # read from the cache in the timed steps
                per_sample = sum(flops.values())
                per_sample += language_model(
                    sizes["text_config"], real_length, sizes["medisee_config"].get("lora_r", 0)
                )
                throughput = samples / seconds
                mfu = 100 * throughput * per_sample / rate
                rows.append(
                    (
                        mode,
                        batch_size,
                        round(length),
                        padding,
                        throughput,
                        per_sample / 1e12,
                        mfu,
                        peak_memory_gib(device),
                    )
                )
    sizes_name = "tiny" if args.tiny else "full-size"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    title = (
        f"MediSee training step, {sizes_name}, {network.llava.dtype} (trainable float32), {device} ({name}), "
        f"SAM cache {args.sam_cache_gib:g} GiB, length grouping {args.length_grouping}, "
        f"packing {'on' if args.pack else 'off'}, attention {args.attn}, compile {args.compile}, "
        f"{args.accumulation} micro-batch(es) of 'batch' per step, "
        f"matmul rate {rate / 1e12:.3g} TFLOP/s, torch {torch.__version__}"
    )
    headers = ["grad ckpt", "batch", "seq len", "pad %", "samples/s", "TFLOP/sample", "MFU %", "peak GiB"]
    print_table(title, headers, rows)


if __name__ == "__main__":
    main()
