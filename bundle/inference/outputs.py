"""Where outputs go: ``OUT/NAME_mask.nii.gz``, ``OUT/NAME_result.json``, ``OUT/NAME_overlay.png``.

Existing outputs are never replaced unless ``overwrite`` is set: the whole datalist is checked
before any model work (:meth:`OutputLayout.check_free`), and each writer checks its file again
(:meth:`OutputLayout.claim`) before its atomic rename.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bundle.inference import keys as K
from bundle.inference.settings import flag
from common.errors import DataError
from common.files import check_writable

MAX_LISTED = 3
"""Existing outputs named in the error message before eliding the rest."""


class OutputLayout:
    """Output paths of each volume, and the overwrite rule.

    Args:
        output_dir: folder for all outputs (created when the first file is written).
        overwrite: replace existing outputs instead of refusing to run.
    """

    def __init__(self, output_dir: str | os.PathLike, overwrite: bool | str = False) -> None:
        self.output_dir = Path(output_dir).expanduser()
        self.overwrite = flag(overwrite, "overwrite")

    def path(self, name: str, kind: str) -> Path:
        """The path of output ``kind`` (see :data:`bundle.inference.keys.OUTPUT_SUFFIXES`) for volume ``name``."""
        return self.output_dir / f"{name}{K.OUTPUT_SUFFIXES[kind]}"

    def paths(self, name: str) -> dict[str, Path]:
        """Every output path of volume ``name``, by kind."""
        return {kind: self.path(name, kind) for kind in K.OUTPUT_SUFFIXES}

    def check_free(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Refuses to start when an output of any datalist entry exists (unless ``overwrite``).

        Also checks that the folder can be written, so an unwritable ``output_dir`` costs no model work.

        Raises:
            DataError: naming the existing files, or the folder that cannot be written.
        """
        self.check_writable()
        if self.overwrite:
            return
        taken = [path for entry in entries for path in self.paths(entry[K.NAME]).values() if path.exists()]
        if taken:
            listed = ", ".join(str(p) for p in taken[:MAX_LISTED])
            more = f" and {len(taken) - MAX_LISTED} more" if len(taken) > MAX_LISTED else ""
            raise DataError(f"output exists: {listed}{more}; pass --overwrite true to replace, or another --output_dir")

    def check_writable(self) -> None:
        """Checks that the output folder (or its nearest existing parent) can be written; creates nothing.

        Raises:
            DataError: naming the folder and config 'output_dir'.
        """
        check_writable(self.output_dir, "config 'output_dir'")

    def claim(self, name: str, kind: str) -> Path:
        """The path to write output ``kind`` of volume ``name`` to, checked against the overwrite rule.

        Raises:
            DataError: the file exists and ``overwrite`` is off.
        """
        path = self.path(name, kind)
        if path.exists() and not self.overwrite:
            raise DataError(f"output exists: {path}; pass --overwrite true to replace, or another --output_dir")
        return path
