"""Where outputs go: ``OUT/NAME_mask.nii.gz``, ``OUT/NAME_result.json``, ``OUT/NAME_overlay.png``.

Turn ``K`` of a dialogue about volume ``NAME`` is named ``NAME_turnK``; the dialogue's summary is
``OUT/NAME_dialogue.json``.

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


def turn_name(name: str, turn: int) -> str:
    """The output name of turn ``turn`` (from 1) of a dialogue about volume ``name``: ``NAME_turnK``."""
    return f"{name}_turn{turn}"


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
        """The path of output ``kind`` (see :data:`bundle.inference.keys.OUTPUT_SUFFIXES`, or
        :data:`~bundle.inference.keys.DIALOGUE_FILE`) for volume ``name``."""
        suffix = K.DIALOGUE_SUFFIX if kind == K.DIALOGUE_FILE else K.OUTPUT_SUFFIXES[kind]
        return self.output_dir / f"{name}{suffix}"

    def paths(self, name: str) -> dict[str, Path]:
        """Every output path of volume ``name``, by kind."""
        return {kind: self.path(name, kind) for kind in K.OUTPUT_SUFFIXES}

    def entry_paths(self, entry: Mapping[str, Any]) -> list[Path]:
        """Every path a datalist entry writes: its volume's outputs, or each turn's and the summary of a dialogue."""
        name = entry[K.NAME]
        turns = entry.get(K.DIALOGUE)
        if not turns:
            return list(self.paths(name).values())
        paths = [path for k in range(1, len(turns) + 1) for path in self.paths(turn_name(name, k)).values()]
        return [*paths, self.path(name, K.DIALOGUE_FILE)]

    def check_free(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Refuses to start when an output of any datalist entry exists (unless ``overwrite``).

        Also checks that the folder can be written, so an unwritable ``output_dir`` costs no model work.

        Raises:
            DataError: naming the existing files, or the folder that cannot be written.
        """
        self.check_writable()
        if self.overwrite:
            return
        taken = [path for entry in entries for path in self.entry_paths(entry) if path.exists()]
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
