"""Command line of the deploy app: ``python -m bundle.deploy -i IN -o OUT --query "TEXT"``.

The SDK's own options keep their names and environment defaults (``-i``/``HOLOSCAN_INPUT_PATH``,
``-o``/``HOLOSCAN_OUTPUT_PATH``, ``-l``), resolved by the SDK's ``AppContext``; MediSee adds the
question, the bundle config list and the weights. Everything is checked before the model or the
graph is built, so a bad input, question or config costs seconds and writes nothing; user errors
print one ``error: ...`` line and exit with status 1 (``--debug`` shows the traceback).

Runs are quiet by default (:mod:`bundle.quiet`): library notices are silenced before the SDK (and
so holoscan) is imported, which is why the SDK is imported inside the functions here. ``-l DEBUG``
or ``--debug`` shows everything.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bundle.deploy.model import MediSeeBundle
from bundle.deploy.settings import (
    DEFAULT_CONFIG_FILES,
    QUERY_ENV,
    WEIGHT_SETTINGS,
    AppSettings,
    model_settings,
    resolve_query,
)
from bundle.deploy.sources import InputKind, check_dicom_study, resolve_input
from bundle.inference.settings import flag
from bundle.quiet import QUIET_LEVEL, quiet_libraries
from common.cli import DefaultsHelpFormatter
from common.errors import ConfigError, run_command
from transforms.loading import nifti_header_shape

PROGRAM = "python -m bundle.deploy"
LOG_LEVELS = ("DEBUG", "INFO", "WARN", "ERROR", "CRITICAL")
VERBOSE_LEVEL = "DEBUG"


def overwrite_flag(value: str) -> bool:
    """``--overwrite true`` / ``false`` (the bundle's spelling) for the app's ``--overwrite`` flag."""
    try:
        return flag(value, "overwrite")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The app's argument parser (MediSee options next to the SDK's ``-i``, ``-o``, ``-l``)."""
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        prog=PROGRAM,
        description="MediSee reasoning segmentation (MONAI Deploy app).",
    )
    parser.add_argument(
        "-i",
        "--input",
        help="NIfTI file, folder of NIfTI files, or DICOM folder (default: $HOLOSCAN_INPUT_PATH, else ./input)",
    )
    parser.add_argument(
        "-o",
        "--output",
        "--output_dir",  # monai.bundle run's name, which the shared error messages use
        dest="output",
        help="output folder (default: $HOLOSCAN_OUTPUT_PATH, else ./output)",
    )
    parser.add_argument("--query", help=f"the question (default: ${QUERY_ENV}, else medisee.query in app.yaml)")
    parser.add_argument(
        "--config",
        help="bundle config path or list, e.g. \"['configs/model.json','configs/tiny.json','configs/inference.json']\" "
        f"(default: the demo model, {list(DEFAULT_CONFIG_FILES)} with its checkpoint)",
    )
    for setting in WEIGHT_SETTINGS:
        parser.add_argument(f"--{setting}", help=f"override the config's '{setting}'")
    parser.add_argument(
        "--overwrite",
        nargs="?",
        const=True,
        default=False,
        type=overwrite_flag,
        help="replace existing outputs (--overwrite, or --overwrite true/false)",
    )
    parser.add_argument(
        "-l",
        "--log-level",
        dest="log_level",
        type=str.upper,
        choices=LOG_LEVELS,
        help=f"log level (default {QUIET_LEVEL}, library notices silenced; {VERBOSE_LEVEL} shows everything)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and every library's output")
    return parser


def app_settings(args: argparse.Namespace) -> AppSettings:
    """Resolves and checks the run's settings, in the order a user would fix them.

    Raises:
        MediSeeError: the input is missing or unreadable (a refused DICOM series included), the question
            empty, a config missing, or outputs exist without ``--overwrite`` (each names the file or setting).
    """
    from monai.deploy.core import AppContext

    from bundle.deploy.outputs import DeployOutputLayout

    # the SDK's own resolution of -i/-o and their HOLOSCAN_* environment variables
    paths = AppContext({"input": args.input, "output": args.output})
    source = resolve_input(paths.input_path)
    if source.kind is InputKind.NIFTI:
        for volume in source.volumes:
            nifti_header_shape(volume.path)  # empty, non-NIfTI, 2D, 4D: refused before the model is built
    query = resolve_query(args.query, os.environ)
    model = model_settings(args.config, {setting: getattr(args, setting) for setting in WEIGHT_SETTINGS})
    if source.kind is InputKind.DICOM:  # refused series, mosaics ... found before the model is built
        check_dicom_study(source.path, MediSeeBundle(model).slice_spacing_tolerance)
    settings = AppSettings(source, Path(paths.output_path), query, model, args.overwrite)
    DeployOutputLayout(settings.output_dir, settings.overwrite).check_free(source.entries())
    return settings


def run(args: argparse.Namespace) -> None:
    """Quiets the libraries (unless debugging), checks the settings, then builds and runs the app."""
    verbose = args.debug or args.log_level == VERBOSE_LEVEL
    if not verbose:
        quiet_libraries()  # before the SDK is imported: holoscan reads its log level when it starts
    from monai.deploy.core.arg_parser import set_up_logging

    from bundle.deploy.app import MediSeeApp

    set_up_logging(args.log_level or (None if verbose else QUIET_LEVEL))
    MediSeeApp(app_settings(args)).run()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    return run_command(lambda: run(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
