"""Dataset files: reading them, and resolving the paths they list (inside the dataset folder, present)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from common.errors import ConfigError, DataError

logger = logging.getLogger(__name__)
ON_MISSING = ("error", "skip")


def read_json(path: Path, what: str, hint: str = ""):
    """Parses a json file; a missing or malformed file is a DataError naming it (``hint`` is appended)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{what} not found: {path}{hint}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {what} {path}: {exc}") from None


def check_on_missing(value: str) -> str:
    """Validates the ``on_missing`` option."""
    if value not in ON_MISSING:
        raise ConfigError(f"on_missing must be one of {ON_MISSING}, got {value!r}")
    return value


def resolve_inside(root: Path, relative: str, listed_in: Path) -> Path:
    """``root / relative``, refusing paths that escape ``root`` (``..``, absolute, links out)."""
    root = root.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise DataError(f"{listed_in}: path {relative!r} escapes the dataset folder {root}")
    return path


def missing_files(paths: list[Path]) -> list[Path]:
    """The paths that are not files."""
    return [p for p in paths if not p.is_file()]


def keep_or_raise(missing: list[Path], listed_in: Path, on_missing: str, what: str) -> bool:
    """True when the entry is usable; raises or warns (``on_missing``) when files are missing."""
    if not missing:
        return True
    names = ", ".join(str(p) for p in missing)
    if on_missing == "error":
        raise DataError(
            f"{listed_in}: {what} lists missing files: {names} (use on_missing='skip' to skip such entries)"
        )
    logger.warning("%s: skipping %s with missing files: %s", listed_in, what, names)
    return False
