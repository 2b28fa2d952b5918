"""Where a volume's seconds go outside the model: the workflow's loading and writing stages, timed one by one.

    python bench/workflow_stages.py                        # 512x512x200 phantom CT, tiny model
    python bench/workflow_stages.py --shape 256 256 100

The < 6 s target for a whole 200-slice volume includes loading and saving, which run on the CPU
whatever the GPU. This builds ``configs/inference.json`` + ``configs/tiny.json`` (the tiny model
keeps the model stage short; its time is not the GPU's), writes a phantom CT as ``.nii.gz`` and
runs the workflow's own pieces in its order: each preprocessing transform, the inferer, each
postprocessing transform (applied as MONAI's engines apply them). Best of ``--repeats`` per stage;
the table comes last. Run by hand, never in the test suite; figures go to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bundle root: run as a script

from bench.common import ROOT, config_files, peak_memory_gib, print_table, write_phantom_volume  # noqa: E402

QUERY = "Where is the liver?"


def best_of(repeats: int, fn: Callable[[], object]) -> tuple[float, object]:
    """(best seconds, last result) of ``repeats`` calls."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def stage_times(parser, repeats: int) -> list[tuple[str, float]]:
    """Seconds of each preprocessing transform, the inferer and each postprocessing transform, in order."""
    from monai.engines.utils import engine_apply_transform

    from bundle.inference import keys as K

    entry = dict(parser.get_parsed_content("datalist")[0])
    network, inferer = parser.get_parsed_content("network"), parser.get_parsed_content("inferer")
    inferer.progress = False
    rows = []
    data = entry
    for transform in parser.get_parsed_content("preprocessing").transforms:
        seconds, data = best_of(repeats, lambda t=transform, d=data: t(dict(d)))
        rows.append((f"pre: {type(transform).__name__}", seconds))
    with torch.no_grad():
        seconds, outputs = best_of(
            repeats, lambda: inferer(data[K.IMAGE], network, query=data[K.QUERY], name=data[K.NAME])
        )
    rows.append(("model (tiny; the GPU's figure is elsewhere)", seconds))
    batch, output = data, outputs
    for transform in parser.get_parsed_content("postprocessing").transforms:
        seconds, (batch, output) = best_of(
            repeats, lambda t=transform, b=batch, o=output: engine_apply_transform(dict(b), dict(o), t)
        )
        rows.append((f"post: {type(transform).__name__}", seconds))
    return rows


def main() -> None:
    parser_ = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser_.add_argument("--shape", type=int, nargs=3, default=[512, 512, 200])
    parser_.add_argument("--repeats", type=int, default=2)
    parser_.add_argument("--batch-size", type=int, default=32)
    args = parser_.parse_args()
    torch.manual_seed(0)
    from monai.bundle import ConfigWorkflow

    with tempfile.TemporaryDirectory() as tmp:
        volume = write_phantom_volume(Path(tmp) / "phantom.nii.gz", args.shape)
        size_mib = volume.stat().st_size / 2**20
        flow = ConfigWorkflow(
            config_file=config_files(train=False, tiny=True), workflow_type="infer", bundle_root=str(ROOT),
            image=str(volume), query=QUERY,
            output_dir=str(Path(tmp) / "out"), overwrite=True, generate_answer=False, batch_size=args.batch_size,
        )  # fmt: skip
        flow.initialize()
        logging.disable(logging.INFO)
        rows = stage_times(flow.parser, args.repeats)
    total = sum(seconds for _, seconds in rows)
    outside = total - sum(seconds for name, seconds in rows if name.startswith("model"))
    table = [(name, seconds, 100 * seconds / total) for name, seconds in rows]
    table += [("outside the model", outside, 100 * outside / total), ("all", total, 100.0)]
    peak = peak_memory_gib(torch.device("cpu"))
    title = (
        f"Workflow stages, tiny model, {'x'.join(map(str, args.shape))} int16 phantom ({size_mib:.0f} MiB .nii.gz), "
        f"batch {args.batch_size}, {torch.get_num_threads()} threads, peak RSS {peak:.2f} GiB"
    )
    print_table(title, ["stage", "seconds", "%"], table)


if __name__ == "__main__":
    main()
