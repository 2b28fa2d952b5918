"""``python -m bundle.chat --image VOL``: a terminal conversation about one volume.

The model is built and the volume loaded once (:class:`bundle.session.Session`); each typed line
is a question, answered as the next turn of the dialogue: the summary of the turn is printed and
its outputs written (``OUT/NAME_turnK_mask.nii.gz``, ``_result.json``, ``_overlay.png``). Commands:
``/new`` forgets the dialogue (the next question starts afresh), ``/save`` writes
``OUT/NAME_dialogue.json``, ``/quit`` (or end of input) saves and ends.

Model options are the inference workflow's config ids, given as ``--id value`` after the chat's own
options (``--checkpoint DIR``, ``--llava_path DIR``, ``--batch_size 4``, ``--window mr`` ...);
unknown ids are refused as ``monai.bundle run`` refuses them. Without ``--config_file`` the demo
model answers (the deploy app's defaults). Questions are read as text, never as config.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from bundle.command_line import check_ids, read_configs
from bundle.deploy.settings import BUNDLE_ROOT, DEFAULT_CONFIG_FILES, DEFAULT_WEIGHTS
from bundle.inference.inputs import find_volumes
from bundle.inference.summary import describe_volume
from bundle.quiet import quiet_libraries
from common.cli import DefaultsHelpFormatter
from common.errors import ConfigError, DataError, one_line, run_command
from common.files import config_list

COMMANDS = {"/new": "forget the dialogue", "/save": "write the dialogue summary", "/quit": "save and end"}
PROMPT = "> "
DESCRIPTION = (
    "Ask questions about one volume, turn by turn: the model is built and the volume encoded once. Type a question; "
    "/new forgets the dialogue, /save writes NAME_dialogue.json, /quit (or the end of input) saves and ends. "
    "Model options follow as --id value (the inference config ids: --checkpoint DIR, --batch_size 4, ...)."
)


def build_parser() -> argparse.ArgumentParser:
    """The chat's own options (model options follow as ``--id value``)."""
    parser = argparse.ArgumentParser(
        prog="python -m bundle.chat", description=DESCRIPTION, formatter_class=DefaultsHelpFormatter
    )
    parser.add_argument("--image", required=True, help="the volume: a NIfTI file or a DICOM series folder")
    parser.add_argument(
        "--config_file",
        help="inference configs, as for monai.bundle run (default: the demo model, "
        f"{', '.join(DEFAULT_CONFIG_FILES)} with --checkpoint {DEFAULT_WEIGHTS['checkpoint']})",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def config_value(text: str) -> Any:
    """An override value as ``monai.bundle run`` reads it: JSON (numbers, true/false, null, lists) or a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def model_overrides(extra: Sequence[str]) -> dict[str, Any]:
    """``--id value`` pairs -> config overrides.

    Raises:
        ConfigError: an argument that is not ``--id`` or an id without a value.
    """
    overrides: dict[str, Any] = {}
    items = iter(extra)
    for item in items:
        if not item.startswith("--") or len(item) == 2:
            raise ConfigError(f"unexpected argument {item!r}: model options are given as --id value")
        name, has_value, value = item[2:].partition("=")
        if not has_value:
            value = next(items, None)
            if value is None:
                raise ConfigError(f"option --{name} needs a value")
        overrides[name] = config_value(value)
    return overrides


def session_configs(config_file: str | None, overrides: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The config files and overrides of the session: the demo model unless ``--config_file`` is given."""
    if config_file is not None:
        return config_list(config_file), overrides
    files = [str(BUNDLE_ROOT / name) for name in DEFAULT_CONFIG_FILES]
    weights = {key: str(BUNDLE_ROOT / value) for key, value in DEFAULT_WEIGHTS.items()}
    return files, {**weights, **overrides}


def lines(stream: TextIO) -> Iterator[str]:
    """The stripped lines typed (or piped) on ``stream``, prompting when it is a terminal."""
    interactive = stream.isatty()
    while True:
        if interactive:
            print(PROMPT, end="", flush=True)
        line = stream.readline()
        if not line:
            return
        if line.strip():
            yield line.strip()


def converse(session: Any, stream: TextIO) -> None:
    """Answers each question of ``stream`` and runs its commands until ``/quit`` or the end of input."""
    saved = True
    for line in lines(stream):
        command = line.lower()
        if command == "/quit":
            break
        if command == "/new":
            session.new()
            print("new dialogue: the next question does not see the earlier ones", flush=True)
        elif command == "/save":
            save(session)
            saved = True
        elif command.startswith("/") and command.split()[0] not in COMMANDS:
            print(f"unknown command {line.split()[0]!r}; commands: {', '.join(COMMANDS)}", flush=True)
        else:
            try:
                turn = session.ask(line)
            except (ConfigError, DataError) as error:
                print(f"error: {one_line(error)}", flush=True)
                continue
            print(*describe_volume(turn), sep="\n", flush=True)
            saved = False
    if not saved:
        save(session)


def save(session: Any) -> None:
    """Writes the dialogue summary, or says why not."""
    try:
        print(f"dialogue: {session.save()}", flush=True)
    except DataError as error:
        print(f"error: {one_line(error)}", flush=True)


def run(args: argparse.Namespace, extra: Sequence[str], stream: TextIO) -> None:
    """Builds the session, opens the volume and converses."""
    from bundle.session import Session  # builds torch and the model: after the options are checked

    files, overrides = session_configs(args.config_file, model_overrides(extra))
    check_ids(list(overrides), read_configs(files))
    find_volumes(args.image)  # a missing or unreadable image costs no model building
    quiet_libraries()
    print("building the model ...", flush=True)
    session = Session.from_configs(files, {**overrides, "debug": args.debug})
    name = session.open(args.image).name
    slices = session.volume.shape[1 + session.inferer.slice_axis]
    print(f"{name}: {slices} slices. Ask a question; {', '.join(f'{c} ({h})' for c, h in COMMANDS.items())}.")
    converse(session, stream)


def main(argv: Sequence[str] | None = None, stream: TextIO | None = None) -> int:
    """The command line; returns the exit code (1 with one ``error:`` line for bad options or input)."""
    args, extra = build_parser().parse_known_args(argv)
    return run_command(lambda: run(args, extra, stream or sys.stdin), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
