"""Free text a user gives (a question, later a dialogue) is data: it reaches the model as text, never as config.

MONAI's ``ConfigParser`` reads every string value as config, command-line overrides of
``python -m monai.bundle run`` included: ``$...`` is evaluated as Python, ``@id`` is replaced by
another setting, ``%file#id`` by a file's content, and ``::`` inside any value is rewritten to ``#``.
Text therefore reaches the bundle in one of three ways, none of which lets the parser interpret it:

- **Python**: wrap it in :class:`UserText`. The parser only interprets strings and leaves any other
  value as it is, so ``ConfigWorkflow(..., query=UserText(text))`` carries the text untouched.
- **A file**: :func:`read_user_text` reads a file named by a setting (``query_file``) as text.
- **The** ``monai.bundle run`` **command line**: MONAI has parsed its copy of ``--query`` before any
  bundle code runs, so the bundle takes the text from the command line itself, exactly as typed
  (:func:`command_line_text`), and refuses, before anything runs, text the parser would not take as
  text (:func:`refuse_config_syntax`: it starts with ``$``, ``@`` or ``%``). Once refused, nothing
  refers to the parser's copy.

The deploy app passes its question as data already (its own argument parser, an environment
variable or ``app.yaml``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from common.errors import ConfigError, DataError

CONFIG_SYNTAX = {
    "$": "runs as Python code",
    "@": "replaces by another setting",
    "%": "replaces by a config file's content",
}
"""First characters that make MONAI's config parser interpret a string, and what it does with it."""
BUNDLE_CLI_MODULE = "monai.bundle.__main__"
BUNDLE_COMMANDS = ("run", "run_workflow")
"""``python -m monai.bundle`` commands whose ``--id value`` options become config overrides."""
FLAG = re.compile(r"^(--|-[a-zA-Z])")
"""A command-line flag as python-fire tells it (``--name``, ``-name``; ``-5`` is a value)."""
FIRE_SEPARATOR = "--"
"""Arguments after a lone ``--`` are python-fire's own flags, not the command's."""
TEXT_ENCODING = "utf-8"


class UserText:
    """Text given by a user, held as data: MONAI's config parser leaves it as it is.

    It is deliberately not a ``str`` subclass: the parser recognises ``$``, ``@`` and ``%`` on
    anything that is a ``str``. :func:`bundle.inference.check_query` turns it back into text.

    Args:
        text: the text, exactly as given.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"UserText holds text, got {type(text).__name__}")
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"UserText({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UserText) and other.text == self.text

    def __hash__(self) -> int:
        return hash((UserText, self.text))


def read_user_text(path: str | os.PathLike, key: str) -> UserText:
    """The text of a file named by setting ``key`` (UTF-8), as data.

    Raises:
        DataError: the file is missing, unreadable or not UTF-8 text (names it and ``key``).
    """
    path = Path(str(path)).expanduser()
    if not path.is_file():
        raise DataError(f"text file not found: {path} (config '{key}')")
    try:
        return UserText(path.read_text(encoding=TEXT_ENCODING))
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text (config '{key}')") from None
    except OSError as exc:
        raise DataError(f"cannot read {path} (config '{key}'): {exc.strerror or type(exc).__name__}") from None


def bundle_command_args(argv: Sequence[str] | None = None) -> list[str] | None:
    """The arguments of the running ``python -m monai.bundle run`` command (after ``run``), or None.

    None when this process is anything else (a script, pytest, the deploy app), whatever its
    arguments say.
    """
    argv = sys.argv if argv is None else argv
    spec = importlib.util.find_spec(BUNDLE_CLI_MODULE)
    if len(argv) < 2 or spec is None or spec.origin is None or argv[1] not in BUNDLE_COMMANDS:
        return None
    try:
        same = Path(argv[0]).resolve() == Path(spec.origin).resolve()
    except OSError:
        return None
    return list(argv[2:]) if same else None


def command_line_pairs(args: Sequence[str]) -> Iterator[tuple[str, str | None]]:
    """Every ``(name, value)`` option of ``args``, as typed, in order, read the way python-fire reads them.

    python-fire takes ``--key=value``, ``--key value`` (unless the next argument is a flag, which
    makes ``--key`` a boolean: value None) and ``-key``; ``-`` in names counts as ``_``; arguments
    after a lone ``--`` are fire's own.
    """
    if FIRE_SEPARATOR in args:
        args = args[: len(args) - 1 - list(reversed(args)).index(FIRE_SEPARATOR)]
    index = 0
    while index < len(args):
        argument = args[index]
        index += 1
        if not FLAG.match(argument):
            continue
        name, has_value, value = argument.lstrip("-").partition("=")
        if not has_value:
            if index == len(args) or FLAG.match(args[index]):
                yield name.replace("-", "_"), None  # a boolean flag: no text
                continue
            value = args[index]
            index += 1
        yield name.replace("-", "_"), value


def command_line_options(key: str, args: Sequence[str]) -> list[str]:
    """Every value given to ``--key`` in ``args``, as typed, in order (:func:`command_line_pairs`)."""
    return [value for name, value in command_line_pairs(args) if name == key and value is not None]


def command_line_text(key: str, argv: Sequence[str] | None = None) -> str | None:
    """The text given as ``--key`` on the ``monai.bundle run`` command line, exactly as typed, or None.

    The last one counts, as for python-fire. None outside ``monai.bundle run``, or when ``--key``
    is not given there.
    """
    args = bundle_command_args(argv)
    values = command_line_options(key, args) if args is not None else []
    return values[-1] if values else None


def strings_in(value: Any) -> Iterator[str]:
    """Every string in ``value`` and in the containers it holds (what a config parser would look at)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in (*value.keys(), *value.values()):
            yield from strings_in(item)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from strings_in(item)


def refuse_config_syntax(key: str, file_key: str | None = None, argv: Sequence[str] | None = None) -> None:
    """Refuses ``--key`` text of the ``monai.bundle run`` command line that MONAI's parser would interpret.

    python-fire turns the typed text into a value (``"['$x']"`` becomes a list) before MONAI parses
    every string in it, so the check looks at fire's value. Call it before anything refers to
    ``key`` (the workflows' ``initialize``); outside ``monai.bundle run`` it does nothing.

    Args:
        key: the setting holding user text (``query``).
        file_key: the setting that reads the same text from a file, suggested in the message.
        argv: the process arguments (default ``sys.argv``).

    Raises:
        ConfigError: one line naming ``key``, the character and what the parser would do.
    """
    args = bundle_command_args(argv)
    if args is None:
        return
    from fire.parser import DefaultParseValue  # monai.bundle's command line runs on python-fire

    for typed in command_line_options(key, args):
        for text in strings_in(DefaultParseValue(typed)):
            first = text[:1]
            if first in CONFIG_SYNTAX:
                instead = f"; or pass the text in a file with --{file_key} FILE" if file_key else ""
                raise ConfigError(
                    f"config '{key}' starts with {first!r}, which MONAI's config parser {CONFIG_SYNTAX[first]}: "
                    f"refused, nothing was run. Start the text with another character{instead}"
                )
