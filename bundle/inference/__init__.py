"""The inference workflow (``configs/inference.json``): volumes + a question -> mask, boxes, answer, overlay.

Data flow: :func:`datalist` (volumes named by ``--image``, each with the question) ->
preprocessing (:class:`LoadInputd`, finite values, CT window / MR normalisation; in
``num_workers`` worker processes of the :class:`VolumeLoader`, ahead of the model) ->
:class:`VolumeEvaluator` -> :class:`SliceInferer` (MediSee on ``batch_size`` slices per forward,
:class:`AnswerGenerator` on the slice with the largest target) -> postprocessing
(:class:`SaveOverlayd`, ``Invertd`` to the file's grid, :class:`DescribeTargetd`,
:class:`SaveMaskd`, :class:`SaveResultd`) -> :class:`InferenceSummary` (and, for a ``--dialogue``,
:class:`SaveDialogueSummary`: each turn is an entry of its own, :mod:`bundle.inference.dialogue`).
Several processes (``torchrun``, ``configs/multi_gpu_inference.json``) share a list of volumes:
see :mod:`bundle.inference.distributed`.
"""

from bundle.inference.answer import AnswerGenerator
from bundle.inference.dialogue import Dialogue, SaveDialogueSummary, read_dialogue
from bundle.inference.distributed import (
    GatheredSummary,
    finish_distributed,
    init_distributed,
    is_main_process,
    rank_device,
    rank_share,
    run_share,
    wait_for_every_rank,
)
from bundle.inference.errors import report_errors_briefly
from bundle.inference.evaluator import VolumeEvaluator, no_collation
from bundle.inference.geometry import DescribeTargetd
from bundle.inference.inferer import SliceInferer, SlicePrediction
from bundle.inference.inputs import LoadInputd, datalist, find_volumes, input_folder, require_volumes
from bundle.inference.loading import VolumeLoader
from bundle.inference.outputs import OutputLayout
from bundle.inference.settings import check_query, check_query_fits, flag, image_intensity, question
from bundle.inference.summary import InferenceSummary
from bundle.inference.writers import SaveMaskd, SaveOverlayd, SaveResultd

__all__ = [
    "AnswerGenerator",
    "DescribeTargetd",
    "Dialogue",
    "GatheredSummary",
    "InferenceSummary",
    "LoadInputd",
    "OutputLayout",
    "SaveMaskd",
    "SaveOverlayd",
    "SaveDialogueSummary",
    "SaveResultd",
    "SliceInferer",
    "SlicePrediction",
    "VolumeEvaluator",
    "VolumeLoader",
    "check_query",
    "check_query_fits",
    "datalist",
    "find_volumes",
    "finish_distributed",
    "flag",
    "image_intensity",
    "init_distributed",
    "input_folder",
    "is_main_process",
    "no_collation",
    "question",
    "read_dialogue",
    "rank_device",
    "rank_share",
    "report_errors_briefly",
    "require_volumes",
    "run_share",
    "wait_for_every_rank",
]
