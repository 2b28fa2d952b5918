"""What the GPU benchmarks share: the model built on its device, clocks, memory, the matmul ceiling, tables.

The full-size model has 7.5 B parameters: initialising them on the CPU takes minutes, so the
network is parsed inside a ``torch.device`` context and every parameter is created and randomly
initialised where it will run (:func:`build_network`). The precision policy stays the bundle's:
parameters are made in float32 and cast to the config's ``dtype``, as ``networks.build_medisee`` does.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bundle.phantoms import generate_phantom  # noqa: E402

GIB = 2**30
PHANTOM_BASE = (128, 128, 64)
"""Largest grid the phantom is drawn at; bigger volumes are interpolated from it
(drawing 512x512x200 takes a minute)."""
MATMUL_SIZE = {"cuda": 8192, "cpu": 1024}
MATMUL_DTYPE = {"cuda": torch.bfloat16, "cpu": torch.float32}


def config_files(train: bool, tiny: bool) -> list[str]:
    """The bundle's config list: the model (at the tiny sizes for CPU smoke runs), then inference or training.

    Pass ``bundle_root=str(ROOT)`` with it: the configs' paths hang on ``bundle_root``, never on the cwd.
    """
    files = [
        "configs/model.json",
        *(["configs/tiny.json"] if tiny else []),
        f"configs/{'train' if train else 'inference'}.json",
    ]
    return [str(ROOT / f) for f in files]


def sync(device: torch.device) -> None:
    """Waits for queued GPU work, so a clock reading covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clock(device: torch.device) -> float:
    """Seconds (perf counter) after all queued work on ``device`` is done."""
    sync(device)
    return time.perf_counter()


def reset_peak_memory(device: torch.device) -> None:
    """Starts a new peak-memory window (CUDA only; the CPU reports the process's peak RSS)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gib(device: torch.device) -> float:
    """Peak GPU memory allocated since the last reset, or the process's peak RSS on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / GIB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB  # Linux reports KiB


def build_network(parser, device: torch.device) -> tuple[torch.nn.Module, float]:
    """Parses the config's ``network`` with every tensor created on ``device``; returns it and the seconds taken."""
    start = clock(device)
    with torch.device(device):
        network = parser.get_parsed_content("network")
    return network, clock(device) - start


def matmul_rate(device: torch.device, repeats: int = 20) -> float:
    """Achieved FLOP/s of a large square matmul (bf16 on GPUs, float32 on CPUs): the ceiling of dense work."""
    size, dtype = MATMUL_SIZE.get(device.type, MATMUL_SIZE["cpu"]), MATMUL_DTYPE.get(device.type, torch.float32)
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b  # warm-up: kernel selection, clocks
    start = clock(device)
    for _ in range(repeats):
        a @ b
    return repeats * 2 * size**3 / (clock(device) - start)


def write_phantom_volume(path: Path, shape: Sequence[int], seed: int = 0) -> Path:
    """Writes a phantom CT volume of ``shape`` voxels (int16 HU) as NIfTI, interpolated from a coarser draw."""
    base = tuple(min(s, b) for s, b in zip(shape, PHANTOM_BASE))
    phantom = generate_phantom(seed=seed, index=0, shape=base)
    image, affine = phantom.image, np.array(phantom.affine, dtype=np.float64)
    if tuple(shape) != base:
        volume = torch.from_numpy(image.astype(np.float32))[None, None]
        image = (
            F.interpolate(volume, size=tuple(shape), mode="trilinear", align_corners=False)[0, 0]
            .round()
            .numpy()
            .astype(np.int16)
        )
        affine[:3, :3] = affine[:3, :3] @ np.diag(
            np.array(base, dtype=np.float64) / np.array(shape)
        )  # same field of view
    nib.save(nib.Nifti1Image(image, affine), str(path))
    return path


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Prints a plain-text table, right-aligned, numbers with sensible precision."""

    def text(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return str(value)

    cells = [[text(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)), flush=True)
