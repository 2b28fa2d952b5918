"""GPU inference benchmark: the full-size MediSee (random weights, bf16) through the bundle's own workflow.

    python bench/infer_gpu.py                              # one GPU: full size, bf16, 512x512x200 volume
    python bench/infer_gpu.py --tiny --device cpu          # smoke run on a CPU (tiny sizes, small volume)

Builds ``configs/inference.json`` (+ ``configs/tiny.json`` with ``--tiny``) on the device, writes a
phantom CT volume and measures, side by side:

- the workflow end to end (load -> slices -> model -> mask, json and overlay written) for each
  batch size, masks and boxes only and with the one generated answer: seconds per volume, slices/s;
- the model alone on the loaded volume (the inferer's teacher-forced batches, no I/O): slices/s;
- an explanation of ``--max-new-tokens`` tokens on every slice (masks + batched ``generate()``);
- a LISA-style loop: per slice, batch 1, ``generate()`` then the mask, on ``--lisa-slices`` slices;
- the ceiling: measured matmul rate / FLOPs per slice (``bench/flops.py``; torch's FLOP counter
  on one real forward is printed beside it; on CPUs it misses SDPA attention).

Peak memory is per row on GPUs (``max_memory_allocated``), the process's peak RSS on CPUs. The
table comes last. Run by hand, never in the test suite; figures go to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root: run as a script

from bench.common import (  # noqa: E402
    build_network,
    clock,
    config_files,
    enter_bundle_root,
    matmul_rate,
    peak_memory_gib,
    print_table,
    reset_peak_memory,
    write_phantom_volume,
)
from bench.flops import slice_flops  # noqa: E402
from bundle.engines.batch import autocast  # noqa: E402
from bundle.inference.inferer import batches, model_inputs  # noqa: E402
from transforms import keys as TK  # noqa: E402
from transforms.preprocess import clip_preprocess, medsam_preprocess  # noqa: E402
from transforms.slicing import iter_slices  # noqa: E402

QUERY = "Where is the liver?"
SIZE_KEYS = ("text_config", "vision_config", "sam_config", "medisee_config")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="configs/tiny.json sizes (CPU smoke runs)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--shape", type=int, nargs=3, help="volume voxels (default 512 512 200; tiny: 64 64 16)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per setting (best is reported)")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--explain-batch", type=int, default=32, help="slices per generate() call when explaining every slice")
    parser.add_argument("--explain-slices", type=int, default=64, help="slices explained (a prefix of the volume)")
    parser.add_argument("--lisa-slices", type=int, default=8)
    args = parser.parse_args()
    args.shape = args.shape or ([64, 64, 16] if args.tiny else [512, 512, 200])
    return args


def generate(network, prompts, images: list[torch.Tensor], tokens: int) -> None:
    """Greedy ``generate()`` of exactly ``tokens`` tokens for each slice of ``images`` (one batch, same question)."""
    llava = network.llava
    ids = torch.tensor([prompts.prompt_ids(QUERY)] * len(images), device=images[0].device)
    pixels = clip_preprocess(images, llava.config.vision_config.image_size).to(llava.dtype)
    tokenizer = prompts.tokenizer
    llava.generate(
        input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=pixels, max_new_tokens=tokens,
        min_new_tokens=tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip


def count_flops(network, prompts, image: torch.Tensor) -> int:
    """torch's FLOP count of one slice's teacher-forced forward."""
    conversation = prompts.inference_example(QUERY)
    with FlopCounterMode(display=False) as counter:
        network(**model_inputs(network, [image], conversation, prompts.tokenizer.pad_token_id))
    return counter.get_total_flops()


class Bench:
    """The workflow built once on the device; each method times one way of running it."""

    def __init__(self, args: argparse.Namespace, volume: Path, out: Path) -> None:
        from monai.bundle import ConfigWorkflow

        self.device = torch.device(args.device)
        self.flow = ConfigWorkflow(
            config_file=config_files(train=False, tiny=args.tiny), workflow_type="infer", image=str(volume),
            query=QUERY, output_dir=str(out), overwrite=True, device=self.device, max_new_tokens=args.max_new_tokens,
        )  # fmt: skip
        self.flow.initialize()
        parser = self.flow.parser
        self.network, self.build_seconds = build_network(parser, self.device)
        self.inferer = parser.get_parsed_content("inferer")
        self.inferer.progress = False
        self.answer_generator = self.inferer.answer_generator
        self.prompts = parser.get_parsed_content("prompts")
        self.sizes = {key: parser.get_parsed_content(key) for key in SIZE_KEYS}
        entry = parser.get_parsed_content("datalist")[0]
        loaded = parser.get_parsed_content("preprocessing")(dict(entry))
        self.slices = list(iter_slices(loaded[TK.IMAGE].to(self.device), self.inferer.slice_axis))
        self.seq_len = len(self.prompts.inference_example(QUERY).input_ids)

    def run_workflow(self, batch_size: int, answer: bool) -> float:
        """Seconds of one end-to-end workflow run (load to written outputs)."""
        self.inferer.batch_size = batch_size
        self.inferer.answer_generator = self.answer_generator if answer else None
        start = clock(self.device)
        self.flow.run()
        return clock(self.device) - start

    def segment(self, slices: list[dict], batch_size: int) -> None:
        """The inferer's teacher-forced batches on already loaded slices (no I/O)."""
        self.inferer.batch_size = batch_size
        with torch.no_grad(), autocast(self.device):
            self.inferer.segment(slices, self.network, QUERY, "")

    def sam_encoder(self, slices: list[dict], batch_size: int) -> None:
        """The frozen SAM image encoder alone on the slices (preprocessing included)."""
        medsam, dtype = self.network.medsam, self.network.llava.dtype
        with torch.no_grad(), autocast(self.device):
            for batch in batches(slices, batch_size):
                images = [s[TK.IMAGE] for s in batch]
                medsam.encode_images(medsam_preprocess(images, medsam.image_size, medsam.config.resize).to(dtype))

    def explain_every_slice(self, slices: list[dict], batch_size: int, tokens: int) -> None:
        """Masks and a ``tokens``-token explanation for every slice, ``batch_size`` slices at a time."""
        with torch.no_grad(), autocast(self.device):
            for batch in batches(slices, batch_size):
                self.inferer.batch_size = batch_size
                self.inferer.segment(batch, self.network, QUERY, "")
                generate(self.network, self.prompts, [s[TK.IMAGE] for s in batch], tokens)

    def lisa_loop(self, slices: list[dict], tokens: int) -> None:
        """Per slice, batch 1: ``generate()`` the answer, then the mask (as LISA-style code does)."""
        with torch.no_grad(), autocast(self.device):
            for item in slices:
                generate(self.network, self.prompts, [item[TK.IMAGE]], tokens)
                self.inferer.batch_size = 1
                self.inferer.segment([item], self.network, QUERY, "")

    def timed(self, fn, repeats: int) -> tuple[float, float]:
        """(best seconds over ``repeats`` calls of ``fn`` after one warm-up call, peak memory GiB)."""
        fn()
        reset_peak_memory(self.device)
        best = float("inf")
        for _ in range(repeats):
            start = clock(self.device)
            fn()
            best = min(best, clock(self.device) - start)
        return best, peak_memory_gib(self.device)


