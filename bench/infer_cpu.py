"""CPU inference benchmark: the tiny config on a phantom volume, through the bundle's own workflow.

    python bench/infer_cpu.py [--shape 96 96 32] [--batch-sizes 1 8 32] [--repeats 2]

Runs ``configs/inference.json`` + ``configs/tiny.json`` in-process (load -> slices -> model ->
written outputs) for each batch size, with and without the generated answer, and prints slices/s,
end-to-end seconds per volume and the process's peak RSS as a table (last). Run it from the
bundle root; it is never part of the test suite.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bundle.phantoms import generate_phantom  # noqa: E402

CONFIGS = [str(ROOT / "configs" / name) for name in ("model.json", "tiny.json", "inference.json")]
QUERY = "Which organ on the patient's right makes bile? Please output segmentation mask and location bounding box."


def run_once(volume: Path, out: Path, batch_size: int, answer: bool) -> float:
    """Seconds for one end-to-end run of the inference workflow."""
    from monai.bundle import ConfigWorkflow

    start = time.perf_counter()
    flow = ConfigWorkflow(
        config_file=CONFIGS, workflow_type="infer", bundle_root=str(ROOT), image=str(volume), query=QUERY, output_dir=str(out),
        batch_size=batch_size, generate_answer=answer, max_new_tokens=16, overwrite=True,
    )  # fmt: skip
    flow.initialize()
    flow.run()
    flow.finalize()
    return time.perf_counter() - start


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[96, 96, 32])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per setting (best is reported)")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        phantom = generate_phantom(seed=0, index=0, shape=tuple(args.shape))
        volume = Path(tmp) / "phantom.nii.gz"
        nib.save(nib.Nifti1Image(phantom.image, phantom.affine), volume)
        slices = args.shape[2]
        run_once(volume, Path(tmp) / "warmup", args.batch_sizes[0], answer=False)  # imports, first build
        rows = []
        for answer in (False, True):
            for batch_size in args.batch_sizes:
                best = min(run_once(volume, Path(tmp) / "out", batch_size, answer) for _ in range(args.repeats))
                rows.append((batch_size, answer, best, slices / best, peak_rss_mib()))
    print(
        f"\ntiny config, phantom {args.shape[0]}x{args.shape[1]}x{slices}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"{'batch':>6} {'answer':>7} {'volume s':>9} {'slices/s':>9} {'peak RSS MiB':>13}")
    for batch_size, answer, seconds, rate, rss in rows:
        print(f"{batch_size:>6} {str(answer):>7} {seconds:>9.2f} {rate:>9.1f} {rss:>13.0f}")


if __name__ == "__main__":
    main()
