"""Generate a phantom dataset.

    python -m bundle.phantoms --out DIR --n N --seed S [--shape X Y Z [--shape X Y Z ...]]
        [--val-fraction F] [--test-fraction F] [--overwrite]

Writes DIR/imagesTr/phantom_XXX.nii.gz, DIR/labelsTr/phantom_XXX.nii.gz and, last,
DIR/dataset.json; prints one line per volume. An existing non-empty DIR is refused unless
--overwrite; nothing is left behind when generation fails.
"""

from __future__ import annotations

import argparse
import sys
import time

from bundle.phantoms.dataset import write_dataset
from bundle.phantoms.phantom import DEFAULT_SHAPE
from common.cli import DefaultsHelpFormatter
from common.errors import run_command


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command-line options (types only; values are checked by ``write_dataset``)."""
    parser = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter, prog="python -m bundle.phantoms", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", required=True, help="dataset directory to create")
    parser.add_argument("--n", type=int, required=True, help="number of volumes")
    parser.add_argument("--seed", type=int, default=0, help="series seed: volume i depends only on (seed, i)")
    parser.add_argument("--shape", type=int, nargs=3, action="append", metavar=("X", "Y", "Z"),
                        help="voxels per volume; the field of view is fixed, so this sets the spacing; given "
                             "several times, each volume takes one of the grids, drawn from (seed, i) "
                             f"(default: {' '.join(map(str, DEFAULT_SHAPE))})")  # fmt: skip
    parser.add_argument("--val-fraction", type=float, default=0.2, help="share of volumes for validation")
    parser.add_argument("--test-fraction", type=float, default=0.1, help="share of volumes for testing")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    args = parse_args(argv)

    def generate() -> None:
        start = time.perf_counter()
        shapes = [tuple(shape) for shape in args.shape or [DEFAULT_SHAPE]]
        path = write_dataset(args.out, args.n, args.seed, shapes, args.val_fraction, args.test_fraction,
                             overwrite=args.overwrite, progress=lambda line: print(line, flush=True))  # fmt: skip
        print(f"wrote {args.n} volumes and {path} in {time.perf_counter() - start:.1f} s")

    return run_command(generate, args.debug)


if __name__ == "__main__":
    sys.exit(main())
