"""Unknown config ids on the ``monai.bundle run`` command line stop the run, with the closest known ones.

MONAI sets every ``--id value`` of ``python -m monai.bundle run`` as a config override, known or not:
``--batchsize 4`` is echoed, never read, and the run goes on with the default batch size. Every
workflow's ``initialize`` (``configs/model.json``) therefore calls :func:`check_command_line_ids`
first: it reads the config files named by ``--config_file`` (and ``--meta_file``) the way MONAI
does, without evaluating anything, and refuses an id that is neither in them nor one of MONAI's own
(the ``run`` arguments, the standard bundle property ids of ``monai.bundle.properties``), e.g.
``config key 'batchsize' is not known (did you mean 'batch_size'?)``. Outside ``monai.bundle run``
(Python callers, tests, the deploy app, which has its own argument parser) it does nothing.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from monai.bundle import ConfigParser, ConfigWorkflow, properties, scripts
from monai.utils import BundlePropertyConfig

from bundle.user_text import bundle_command_args, command_line_pairs
from common.errors import ConfigError

ID_SEPARATOR = "#"
MONAI_SEPARATOR = "::"
"""MONAI reads ``::`` in ids as ``#`` (shells and some tools treat ``#`` specially)."""
RESERVED_KEYS = ("_target_", "_disabled_", "_requires_", "_desc_", "_mode_")
"""Keys MONAI reads in any component, so they may be set on one that lacks them (``inferer#_disabled_``)."""
MAX_SUGGESTIONS = 3
SIMILARITY = 0.6
"""``difflib`` ratio from which a known id is suggested (its default: catches typos, not unrelated words)."""


def run_arguments() -> set[str]:
    """The arguments of MONAI's ``run`` and ``run_workflow`` commands themselves (not config ids)."""
    names = set()
    # run_workflow passes ConfigWorkflow's arguments through its **kwargs
    for command in (scripts.run, scripts.run_workflow, ConfigWorkflow.__init__):
        names |= {p.name for p in inspect.signature(command).parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD}
    return names - {"self"}


def standard_ids() -> set[str]:
    """The standard bundle property ids (``monai.bundle.properties``), with ``#`` separators."""
    ids = set()
    for name in ("TrainProperties", "InferProperties", "MetaProperties"):
        for prop in getattr(properties, name, {}).values():
            value = prop.get(BundlePropertyConfig.ID)
            if value:
                ids.add(normalize_id(value))
    return ids


def normalize_id(name: str) -> str:
    """``name`` as MONAI stores it: ``::`` read as ``#``."""
    return name.replace(MONAI_SEPARATOR, ID_SEPARATOR)


def config_ids(config: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every ``(id, value)`` of a config structure: its keys and list indices, nested with ``#``."""
    items: Iterable[tuple[Any, Any]]
    if isinstance(config, Mapping):
        items = config.items()
    elif isinstance(config, list):
        items = enumerate(config)
    else:
        return
    for key, value in items:
        name = f"{prefix}{key}"
        yield name, value
        yield from config_ids(value, f"{name}{ID_SEPARATOR}")


def is_known(name: str, known: set[str], components: set[str]) -> bool:
    """Whether override ``name`` sets an id of the configs (or a reserved key of one of their components)."""
    if name in known:
        return True
    parent, _, key = name.rpartition(ID_SEPARATOR)
    return key in RESERVED_KEYS and parent in components


def unknown_id_message(name: str, known: Iterable[str]) -> str:
    """The one line refusing ``name``, with the closest ``known`` ids of the same depth when some are close."""
    # a top-level typo is meant as a top-level id, not as the nested ones it references ("inferer#batch_size")
    depth = name.count(ID_SEPARATOR)
    peers = sorted(k for k in known if k.count(ID_SEPARATOR) == depth)
    close = difflib.get_close_matches(name, peers, n=MAX_SUGGESTIONS, cutoff=SIMILARITY)
    if not close:
        return f"config key '{name}' is not known to these configs: nothing was run (README.md lists the settings)"
    quoted = [f"'{c}'" for c in close]
    choices = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" or {quoted[-1]}"
    return f"config key '{name}' is not known (did you mean {choices}?): nothing was run"


def read_configs(config_file: Any, meta_file: Any = None) -> Any:
    """The merged configs as MONAI's ``run`` reads them (nothing evaluated)."""
    parser = ConfigParser()
    parser.read_config(config_file)
    if meta_file is not None:
        parser.read_meta(meta_file)
    return parser.get()


def check_ids(given: Sequence[str], config: Any) -> None:
    """Refuses the first of the ``given`` override ids that ``config`` (the merged configs) does not know.

    Raises:
        ConfigError: one line naming the id and the closest known ones.
    """
    values = dict(config_ids(config))
    components = {name for name, value in values.items() if isinstance(value, Mapping)}
    known = set(values) | standard_ids()
    arguments = run_arguments()
    for name in given:
        name = normalize_id(name)
        if name in arguments or is_known(name, known, components):
            continue
        raise ConfigError(unknown_id_message(name, known | arguments))


def check_command_line_ids(argv: Sequence[str] | None = None) -> None:
    """Refuses an unknown config id given on the ``monai.bundle run`` command line (see the module doc).

    Call it first in ``initialize``; outside ``monai.bundle run`` it does nothing.

    Args:
        argv: the process arguments (default ``sys.argv``).

    Raises:
        ConfigError: one line naming the id and the closest known ones.
    """
    args = bundle_command_args(argv)
    if args is None:
        return
    from fire.parser import DefaultParseValue  # monai.bundle's command line runs on python-fire

    pairs = list(command_line_pairs(args))
    options = dict(pairs)  # the last one counts, as for python-fire
    if options.get("config_file") is None:
        return  # given in an args_file: nothing to compare with here
    meta = options.get("meta_file")
    config = read_configs(DefaultParseValue(options["config_file"]), None if meta is None else DefaultParseValue(meta))
    check_ids([name for name, _ in pairs], config)
