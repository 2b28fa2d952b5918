"""The bundle's one precision policy: the config's ``dtype`` decides storage and autocast together.

``dtype`` (``float32``, ``bfloat16`` or ``float16``) is what the network's weights are stored
in. A low-precision ``dtype`` also turns on ``torch.autocast`` in that dtype for every engine
(training, validation, volume inference, the deploy app), on whatever device the engine runs:
autocast keeps reductions such as softmax and norms in float32, and lets float32 parameters
(the trainable set's master weights, :func:`networks.trainable.upcast_trainable`) meet bf16
activations. A float32 model runs without autocast, so CPU runs stay exact by default.

The engines carry the policy as MONAI's own ``amp`` / ``amp_kwargs`` arguments.
"""

from __future__ import annotations

import contextlib

import torch

from networks.build import torch_dtype


def uses_autocast(dtype: str) -> bool:
    """Whether a model stored in ``dtype`` (a config name) runs under autocast: the engines' ``amp``."""
    return torch_dtype(dtype) != torch.float32


def autocast_kwargs(dtype: str) -> dict:
    """``torch.autocast`` keyword arguments for a model stored in ``dtype``: the engines' ``amp_kwargs``."""
    return {"dtype": torch_dtype(dtype)} if uses_autocast(dtype) else {}


def autocast(
    device: torch.device | str, amp: bool, amp_kwargs: dict | None = None
) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device`` when ``amp`` is on, else a context that changes nothing."""
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, **(amp_kwargs or {}))


def engine_autocast(engine) -> contextlib.AbstractContextManager:
    """:func:`autocast` with a MONAI engine's own ``amp`` / ``amp_kwargs`` on its device."""
    return autocast(engine.state.device, engine.amp, engine.amp_kwargs)
