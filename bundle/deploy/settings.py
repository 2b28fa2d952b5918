"""What the deploy app runs: the bundle config list, the weight overrides and the question.

The question comes from the first of these that is given: ``--query``, the ``MEDISEE_QUERY``
environment variable (how a packaged app is usually told), or ``medisee.query`` in the app's
configuration file (``app.yaml``, or the file ``HOLOSCAN_CONFIG_PATH`` names inside a package).
An empty question is an error naming where it came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bundle.deploy.sources import AppInput
from common.errors import ConfigError
from common.files import config_list

BUNDLE_ROOT = Path(__file__).resolve().parents[2]
"""The bundle's root folder; default config paths are relative to it."""

DEFAULT_CONFIG_FILES: tuple[str, ...] = ("configs/model.json", "configs/demo_model.json", "configs/inference.json")
"""The bundle config list the app runs without ``--config`` (relative to :data:`BUNDLE_ROOT`), merged in order:
the demo model.

``configs/demo_model.json`` holds the demo model's sizes; ``configs/demo.json`` is not used, since
it also names the demo's image, question and output folder, which the app takes from its own options.
"""
DEFAULT_WEIGHTS = {"checkpoint": "models/demo"}
"""The weights of :data:`DEFAULT_CONFIG_FILES` (relative to :data:`BUNDLE_ROOT`), unless the command line gives its own."""

WEIGHT_SETTINGS = ("checkpoint", "llava_path", "medsam_path")
"""Config ids the command line may override (the weights the bundle loads)."""

QUERY_ENV = "MEDISEE_QUERY"
APP_CONFIG_ENV = "HOLOSCAN_CONFIG_PATH"
"""Where a MONAI/Holoscan application package says its ``app.yaml`` is."""
APP_CONFIG_FILE = Path(__file__).with_name("app.yaml")
APP_SECTION = "medisee"
QUERY_SETTING = "query"
EXAMPLE_QUERY = "Where is the liver?"


@dataclass(frozen=True)
class ModelSettings:
    """The bundle configs to load and the config ids to override in them.

    Attributes:
        config_files: config paths, merged in order (``configs/model.json`` first).
        overrides: config id -> value (weights paths given on the command line).
    """

    config_files: tuple[Path, ...]
    overrides: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AppSettings:
    """Everything one run of the app needs, checked before the graph is built (:mod:`bundle.deploy.cli`).

    Attributes:
        source: the input and its volumes.
        output_dir: where outputs are written.
        query: the question.
        model: the bundle configs and weight overrides.
        overwrite: replace existing outputs.
    """

    source: AppInput
    output_dir: Path
    query: str
    model: ModelSettings
    overwrite: bool = False


def config_files(value: str | None) -> tuple[Path, ...]:
    """The config list of ``--config``: one path or a Python-style list, as ``monai.bundle run`` takes.

    Without a value, :data:`DEFAULT_CONFIG_FILES` under the bundle root.

    Raises:
        ConfigError: the list does not parse, or a file does not exist (names it).
    """
    if value is None:
        paths = tuple(BUNDLE_ROOT / name for name in DEFAULT_CONFIG_FILES)
    else:
        paths = tuple(Path(name).expanduser() for name in config_list(value, "--config"))
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise ConfigError(f"config file not found: {', '.join(missing)} (--config)")
    return paths


def model_settings(config: str | None, weights: Mapping[str, str | None]) -> ModelSettings:
    """The configs of ``--config`` with the weight paths given on the command line as overrides.

    Without ``--config``, the demo model (:data:`DEFAULT_CONFIG_FILES` and :data:`DEFAULT_WEIGHTS`).

    Args:
        config: the ``--config`` value, or None for the default list.
        weights: ``checkpoint``, ``llava_path`` and ``medsam_path`` as given (None = the config's own).
    """
    defaults = {key: str(BUNDLE_ROOT / value) for key, value in DEFAULT_WEIGHTS.items()} if config is None else {}
    given = {key: str(Path(value).expanduser()) for key, value in weights.items() if value is not None}
    return ModelSettings(config_files(config), {**defaults, **given})


def app_config_file(environ: Mapping[str, str] = os.environ) -> Path:
    """The app's configuration file: ``HOLOSCAN_CONFIG_PATH`` when set, else ``app.yaml`` beside this module."""
    named = environ.get(APP_CONFIG_ENV)
    return Path(named) if named else APP_CONFIG_FILE


def app_defaults(path: Path) -> dict[str, Any]:
    """The ``medisee`` section of the app's configuration file (empty when the default file is absent).

    Raises:
        ConfigError: the file is unreadable, is not YAML, or its section is not a mapping.
    """
    if not path.is_file():
        if path == APP_CONFIG_FILE:
            return {}
        raise ConfigError(f"app configuration not found: {path} ({APP_CONFIG_ENV})")
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read app configuration {path}: {type(exc).__name__}") from None
    section = document.get(APP_SECTION) if isinstance(document, Mapping) else None
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{path}: '{APP_SECTION}' must be a mapping of settings")
    return dict(section)


def resolve_query(flag: str | None, environ: Mapping[str, str] = os.environ, config_path: Path | None = None) -> str:
    """The question: ``--query``, else ``MEDISEE_QUERY``, else ``medisee.query`` of the app's configuration.

    Raises:
        ConfigError: the first source given is empty, or none is given.
    """
    config_path = config_path or app_config_file(environ)
    configured = app_defaults(config_path).get(QUERY_SETTING)
    sources = [
        ("--query", flag),
        (f"environment variable {QUERY_ENV}", environ.get(QUERY_ENV)),
        (f"'{APP_SECTION}.{QUERY_SETTING}' in {config_path}", configured),
    ]
    for where, value in sources:
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f'the question is empty ({where}): give the text to ask, e.g. --query "{EXAMPLE_QUERY}"')
        return value.strip()
    raise ConfigError(
        f"no question: pass --query \"...\", set {QUERY_ENV}, or set '{APP_SECTION}.{QUERY_SETTING}' in {config_path}"
    )
