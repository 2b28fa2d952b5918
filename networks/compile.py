"""``torch.compile`` of chosen MediSee submodules, in place (the ``compile`` config id of inference).

Why in place (``nn.Module.compile``) and per submodule: the compiled module keeps its parameters,
``state_dict`` keys and checkpoints unchanged (``torch.compile(module)`` would wrap it in an
``OptimizedModule`` and prefix every key with ``_orig_mod.``), and compiling the heavy parts only
keeps dynamo away from the Python-heavy glue (per-image mask decoding, box conversion).

What the parts need (checked on CPU with torch 2.13 and transformers 5.23 through
``TORCH_LOGS=graph_breaks,recompiles``):

- SAM image encoder: one graph, no graph breaks. The last batch of a volume is usually smaller;
  dynamo's automatic dynamic shapes recompile once with a symbolic batch size, which then serves
  other batch sizes (no ``dynamic=True`` needed, and none is set: SAM2's encoder is known to go
  wrong under ``dynamic=True``, pytorch/pytorch#153366). A batch of one slice gets a graph of its
  own (dynamo specialises sizes 0 and 1), and on CPU the convolution guards the symbolic size to
  2..15, so a batch of 16 or more compiles once more: a handful of compilations per process.
- Mistral (``llava.model.language_model``): no graph breaks. Teacher-forced batches recompile once
  for the smaller last batch, like SAM. ``generate()`` (the answer) calls the same module with a
  ``DynamicCache``: three more recompiles on its first call (prefill with a cache, first decoding
  step, then a symbolic cache length), about five graphs in all, within dynamo's default limit of
  eight per function. transformers' own generate-time compilation stays off (it only applies to
  static caches).
- CLIP vision tower (``all`` only): graph breaks on its first call only, where transformers
  installs its output-capturing hooks (a lock and hook registration); later calls run without any.

Compilation is lazy: the first forward pass of each part pays for it (with inductor on a 2-core
CPU, 38 s for the tiny config's SAM encoder with a cold cache, 3 s with inductor's on-disk cache
warm), so ``bench/infer_gpu.py`` reports each row's first call separately.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from common.errors import ConfigError

SAM_IMAGE_ENCODER = "medsam.sam.image_encoder"
LANGUAGE_MODEL = "llava.model.language_model"
VISION_TOWER = "llava.model.vision_tower"

COMPILE_PARTS: dict[str, tuple[str, ...]] = {
    "none": (),
    "sam": (SAM_IMAGE_ENCODER,),
    "llm": (LANGUAGE_MODEL,),
    "all": (SAM_IMAGE_ENCODER, LANGUAGE_MODEL, VISION_TOWER),
}
"""Config value -> submodules (names relative to :class:`networks.MediSee`) compiled for it."""

DEFAULT_BACKEND = "inductor"
COMMON_BACKENDS = ("inductor", "aot_eager", "eager")
"""Named in the error for an unknown backend (torch knows about twenty, most for debugging)."""


def compile_parts(value: Any) -> tuple[str, ...]:
    """The submodule names the ``compile`` setting selects.

    Args:
        value: ``none``, ``sam``, ``llm`` or ``all`` (any case; None, as ``--compile None`` arrives, is ``none``).

    Raises:
        ConfigError: naming config 'compile' and the allowed values.
    """
    key = "none" if value is None else str(value).strip().lower()
    if key not in COMPILE_PARTS:
        raise ConfigError(f"config 'compile' must be one of {', '.join(COMPILE_PARTS)}, got {value!r}")
    return COMPILE_PARTS[key]


def is_compiled(module: nn.Module) -> bool:
    """Whether ``module`` was compiled in place (``nn.Module.compile``)."""
    return getattr(module, "_compiled_call_impl", None) is not None


def compile_network(
    network: nn.Module, parts: Any = "none", backend: str | Callable[..., Any] = DEFAULT_BACKEND
) -> nn.Module:
    """Compiles the submodules chosen by ``parts`` (the ``compile`` setting) in place and returns ``network``.

    Args:
        network: a :class:`networks.MediSee` (or anything holding the same submodule names).
        parts: the ``compile`` setting: ``none`` (nothing), ``sam`` (the SAM image encoder), ``llm`` (the LLaVA language
            model, used by the masks and by ``generate()``) or ``all`` (both, plus the CLIP vision tower).
        backend: a ``torch.compile`` backend name (``inductor``; ``aot_eager`` and ``eager`` trace
            without generating code) or a backend callable.

    Returns:
        The same ``network`` object; parameters and ``state_dict`` keys are unchanged.

    Raises:
        ConfigError: an unknown ``compile`` value or ``compile_backend`` name (naming the config key).
    """
    names = compile_parts(parts)
    if names and isinstance(backend, str):
        check_backend(backend)
    for name in names:
        network.get_submodule(name).compile(backend=backend)
    return network


def check_backend(backend: str) -> None:
    """Refuses a backend name ``torch.compile`` does not know, before any compilation starts.

    Raises:
        ConfigError: naming config 'compile_backend' and the known backends.
    """
    from torch._dynamo import list_backends  # torch.compile's own registry; imported only when compiling

    if backend not in list_backends(exclude_tags=()):
        raise ConfigError(
            f"config 'compile_backend' must be a torch.compile backend such as {', '.join(COMMON_BACKENDS)} "
            f"(all: torch._dynamo.list_backends(exclude_tags=())), got {backend!r}"
        )