def main() -> None:
    args = parse_args()
    enter_bundle_root()
    torch.manual_seed(0)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        start = clock(device)
        volume = write_phantom_volume(Path(tmp) / "phantom.nii.gz", args.shape)
        print(f"volume {args.shape} written in {clock(device) - start:.1f} s", flush=True)
        bench = Bench(args, volume, Path(tmp) / "out")
        logging.disable(logging.INFO)  # the engines' progress logs would bury the table
        n = len(bench.slices)
        print(f"network built on {device} in {bench.build_seconds:.1f} s; {n} slices; prompt {bench.seq_len} tokens", flush=True)

        flops = slice_flops(bench.sizes, bench.seq_len)
        per_slice = sum(flops.values())
        with torch.no_grad(), autocast(device):
            counted = count_flops(bench.network, bench.prompts, bench.slices[0][TK.IMAGE])
        rate = matmul_rate(device)
        ceiling = rate / per_slice
        print_table("FLOPs per slice (teacher-forced masks and boxes)", ["component", "GFLOP"],
                    [*((k, v / 1e9) for k, v in flops.items()), ("total (formula)", per_slice / 1e9),
                     ("total (torch FLOP counter)", counted / 1e9)])  # fmt: skip
        print(f"matmul rate {rate / 1e12:.1f} TFLOP/s -> ceiling {ceiling:.1f} slices/s", flush=True)

        rows = []
        for answer in (False, True):
            for batch_size in args.batch_sizes:
                seconds, peak = bench.timed(lambda: bench.run_workflow(batch_size, answer), args.repeats)
                label = "workflow, masks+boxes" + (" + 1 answer" if answer else "")
                rows.append((label, batch_size, seconds, n / seconds, peak))
        for batch_size in args.batch_sizes:
            seconds, peak = bench.timed(lambda: bench.segment(bench.slices, batch_size), args.repeats)
            rows.append(("model only, masks+boxes", batch_size, seconds, n / seconds, peak))
        batch_size = max(args.batch_sizes)
        seconds, peak = bench.timed(lambda: bench.sam_encoder(bench.slices, batch_size), args.repeats)
        rows.append(("SAM image encoder alone", batch_size, seconds, n / seconds, peak))
        explained = bench.slices[: args.explain_slices]
        seconds, peak = bench.timed(lambda: bench.explain_every_slice(explained, args.explain_batch, args.max_new_tokens), 1)
        rows.append((f"model only, + {args.max_new_tokens}-token answer per slice", args.explain_batch, seconds * n / len(explained), len(explained) / seconds, peak))
        lisa = bench.slices[: args.lisa_slices]
        seconds, peak = bench.timed(lambda: bench.lisa_loop(lisa, args.max_new_tokens), 1)
        rows.append((f"LISA-style loop (generate {args.max_new_tokens}, then mask)", 1, seconds * n / len(lisa), len(lisa) / seconds, peak))

    headers = ["setting", "batch", "volume s", "slices/s", "% ceiling", "peak GiB"]
    table = [(label, b, s, r, 100 * r / ceiling, p) for label, b, s, r, p in rows]
    table.append(("ceiling (matmul rate / FLOPs per slice)", "-", n / ceiling, ceiling, 100.0, "-"))
    sizes = "tiny" if args.tiny else "full-size"
    title = (f"MediSee inference, {sizes}, {bench.network.llava.dtype}, {device} "
             f"({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), volume "
             f"{'x'.join(map(str, args.shape))}, {per_slice / 1e12:.3g} TFLOP/slice, torch {torch.__version__}")  # fmt: skip
    print_table(title, headers, table)


if __name__ == "__main__":
    main()
