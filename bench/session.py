"""Questions about one volume: separate inference runs against one session (``bundle.chat``), on the demo model.

    python bench/session.py [--questions 10] [--repeats 1]

Asks the same questions about the demo volume two ways, each as a user would from a shell: one
``python -m monai.bundle run`` per question (the model built, the volume read and every slice encoded
each time), and one ``python -m bundle.chat`` reading them all, ``/new`` before each so that every
answer is the single question's (the session builds the model, reads the volume and encodes the
slices once). It checks that both give the same masks, then prints the wall times (last), and
predicts the per-question gain at full size from the share of a slice's FLOPs the cached encoders
(CLIP tower, projector, SAM image encoder) take (``bench/flops.py``). Never part of the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import print_table  # noqa: E402
from bench.flops import slice_flops  # noqa: E402

DEMO_CONFIGS = [str(ROOT / "configs" / name) for name in ("model.json", "demo_model.json", "inference.json")]
DEMO_IMAGE = ROOT / "demo" / "imagesTr" / "phantom_000.nii.gz"
DEMO_CHECKPOINT = ROOT / "models" / "demo"
STRUCTURES = (
    "liver", "spleen", "left kidney", "right kidney", "aorta",
    "inferior vena cava", "stomach", "gallbladder", "spine", "liver lesion",
)  # fmt: skip
CACHED = ("CLIP tower", "projector", "SAM image encoder")
"""The slice encoders a session computes once per slice (bench/flops.py's component names)."""
PROMPT_TEXT_TOKENS = 64
"""Question and answer tokens beside the 576 image tokens, for the full-size FLOPs prediction."""


def questions(n: int) -> list[str]:
    """``n`` label questions about the demo phantom's structures."""
    return [f"Please segment and locate the {STRUCTURES[i % len(STRUCTURES)]} in this image." for i in range(n)]


def config_list() -> str:
    return "[" + ",".join(f"'{f}'" for f in DEMO_CONFIGS) + "]"


def separate_runs(asked: list[str], out: Path) -> float:
    """Seconds for one ``monai.bundle run`` per question; volume ``NAME`` of question k goes to ``out/k``."""
    start = time.perf_counter()
    for k, question in enumerate(asked, 1):
        subprocess.run(
            [sys.executable, "-m", "monai.bundle", "run", "--config_file", config_list(), "--image", str(DEMO_IMAGE),
             "--checkpoint", str(DEMO_CHECKPOINT), "--query", question, "--output_dir", str(out / str(k))],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
    return time.perf_counter() - start


def one_session(asked: list[str], out: Path) -> float:
    """Seconds for one ``bundle.chat`` answering every question, each in a new dialogue."""
    script = "".join(f"/new\n{question}\n" for question in asked) + "/quit\n"
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bundle.chat", "--image", str(DEMO_IMAGE), "--output_dir", str(out)],
        cwd=ROOT, check=True, capture_output=True, input=script, text=True,
    )  # fmt: skip
    return time.perf_counter() - start


def same_masks(asked: list[str], separate: Path, session: Path) -> bool:
    """Whether every question's mask is the same from its own run and from the session."""
    name = DEMO_IMAGE.name.removesuffix(".nii.gz")

    def voxels(path: Path) -> np.ndarray:
        return np.asanyarray(nib.load(str(path)).dataobj)

    return all(
        np.array_equal(
            voxels(separate / str(k) / f"{name}_mask.nii.gz"), voxels(session / f"{name}_turn{k}_mask.nii.gz")
        )
        for k in range(1, len(asked) + 1)
    )


def full_size_share() -> float:
    """Share of one slice's FLOPs that the cached encoders take at the full size (``configs/model.json``)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(ROOT / "configs" / "model.json"))
    sizes = {k: parser.get_parsed_content(k) for k in ("text_config", "vision_config", "sam_config", "medisee_config")}
    image_tokens = (sizes["vision_config"]["image_size"] // sizes["vision_config"]["patch_size"]) ** 2
    flops = slice_flops(sizes, image_tokens + PROMPT_TEXT_TOKENS)
    return sum(flops[k] for k in CACHED) / sum(flops.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    asked = questions(args.questions)
    runs, sessions = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            separate, session = Path(tmp) / "runs", Path(tmp) / "session"
            runs.append(separate_runs(asked, separate))
            sessions.append(one_session(asked, session))
            if not same_masks(asked, separate, session):
                raise SystemExit("the session's masks differ from the separate runs'")
    share = full_size_share()

    def spread(values: list[float]) -> str:
        return f"{statistics.mean(values):.1f}" + (f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else "")

    print_table(
        f"{args.questions} questions about {DEMO_IMAGE.name}, demo model, CPU ({args.repeats} repeat(s); same masks)",
        ["how", "total s", "s per question"],
        [
            ["separate monai.bundle runs", spread(runs), f"{statistics.mean(runs) / args.questions:.2f}"],
            ["one session (bundle.chat)", spread(sessions), f"{statistics.mean(sessions) / args.questions:.2f}"],
            ["speed-up", f"{statistics.mean(runs) / statistics.mean(sessions):.1f}x", ""],
        ],
    )
    print_table(
        "full size (configs/model.json), per slice, FLOPs-bound prediction",
        ["cached encoders' share of FLOPs", "follow-up cost vs first question"],
        [[f"{share:.1%}", f"{1 - share:.2f} (about {1 / (1 - share):.2f}x faster, model load not counted)"]],
    )


if __name__ == "__main__":
    main()
