"""Peak memory of the inference workflow on a large volume (default 512x512x1000), tiny model.

    python bench/large_volume_rss.py [--shape 512 512 1000] [--batch-size 8] [--presence-threshold 0]

Writes a synthetic int16 CT volume (an uncompressed ``.nii``: gzip would dominate the time), then
runs ``configs/inference.json`` + ``configs/tiny.json`` on it in-process and prints the peak RSS
of the process before the run (model built) and after it, next to the sizes of the volume as
float32 and of all model inputs if they were built at once. Slices are fed to the model
``batch_size`` at a time, so the model's share stays bounded; the volume itself is held in memory
once, as float32 (read into it slab by slab, windowed in place), next to its uint8 mask. Every slice
keeps its mask by default (presence threshold 0): the untrained model's masks then cover much of
each slice, the 3D clean-up's worst case (with the configured threshold it finds nothing). Run it by
hand from the bundle root; it is never part of the test suite. Results: docs/guarantees.md.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIGS = [str(ROOT / "configs" / name) for name in ("model.json", "tiny.json", "inference.json")]
QUERY = "Where is the liver?"
MIB = 1024 * 1024
SAM_CHANNELS = 3
CLIP_CHANNELS = 3
FLOAT_BYTES = 4


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_volume(path: Path, shape: tuple[int, int, int]) -> None:
    """A body-like int16 volume (a soft-tissue ellipse in air, with noise), written slab by slab."""
    x, y = np.ogrid[: shape[0], : shape[1]]
    body = ((x - shape[0] / 2) / (0.4 * shape[0])) ** 2 + ((y - shape[1] / 2) / (0.3 * shape[1])) ** 2 < 1
    rng = np.random.default_rng(0)
    array = np.empty(shape, dtype=np.int16)
    for z in range(shape[2]):
        array[..., z] = np.where(body, 40, -1000) + rng.integers(-20, 20, size=shape[:2], dtype=np.int16)
    affine = np.diag([0.7, 0.7, 1.0, 1.0])
    nib.save(nib.Nifti1Image(array, affine), str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[512, 512, 1000])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--presence-threshold", type=float, default=0.0, help="0: every slice keeps its mask")
    args = parser.parse_args()
    shape = tuple(args.shape)

    import torch
    from monai.bundle import ConfigWorkflow

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        volume = Path(tmp) / "large.nii"
        write_volume(volume, shape)
        flow = ConfigWorkflow(
            config_file=CONFIGS, workflow_type="infer", bundle_root=str(ROOT), image=str(volume), query=QUERY,
            output_dir=str(Path(tmp) / "out"), batch_size=args.batch_size, generate_answer=False, logging_file=False,
            presence_threshold=args.presence_threshold,
        )  # fmt: skip
        flow.initialize()
        network = flow.parser.get_parsed_content("network")
        sam_size = network.medsam.image_size
        clip_size = network.llava.config.vision_config.image_size
        before = peak_rss_mib()
        start = time.perf_counter()
        flow.run()
        seconds = time.perf_counter() - start
        flow.finalize()
    slices = shape[2]
    per_slice = (SAM_CHANNELS * sam_size**2 + CLIP_CHANNELS * clip_size**2) * FLOAT_BYTES
    voxels = int(np.prod(shape))
    print(f"volume {shape} int16 on disk: {voxels * 2 / MIB:.0f} MiB; as float32: {voxels * 4 / MIB:.0f} MiB")
    print(f"model inputs of all {slices} slices at once (tiny sizes): {slices * per_slice / MIB:.0f} MiB")
    print(f"peak RSS with the tiny model built: {before:.0f} MiB")
    print(f"peak RSS after the run (batch_size {args.batch_size}): {peak_rss_mib():.0f} MiB")
    print(f"run: {seconds:.0f} s ({slices / seconds:.1f} slices/s)")


if __name__ == "__main__":
    main()
