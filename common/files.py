"""Atomic file and directory writes, so that an interrupted save never leaves a half-written output."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

NEW_FILE_MODE = 0o666
NEW_DIR_MODE = 0o777


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, is_dir: bool = False) -> Iterator[Path]:
    """Yields a temporary path next to ``path``; renames it onto ``path`` only if the block succeeds.

    The temporary name lives in the same directory so that the final ``os.replace`` is atomic on
    POSIX file systems. On any exception the temporary file or directory is removed.

    Args:
        path: the final file or directory path.
        is_dir: create the temporary path as a directory (for multi-file outputs).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{final.name}.tmp-"
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=final.parent))
        usual_permissions(tmp, NEW_DIR_MODE)  # mkdtemp creates folders open to their owner only
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, dir=final.parent)
        os.close(fd)
        tmp = Path(name)
        usual_permissions(tmp)  # mkstemp creates files readable by their owner only
    try:
        yield tmp
        if is_dir and final.exists():
            # os.replace cannot replace a non-empty directory: move the old one aside first.
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            os.replace(final, old / final.name)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def check_writable(folder: str | os.PathLike, setting: str) -> None:
    """Checks that files can be created in ``folder`` (or, if it does not exist yet, in its nearest parent).

    Writes and removes a probe file; nothing is created, so a run that stops later leaves no empty
    folder behind. ``os.access`` is not enough: root ignores modes, and read-only mounts fail only on write.

    Raises:
        DataError: naming the folder and ``setting`` (the option or config key that gave it).
    """
    from common.errors import DataError

    folder = Path(folder).expanduser()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(0, f"{existing} is not a folder")
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise DataError(
            f"cannot write to output folder {folder} ({setting}): {exc.strerror or type(exc).__name__}"
        ) from None


def usual_permissions(path: str | os.PathLike, mode: int = NEW_FILE_MODE) -> None:
    """Gives ``path`` the mode ``open()`` (or ``mkdir`` with ``NEW_DIR_MODE``) would create it with, less the umask."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, mode & ~mask)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Writes ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def config_list(value: str, option: str = "--config_file") -> list[str]:
    """The config paths in ``"a.json"`` or ``"['a.json', 'b.json']"``, as ``monai.bundle run`` takes them.

    Raises:
        ConfigError: the value is neither (names ``option``).
    """
    from common.errors import ConfigError

    text = value.strip()
    if not text.startswith("["):
        return [text] if text else []
    try:
        names = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        names = None
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        raise ConfigError(f"{option} must be a config path or a list such as \"['a.json','b.json']\", got {value!r}")
    return names
