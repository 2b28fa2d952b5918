"""Build the configured MediSee and print what it is made of.

    python -m networks.report --config_file "['configs/model.json','configs/tiny.json']"

Prints the candidate tokens, where each weight came from, and a table of parameters and
trainable parameters per component (paper Sec. 4.3). The model is built as it would be trained
(``training`` true: no ``checkpoint`` needed yet, ``llava_path`` and ``medsam_path`` are). Any config id can be overridden with
``--id value`` (for example ``--llava_path /weights/llava-med-hf``), as with ``monai.bundle run``.
"""

from __future__ import annotations

import argparse
import ast
import logging
import sys
import time
from pathlib import Path

from monai.bundle import ConfigParser

from common.cli import DefaultsHelpFormatter
from common.errors import ConfigError, run_command
from common.files import config_list
from networks.trainable import format_report, trainable_report

TRAINING = "training"
"""Config id telling ``build_medisee`` that the heads may be untrained (:mod:`networks.weight_sources`)."""


def _literal(value: str):
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def describe(parser: ConfigParser) -> str:
    """Builds ``network_def`` from ``parser`` and returns the report text."""
    start = time.perf_counter()
    model = parser.get_parsed_content("network_def")
    seconds = time.perf_counter() - start
    sources = {
        key: parser.get_parsed_content(key) or "(none: random initialisation)" for key in ("llava_path", "medsam_path")
    }
    sources["checkpoint"] = parser.get_parsed_content("checkpoint") or "(none: untrained heads)"
    lines = [
        f"MediSee built in {seconds:.1f} s",
        f"candidate tokens: {', '.join(model.config.candidate_tokens)} (ids {model.candidate_token_ids}); "
        f"fusion: {model.config.fusion}",
        f"image tokens per prompt: {model.num_image_tokens}; "
        f"SAM input: {model.medsam.image_size} px ({model.medsam.config.resize})",
        *[f"{key}: {value}" for key, value in sources.items()],
        "",
        format_report(trainable_report(model)),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter, prog="python -m networks.report", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--config_file", required=True, help="a config path or a list of them")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args, rest = parser.parse_known_args(argv)
    if len(rest) % 2:
        parser.error(f"overrides come in '--id value' pairs, got {rest}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    def report() -> None:
        files = config_list(args.config_file)
        missing = [f for f in files if not Path(f).is_file()]
        if missing:
            raise ConfigError(f"config file not found: {', '.join(missing)} (--config_file)")
        config = ConfigParser()
        config.read_config(files)
        # the model as it would be trained: checking the weights before training needs no checkpoint yet
        config[TRAINING] = True
        for key, value in zip(rest[::2], rest[1::2]):
            config[key.lstrip("-")] = _literal(value)
        print(describe(config))

    return run_command(report, args.debug)


if __name__ == "__main__":
    sys.exit(main())
