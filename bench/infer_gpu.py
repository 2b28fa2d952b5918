"""GPU inference benchmark: the full-size MediSee (random weights, bf16) through the bundle's own workflow.

    python bench/infer_gpu.py                              # one GPU: full size, bf16, 512x512x200 volume
    python bench/infer_gpu.py --tiny --device cpu          # smoke run on a CPU (tiny sizes, small volume)
    python bench/infer_gpu.py --compile none sam llm all   # the torch.compile lever, one block of rows per mode
    python bench/infer_gpu.py --volumes 4 --num-workers 1  # the loading lever: next volume loads during inference
    python bench/infer_gpu.py --answer-cache static        # the decoding lever: static KV cache, CUDA graphs
    python bench/infer_gpu.py --attn eager                 # the attention-kernel lever (sdpa is the default)

Builds ``configs/inference.json`` (+ ``configs/tiny.json`` with ``--tiny``) on the device, writes a
phantom CT volume and measures, side by side:

- the workflow end to end (load -> slices -> model -> mask, json and overlay written) for each
  batch size, masks and boxes only and with the one generated answer: seconds per volume, slices/s;
- the model alone on the loaded volume (the inferer's teacher-forced batches, no I/O): slices/s;
  and again with the slices' CLIP and SAM encodings cached, as a session's follow-up questions run;
- an explanation of ``--max-new-tokens`` tokens on every slice (masks + batched ``generate()``);
- a LISA-style loop: per slice, batch 1, ``generate()`` then the mask, on ``--lisa-slices`` slices;
- the ceiling: measured matmul rate / FLOPs per slice (``bench/flops.py``; torch's FLOP counter
  on one real forward is printed beside it; on CPUs it misses SDPA attention).

Each ``--compile`` mode (the ``compile`` config id) builds the network afresh and measures every
row again, labelled with the mode; "1st s" is the untimed warm-up call of each row, which with a
compile mode holds the compilation (and recompilations for new batch sizes). ``--volumes`` copies
the phantom so the workflow rows cover a list; they report seconds per volume. ``--num-workers``
is the ``num_workers`` config id, ``--answer-cache`` the ``answer_cache`` one (also used by the
explanation and LISA rows) and ``--attn`` the ``attn_implementation`` one. Peak memory is per row
on GPUs (``max_memory_allocated``), the process's peak RSS on CPUs. The table comes last. Run by
hand, never in the test suite; figures go to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

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
    write_phantom_volume,
)
from bench.flops import slice_flops  # noqa: E402
from bundle.engines import precision  # noqa: E402
from bundle.inference.answer import CACHES  # noqa: E402
from bundle.inference.encodings import SliceEncodings  # noqa: E402
from bundle.inference.inferer import batches, slice_batch  # noqa: E402
from networks.compile import COMPILE_PARTS  # noqa: E402
from networks.llava import ATTENTION_IMPLEMENTATIONS  # noqa: E402
from transforms import keys as TK  # noqa: E402
from transforms.preprocess import clip_preprocess, medsam_preprocess  # noqa: E402
from transforms.reassemble import empty_mask_volume  # noqa: E402
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
    parser.add_argument(
        "--explain-batch", type=int, default=32, help="slices per generate() call when explaining every slice"
    )
    parser.add_argument("--explain-slices", type=int, default=64, help="slices explained (a prefix of the volume)")
    parser.add_argument("--lisa-slices", type=int, default=8)
    parser.add_argument("--compile", nargs="+", choices=list(COMPILE_PARTS), default=["none"],
                        help="compile config id(s); each mode gets its own rows")  # fmt: skip
    parser.add_argument("--compile-backend", default="inductor")
    parser.add_argument("--num-workers", type=int, default=0, help="num_workers config id (volumes loaded ahead)")
    parser.add_argument("--volumes", type=int, default=1, help="copies of the phantom the workflow rows infer")
    parser.add_argument(
        "--answer-cache", choices=CACHES, default="dynamic", help="answer_cache config id (static: CUDA graphs)"
    )
    parser.add_argument(
        "--attn", choices=ATTENTION_IMPLEMENTATIONS, default="sdpa", help="attn_implementation config id"
    )
    args = parser.parse_args()
    args.shape = args.shape or ([64, 64, 16] if args.tiny else [512, 512, 200])
    return args


def generate(network, prompts, images: list[torch.Tensor], tokens: int, cache: str = "dynamic") -> None:
    """Greedy ``generate()`` of exactly ``tokens`` tokens for each slice of ``images`` (one batch, same question)."""
    llava = network.llava
    ids = torch.tensor([prompts.prompt_ids(QUERY)] * len(images), device=images[0].device)
    pixels = clip_preprocess(images, llava.config.vision_config.image_size).to(llava.dtype)
    tokenizer = prompts.tokenizer
    llava.generate(
        input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=pixels, max_new_tokens=tokens,
        min_new_tokens=tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        cache_implementation=None if cache == "dynamic" else cache,
    )  # fmt: skip


def count_flops(network, prompts, image: torch.Tensor) -> int:
    """torch's FLOP count of one slice's teacher-forced forward."""
    conversation = prompts.inference_example(QUERY)
    # compiled parts would run generated kernels the counter cannot see
    with torch.compiler.set_stance("force_eager"), FlopCounterMode(display=False) as counter:
        network(
            **slice_batch(network, [image], conversation, prompts.tokenizer.pad_token_id).model_inputs(targets=False)
        )
    return counter.get_total_flops()


class Bench:
    """The workflow built once on the device; each method times one way of running it."""

    def __init__(self, args: argparse.Namespace, images: Path, out: Path, compile_mode: str) -> None:
        from monai.bundle import ConfigWorkflow

        self.device = torch.device(args.device)
        self.flow = ConfigWorkflow(
            config_file=config_files(train=False, tiny=args.tiny), workflow_type="infer", bundle_root=str(ROOT),
            image=str(images),
            query=QUERY, output_dir=str(out), overwrite=True, device=self.device, max_new_tokens=args.max_new_tokens,
            compile=compile_mode, compile_backend=args.compile_backend, num_workers=args.num_workers,
            answer_cache=args.answer_cache, attn_implementation=args.attn, random_weights=True,
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
        volume = loaded[TK.IMAGE].to(self.device)
        self.slices = list(iter_slices(volume, self.inferer.slice_axis))
        self.mask = empty_mask_volume(volume)  # the inferer writes each slice's mask into it
        self.seq_len = len(self.prompts.inference_example(QUERY).input_ids)
        self.amp = parser.get_parsed_content("amp"), parser.get_parsed_content("amp_kwargs")
        self.answer_cache = args.answer_cache

    def autocast(self):
        """The bundle's precision policy (autocast in the model's dtype when it is a low-precision one)."""
        return precision.autocast(self.device, *self.amp)

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
        with torch.no_grad(), self.autocast():
            self.inferer.segment(slices, self.network, QUERY, "", self.mask)

    def follow_up(self, slices: list[dict], batch_size: int, encodings: SliceEncodings) -> None:
        """The same batches with the slices' encodings cached (a session's follow-up question; filled on first call)."""
        self.inferer.batch_size = batch_size
        with torch.no_grad(), self.autocast():
            self.inferer.segment(slices, self.network, QUERY, "", self.mask, encodings=encodings)

    def sam_encoder(self, slices: list[dict], batch_size: int) -> None:
        """The frozen SAM image encoder alone on the slices (preprocessing included)."""
        medsam, dtype = self.network.medsam, self.network.llava.dtype
        with torch.no_grad(), self.autocast():
            for batch in batches(slices, batch_size):
                images = [s[TK.IMAGE] for s in batch]
                medsam.encode_images(medsam_preprocess(images, medsam.image_size, medsam.config.resize).to(dtype))

    def explain_every_slice(self, slices: list[dict], batch_size: int, tokens: int) -> None:
        """Masks and a ``tokens``-token explanation for every slice, ``batch_size`` slices at a time."""
        with torch.no_grad(), self.autocast():
            for batch in batches(slices, batch_size):
                self.inferer.batch_size = batch_size
                self.inferer.segment(batch, self.network, QUERY, "", self.mask)
                generate(self.network, self.prompts, [s[TK.IMAGE] for s in batch], tokens, self.answer_cache)

    def lisa_loop(self, slices: list[dict], tokens: int) -> None:
        """Per slice, batch 1: ``generate()`` the answer, then the mask (as LISA-style code does)."""
        with torch.no_grad(), self.autocast():
            for item in slices:
                generate(self.network, self.prompts, [item[TK.IMAGE]], tokens, self.answer_cache)
                self.inferer.batch_size = 1
                self.inferer.segment([item], self.network, QUERY, "", self.mask)

    def timed(self, fn, repeats: int) -> tuple[float, float, float]:
        """(best seconds over ``repeats`` calls of ``fn`` after one warm-up call, peak memory GiB, warm-up seconds)."""
        start = clock(self.device)
        fn()
        first = clock(self.device) - start
        reset_peak_memory(self.device)
        best = float("inf")
        for _ in range(repeats):
            start = clock(self.device)
            fn()
            best = min(best, clock(self.device) - start)
        return best, peak_memory_gib(self.device), first


def write_volumes(folder: Path, shape: list[int], count: int) -> Path:
    """``count`` copies of one phantom volume in ``folder`` (the workflow's ``--image``)."""
    folder.mkdir()
    first = write_phantom_volume(folder / "phantom_0.nii.gz", shape)
    for index in range(1, count):
        shutil.copyfile(first, folder / f"phantom_{index}.nii.gz")
    return folder


def measure(bench: Bench, args: argparse.Namespace, mode: str) -> list[tuple]:
    """Rows (label, batch, seconds per volume, slices/s, peak GiB, warm-up seconds) of one compile mode."""
    n, tag, rows = len(bench.slices), f" [compile {mode}]", []

    def add(label: str, batch: int, fn: Callable[[], object], slices: int, repeats: int = args.repeats) -> None:
        seconds, peak, first = bench.timed(fn, repeats)  # ``slices`` slices per call: per volume of n slices
        rows.append((label + tag, batch, seconds * n / slices, slices / seconds, peak, first))

    for answer in (False, True):
        label = "workflow, masks+boxes" + (" + 1 answer" if answer else "")
        for batch_size in args.batch_sizes:
            add(label, batch_size, lambda: bench.run_workflow(batch_size, answer), n * args.volumes)
    for batch_size in args.batch_sizes:
        add("model only, masks+boxes", batch_size, lambda: bench.segment(bench.slices, batch_size), n)
    batch_size = max(args.batch_sizes)
    encodings = SliceEncodings()  # the untimed warm-up call fills it: the timed calls are follow-ups
    add(
        "model only, cached encodings (follow-up)",
        batch_size,
        lambda: bench.follow_up(bench.slices, batch_size, encodings),
        n,
    )
    add("SAM image encoder alone", batch_size, lambda: bench.sam_encoder(bench.slices, batch_size), n)
    explained, tokens = bench.slices[: args.explain_slices], args.max_new_tokens
    add(f"model only, + {tokens}-token answer per slice", args.explain_batch,
        lambda: bench.explain_every_slice(explained, args.explain_batch, tokens), len(explained), 1)  # fmt: skip
    lisa = bench.slices[: args.lisa_slices]
    add(f"LISA-style loop (generate {tokens}, then mask)", 1, lambda: bench.lisa_loop(lisa, tokens), len(lisa), 1)
    return rows


def release(bench: Bench) -> None:
    """Frees a mode's network and its compiled code before the next mode builds its own."""
    del bench.network, bench.flow, bench.inferer, bench.answer_generator, bench.prompts
    gc.collect()
    torch.compiler.reset()  # compiled code is cached per function: the next mode starts with none
    if bench.device.type == "cuda":
        torch.cuda.empty_cache()


def flops_and_ceiling(bench: Bench, device: torch.device) -> tuple[float, float, torch.dtype]:
    """(FLOPs per slice by formula, ceiling slices/s, model dtype); prints the FLOP table and the matmul rate."""
    flops = slice_flops(bench.sizes, bench.seq_len)
    per_slice = sum(flops.values())
    with torch.no_grad(), bench.autocast():
        counted = count_flops(bench.network, bench.prompts, bench.slices[0][TK.IMAGE])
    rate = matmul_rate(device)
    ceiling = rate / per_slice
    print_table("FLOPs per slice (teacher-forced masks and boxes)", ["component", "GFLOP"],
                [*((k, v / 1e9) for k, v in flops.items()), ("total (formula)", per_slice / 1e9),
                 ("total (torch FLOP counter)", counted / 1e9)])  # fmt: skip
    print(f"matmul rate {rate / 1e12:.1f} TFLOP/s -> ceiling {ceiling:.1f} slices/s", flush=True)
    return per_slice, ceiling, bench.network.llava.dtype


def main() -> None:
    args = parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        start = clock(device)
        images = write_volumes(Path(tmp) / "images", args.shape, args.volumes)
        print(f"{args.volumes} volume(s) {args.shape} written in {clock(device) - start:.1f} s", flush=True)
        logging.disable(logging.INFO)  # the engines' progress logs would bury the table
        for index, mode in enumerate(args.compile):
            bench = Bench(args, images, Path(tmp) / "out", mode)
            n = len(bench.slices)
            print(f"[compile {mode}] network built on {device} in {bench.build_seconds:.1f} s; {n} slices; "
                  f"prompt {bench.seq_len} tokens", flush=True)  # fmt: skip
            if index == 0:
                per_slice, ceiling, dtype = flops_and_ceiling(bench, device)
            rows += measure(bench, args, mode)
            release(bench)

    headers = ["setting", "batch", "volume s", "slices/s", "% ceiling", "peak GiB", "1st s"]
    table = [(label, b, s, r, 100 * r / ceiling, p, f) for label, b, s, r, p, f in rows]
    table.append(("ceiling (matmul rate / FLOPs per slice)", "-", n / ceiling, ceiling, 100.0, "-", "-"))
    sizes = "tiny" if args.tiny else "full-size"
    title = (f"MediSee inference, {sizes}, {dtype}, {device} "
             f"({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), volume "
             f"{'x'.join(map(str, args.shape))}, {per_slice / 1e12:.3g} TFLOP/slice, num_workers "
             f"{args.num_workers}, {args.volumes} volume(s), compile backend {args.compile_backend}, "
             f"answer cache {args.answer_cache}, attention {args.attn}, torch {torch.__version__}")  # fmt: skip
    print_table(title, headers, table)


if __name__ == "__main__":
    main()
