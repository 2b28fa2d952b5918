"""Volume-level metrics: what a user asking about a whole volume gets, target present or not.

Each (volume, question) gives a :class:`VolumeRecord`: the 3D overlap of the final mask with the
label (MONAI's Dice, 95 % Hausdorff distance and symmetric mean surface distance, in mm from the
volume's spacing; the volume error in mL), and per slice whether the label is there, whether the
mask is, and the presence score. :func:`summarize` turns records into the table
``configs/evaluate_volumes.json`` writes, overall, per query kind and per label:

- ``dice_3d``, ``hd95_mm``, ``msd_mm``, ``volume_error_ml`` over the questions whose target is in
  the volume (a missed target has Dice 0; its distances are undefined and counted in ``missed``);
- ``slice_precision`` / ``slice_recall`` / ``slice_f1``: the slices with a mask against the slices
  with the label, over every question; ``presence_auroc``: the presence score against the same
  truth (absent without a rejection token);
- ``target_free_slices_with_mask``: the share of slices without the target that got a mask;
- ``absent_reported_found``: the share of questions about a target the volume does not hold that
  were answered with a mask anyway.

``summarize`` also gives ``best_presence_threshold``: the presence score from which a slice, taken
as holding the target, gives the best slice F1 over all questions (before the 3D clean-up). Run on a
validation split, it is how a model's ``presence_threshold`` is chosen.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from monai.metrics import compute_average_surface_distance, compute_dice, compute_hausdorff_distance, compute_roc_auc

from bundle.prompts import QUERY_KINDS

MM3_PER_ML = 1000.0
HAUSDORFF_PERCENTILE = 95
OUTSIDE_GROUP = "outside the label set"
DECIMALS = 4


@dataclass
class VolumeRecord:
    """The outcome of one question about one volume.

    Attributes:
        volume: the volume's name.
        label: the structure asked about.
        kind: the query kind.
        outside: whether the structure is outside the dataset's label set.
        present: whether the volume holds the target.
        found: whether the answer has a mask.
        dice: 3D Dice (None when the target is absent).
        hd95: 95 % Hausdorff distance in mm (None when absent or either mask is empty).
        msd: symmetric mean surface distance in mm (same).
        volume_error_ml: |predicted - true| volume in mL (None when absent).
        slice_truth: per slice, whether the label is on it.
        slice_found: per slice, whether the final mask is on it.
        slice_presence: per slice, the presence score (NaN without a rejection token or a skipped slice).
        turn: the question's turn number in its dialogue (1 for a single question).
    """

    volume: str
    label: str
    kind: str
    outside: bool
    present: bool
    found: bool
    dice: float | None = None
    hd95: float | None = None
    msd: float | None = None
    volume_error_ml: float | None = None
    slice_truth: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    slice_found: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    slice_presence: np.ndarray = field(default_factory=lambda: np.zeros(0))
    turn: int = 1


def _per_slice(mask: torch.Tensor, slice_axis: int) -> np.ndarray:
    """(X, Y, Z) bool -> per-slice bool along ``slice_axis``."""
    return mask.movedim(slice_axis, 0).flatten(1).any(dim=1).cpu().numpy()


def _distance(value: torch.Tensor) -> float | None:
    number = float(value.reshape(-1)[0])
    return number if math.isfinite(number) else None


def volume_record(
    volume: str,
    label: str,
    kind: str,
    outside: bool,
    pred: torch.Tensor,
    truth: torch.Tensor,
    spacing: Sequence[float],
    slice_axis: int,
    presence: Mapping[int, float | None] | None = None,
) -> VolumeRecord:
    """The record of one question from the final (X, Y, Z) mask and the (X, Y, Z) truth on the same grid.

    Args:
        volume: the volume's name.
        label: the structure asked about.
        kind: the query kind.
        outside: the structure is outside the label set.
        pred: the answer's binary mask.
        truth: the label's binary mask (empty when the volume does not hold it).
        spacing: voxel size in mm along X, Y, Z.
        slice_axis: the axis the volume was sliced along.
        presence: slice index -> presence score, for the slices processed.
    """
    pred, truth = pred.bool().cpu(), truth.bool().cpu()
    present, found = bool(truth.any()), bool(pred.any())
    scores = np.full(pred.shape[slice_axis], np.nan)
    for index, score in (presence or {}).items():
        scores[index] = np.nan if score is None else score
    record = VolumeRecord(
        volume, label, kind, outside, present, found,
        slice_truth=_per_slice(truth, slice_axis), slice_found=_per_slice(pred, slice_axis), slice_presence=scores,
    )  # fmt: skip
    if not present:
        return record
    y_pred, y = pred[None, None].float(), truth[None, None].float()
    record.dice = float(compute_dice(y_pred, y, include_background=True, ignore_empty=False).reshape(-1)[0])
    voxel_ml = float(np.prod(spacing)) / MM3_PER_ML
    record.volume_error_ml = abs(int(pred.sum()) - int(truth.sum())) * voxel_ml
    if found:
        spacing = [float(s) for s in spacing]
        with warnings.catch_warnings():
            # MONAI 1.6 passes its own deprecated argument to get_mask_edges: a notice for MONAI, not for users
            warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*")
            hd = compute_hausdorff_distance(
                y_pred, y, include_background=True, percentile=HAUSDORFF_PERCENTILE, spacing=spacing
            )
            msd = compute_average_surface_distance(y_pred, y, include_background=True, symmetric=True, spacing=spacing)
        record.hd95, record.msd = _distance(hd), _distance(msd)
    return record


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(float(np.mean(kept)), DECIMALS) if kept else None


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, DECIMALS) if denominator else None


def _auroc(scores: np.ndarray, truth: np.ndarray) -> float | None:
    keep = ~np.isnan(scores)
    scores, truth = scores[keep], truth[keep]
    if len(scores) == 0 or truth.all() or not truth.any():
        return None
    return round(float(compute_roc_auc(torch.from_numpy(scores), torch.from_numpy(truth.astype(np.int64)))), DECIMALS)


def best_presence_threshold(records: Sequence[VolumeRecord]) -> float | None:
    """The presence threshold with the best slice F1 over ``records`` (None without presence scores)."""
    scores = np.concatenate([r.slice_presence for r in records]) if records else np.zeros(0)
    truth = np.concatenate([r.slice_truth for r in records]) if records else np.zeros(0, bool)
    keep = ~np.isnan(scores)
    scores, truth = scores[keep], truth[keep]
    if len(scores) == 0 or not truth.any():
        return None
    order = np.argsort(-scores, kind="stable")
    scores, truth = scores[order], truth[order]
    true_positives = np.cumsum(truth)  # taking the k highest scores as present
    f1 = 2 * true_positives / (np.arange(1, len(scores) + 1) + truth.sum())
    # a threshold separates distinct scores only: the last index of each run of equal scores
    last = np.r_[scores[1:] != scores[:-1], True]
    best = int(np.flatnonzero(last)[np.argmax(f1[last])])
    return round(float(scores[best]), DECIMALS)


def group_summary(records: Sequence[VolumeRecord]) -> dict[str, float | int | None]:
    """The metrics of a group of records (see the module docstring)."""
    present = [r for r in records if r.present]
    absent = [r for r in records if not r.present]
    truth = np.concatenate([r.slice_truth for r in records]) if records else np.zeros(0, bool)
    found = np.concatenate([r.slice_found for r in records]) if records else np.zeros(0, bool)
    scores = np.concatenate([r.slice_presence for r in records]) if records else np.zeros(0)
    tp = float((truth & found).sum())
    return {
        "questions": len(records),
        "present": len(present),
        "dice_3d": _mean(r.dice for r in present),
        "hd95_mm": _mean(r.hd95 for r in present),
        "msd_mm": _mean(r.msd for r in present),
        "missed": sum(not r.found for r in present),
        "volume_error_ml": _mean(r.volume_error_ml for r in present),
        "slice_precision": _ratio(tp, float(found.sum())),
        "slice_recall": _ratio(tp, float(truth.sum())),
        "slice_f1": _ratio(2 * tp, float(found.sum() + truth.sum())),
        "presence_auroc": _auroc(scores, truth),
        "target_free_slices_with_mask": _ratio(float((found & ~truth).sum()), float((~truth).sum())),
        "absent": len(absent),
        "absent_reported_found": _ratio(float(sum(r.found for r in absent)), float(len(absent))),
    }


def summarize(records: Sequence[VolumeRecord]) -> dict:
    """``{"overall": .., "kinds": {kind: ..}, "labels": {label: ..}}`` of the records, and
    ``"turns": {k: ..}`` when follow-ups were asked (turn 1: the single questions).

    Questions about structures outside the label set count in ``overall`` and their kind, and form
    one group of their own under ``labels``.
    """
    labels: dict[str, list[VolumeRecord]] = {}
    for record in records:
        labels.setdefault(OUTSIDE_GROUP if record.outside else record.label, []).append(record)
    kinds = {kind: [r for r in records if r.kind == kind] for kind in QUERY_KINDS}
    summary = {
        "best_presence_threshold": best_presence_threshold(records),
        "overall": group_summary(records),
        "kinds": {kind: group_summary(rows) for kind, rows in kinds.items() if rows},
        "labels": {name: group_summary(rows) for name, rows in sorted(labels.items())},
    }
    turns = sorted({r.turn for r in records})
    if turns != [1] and records:
        summary["turns"] = {str(k): group_summary([r for r in records if r.turn == k]) for k in turns}
    return summary
