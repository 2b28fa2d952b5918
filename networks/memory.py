"""Will it fit? The memory a model needs, counted before it is built, against the memory that is free.

A random full-size MediSee is 7.6 B parameters, built in float32: about 28 GiB. On a 24 GiB
machine the kernel kills such a build without a word (exit -9), after minutes. So the model is
first assembled on PyTorch's ``meta`` device (shapes only, no memory, a fraction of a second),
its parameters counted, and the bytes compared with the free RAM (``MemAvailable``, within the
cgroup's limit) or the free memory of the GPU (``torch.cuda.mem_get_info``). Weights only: the
activations of a forward pass come on top, so a model that passes may still be tight.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from common.errors import ConfigError

GIB = 2**30
MEMINFO = Path("/proc/meminfo")
MEMINFO_KEY = "MemAvailable:"
MEMINFO_UNIT = 1024
"""``/proc/meminfo`` reports KiB."""
CGROUP_LIMITS = (
    (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current")),  # cgroup v2
    (Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"), Path("/sys/fs/cgroup/memory/memory.usage_in_bytes")),  # v1
)
UNLIMITED_CGROUP = 1 << 60
"""cgroup v1 writes a huge number for "no limit" (v2 writes ``max``)."""


@dataclass(frozen=True)
class MemoryNeed:
    """Bytes a model's parameters take.

    Attributes:
        parameters: number of parameters.
        build_bytes: while building (randomly initialised parts are made in float32, then cast).
        run_bytes: once built, in the configured dtype (what the model's device holds).
    """

    parameters: int
    build_bytes: int
    run_bytes: int


def gib(n_bytes: float) -> str:
    """Bytes as GiB for a message."""
    return f"{n_bytes / GIB:.1f} GiB"


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def free_ram() -> int | None:
    """Bytes of RAM a new allocation can take: ``MemAvailable``, capped by the cgroup's room; None if unknown."""
    free = None
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith(MEMINFO_KEY):
                free = int(line.split()[1]) * MEMINFO_UNIT
                break
    except (OSError, ValueError, IndexError):
        free = None
    if free is None:
        try:
            import psutil
        except ImportError:
            return None
        free = int(psutil.virtual_memory().available)
    for limit_file, usage_file in CGROUP_LIMITS:
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < UNLIMITED_CGROUP:
            free = min(free, max(limit - usage, 0))
    return free


def free_memory(device: torch.device | str) -> int | None:
    """Free bytes on ``device``: RAM for the CPU (and ``meta``: nothing is allocated), the GPU's own for CUDA."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        return free_ram()
    return None  # other backends do not say; no check


def check_fits(needed: int, device: torch.device | str, what: str) -> None:
    """Refuses, before anything is allocated, when ``needed`` bytes exceed what ``device`` has free.

    Args:
        needed: bytes about to be allocated.
        device: where they go.
        what: what needs them, for the message (e.g. ``the model (7.6 B parameters, bfloat16)``).

    Raises:
        ConfigError: one line with both figures.
    """
    device = torch.device(device)
    if device.type == "meta":
        return
    free = free_memory(device)
    if free is not None and needed > free:
        where = "RAM" if device.type == "cpu" else f"{device}"
        raise ConfigError(
            f"{what} needs about {gib(needed)} and {gib(free)} of {where} are free: it cannot be built here "
            "(a smaller config, or a machine with more memory)"
        )


def parameter_bytes(model: torch.nn.Module, dtype: torch.dtype, random_prefixes: tuple[str, ...]) -> MemoryNeed:
    """The memory of ``model``'s parameters (a ``meta``-device copy is enough: only shapes are read).

    Args:
        model: the assembled model.
        dtype: the configured weights' dtype.
        random_prefixes: parameter-name prefixes of the parts initialised at random (built in float32).
    """
    run_size = torch.empty((), dtype=dtype).element_size()
    float_size = torch.empty((), dtype=torch.float32).element_size()
    parameters = build = 0
    for name, param in model.named_parameters():
        parameters += param.numel()
        random = name.startswith(random_prefixes)
        build += param.numel() * (max(float_size, run_size) if random else run_size)
    return MemoryNeed(parameters, build, parameters * run_size)


def describe(need: MemoryNeed, dtype: torch.dtype) -> str:
    """``the model (7.57 B parameters, bfloat16)`` for messages."""
    name = str(dtype).removeprefix("torch.")
    return f"the model ({need.parameters / 1e9:.2f} B parameters, {name})"
