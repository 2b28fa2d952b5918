"""Imports segment-anything's model classes without its package ``__init__``.

``segment_anything/__init__.py`` eagerly imports ``SamPredictor`` and
``SamAutomaticMaskGenerator``, whose modules import ``torchvision``. CPU machines here cannot
have torchvision (no CPU build is reachable, and the PyPI one fails to import and then breaks
``transformers``). The model classes themselves (``segment_anything.modeling``) and
``build_sam`` only need torch.

So, when the package is not already imported, we register an empty package object for
``segment_anything`` whose ``__path__`` points at the installed package; Python then imports
``segment_anything.modeling`` from the real files but never runs the package ``__init__``.
This is the only place in the project that touches the import machinery for this.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

_PACKAGE = "segment_anything"


def _register_package_without_init() -> None:
    if _PACKAGE in sys.modules:
        return  # already imported (fully, e.g. where torchvision works, or by an earlier call)
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("segment-anything is not installed: pip install segment-anything")
    package = types.ModuleType(_PACKAGE)
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.__package__ = _PACKAGE
    sys.modules[_PACKAGE] = package


def import_sam_module(name: str) -> types.ModuleType:
    """Returns ``segment_anything.<name>`` (e.g. ``modeling`` or ``build_sam``) without torchvision."""
    _register_package_without_init()
    return importlib.import_module(f"{_PACKAGE}.{name}")


_modeling = import_sam_module("modeling")
Sam = _modeling.Sam
ImageEncoderViT = _modeling.ImageEncoderViT
PromptEncoder = _modeling.PromptEncoder
MaskDecoder = _modeling.MaskDecoder
TwoWayTransformer = _modeling.TwoWayTransformer

__all__ = ["Sam", "ImageEncoderViT", "PromptEncoder", "MaskDecoder", "TwoWayTransformer", "import_sam_module"]
