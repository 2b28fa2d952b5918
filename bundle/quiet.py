"""Quiet by default: the notices libraries print on every run, silenced in one place for every entry point.

A run should show what matters to its user: MediSee's own warnings (untrained heads, what was
decided about a DICOM series), the progress bar, the summary, and on failure one ``error:`` line.
What libraries print besides, and how each is silenced, through the library's own level setting:

- **Holoscan** (the MONAI Deploy SDK's runtime, C++): its graph's life cycle (``[info] [gxf_executor...]``),
  its CUDA probe on machines without a GPU (``[warning] [gxf_cuda.cpp...]``) and, when an operator
  raises, its own ``[error] ... GXF_FAILURE`` lines before the exception reaches the app, which then
  prints the one ``error:`` line. Holoscan's logger reads ``HOLOSCAN_LOG_LEVEL`` when holoscan is
  imported, so :func:`quiet_libraries` must run before that (the deploy CLI imports the SDK after it).
- **transformers**: notices such as the embedding-resize one when candidate tokens are added
  (``TRANSFORMERS_VERBOSITY``, read when transformers sets up its logger).
- **highdicom**: INFO lines about copying attributes into a SEG.
- **nvImageCodec** (the SDK's and MONAI's GPU DICOM decoders): "not available" on CPU machines.

A setting the user made in the environment is kept (``HOLOSCAN_LOG_LEVEL=INFO ...`` shows holoscan
again). Entry points call :func:`quiet_libraries` unless asked for debug output (``-l DEBUG`` /
``--debug``), so nothing is hidden from a user who asks.

The ``monai.bundle run`` workflows call :func:`quiet_workflow` first in their ``initialize``
(``configs/model.json``), unless ``--debug true``; it silences, through :class:`WorkflowNoise` on the
console handlers:

- **Ignite's engine lines of a one-pass engine** (inference, evaluation): "Engine run resuming from
  iteration 0, epoch 0 until 1 epochs", "Epoch[1] Complete", "Engine run finished", and MONAI's
  "Key metric: ... best value ... at epoch: 1" of an evaluation that has no epochs to compare.
  Training keeps them.
- **Ignite's "... terminating due to exception: applying transform <...>" ERROR lines** of every engine:
  the exception goes on to the bundle's own report (one ``error:`` line, or the traceback of a bug).
- **Vocabulary growth** when no training follows (the checkpoint's rows replace the new ones):
  the bundle's "growing the vocabulary" line and transformers' multivariate-normal notice (the bundle
  chose that resizing; the notice says nothing a user can act on, so it goes in training too).
- **MONAI's input summary** (``--- input summary of monai.bundle.scripts.run ---``, logged after
  ``initialize``). The line MONAI logs before any bundle code runs, "Setting logging properties based
  on config", is kept out by ``configs/logging.conf`` (its ``monai.bundle.workflows`` logger at WARNING).
- **Other ranks**: under ``torchrun`` only rank 0 prints; the others show errors only.

MONAI's "parsing config_file ...: ... passed to Python `eval()`" warning is issued before any bundle code
runs, so no setting of the bundle can remove it (it goes to stderr, not to the result lines on stdout).
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping

ENVIRONMENT = {"HOLOSCAN_LOG_LEVEL": "CRITICAL", "TRANSFORMERS_VERBOSITY": "error"}
"""Library log levels read from the environment when the library starts (CRITICAL: not its ERROR lines,
which repeat an exception the app reports itself)."""
LOGGERS = {
    "highdicom": logging.WARNING,
    "transformers": logging.ERROR,
    "monai.deploy.operators.decoder_nvimgcodec": logging.ERROR,
    "monai.data.nvimgcodec_pydicom_plugin": logging.ERROR,
}
"""Python loggers of libraries and the level below which their records are dropped."""
QUIET_LEVEL = "WARNING"
"""The root log level of a quiet run: other libraries' INFO chatter goes, every warning stays."""
ENGINE_LOGGER = "ignite.engine.engine."
"""Prefix of the loggers of ignite engines (``ignite.engine.engine.<class name>``)."""
ONE_PASS_ENGINES = ("VolumeEvaluator", "VolumeQuestionEvaluator")
"""Engines that always make exactly one pass (inference, whole-volume evaluation)."""
EVALUATOR = "MediSeeEvaluator"
"""The slice evaluator: one pass in ``evaluate.json`` (``training`` false), validation in training."""
EXCEPTION_NOTICE = "terminating due to exception"
"""Ignite's ERROR lines that restate an exception the run reports itself."""
RESIZE_NOTICES = {
    "networks.llava": "growing the vocabulary",
    "transformers.modeling_utils": "The new embeddings will be initialized",
}
"""Logger -> start of its record announcing that new vocabulary rows are made."""
SUMMARY_LOGGER = "monai.bundle.scripts"
"""MONAI's run logs its input summary here, after ``initialize``."""
OTHER_RANK_LEVEL = logging.ERROR
"""What ranks other than 0 still print under ``torchrun``."""


def quiet_libraries(environ: MutableMapping[str, str] = os.environ) -> None:
    """Silences the library notices listed in this module (call before holoscan or transformers is imported).

    Args:
        environ: the process environment (a user's own setting of a variable is kept).
    """
    for name, value in ENVIRONMENT.items():
        environ.setdefault(name, value)
    for name, level in LOGGERS.items():
        logging.getLogger(name).setLevel(level)


class WorkflowNoise(logging.Filter):
    """Drops the log records of a workflow run that say nothing to its user (see the module doc).

    Args:
        training: the run trains (its engines' epoch lines and the vocabulary growth stay).
    """

    def __init__(self, training: bool) -> None:
        super().__init__()
        self.training = training
        self.one_pass = {ENGINE_LOGGER + name for name in ONE_PASS_ENGINES}
        if not training:
            self.one_pass.add(ENGINE_LOGGER + EVALUATOR)

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a record to drop."""
        name = record.name
        if name.startswith(ENGINE_LOGGER):
            if record.levelno >= logging.ERROR:
                return EXCEPTION_NOTICE not in record.getMessage()
            return name not in self.one_pass
        notice = RESIZE_NOTICES.get(name)
        if notice is not None and record.getMessage().startswith(notice):
            return self.training and name != "transformers.modeling_utils"
        return True


def process_rank(environ: MutableMapping[str, str] = os.environ) -> int:
    """This process's rank under ``torchrun`` (its ``RANK`` variable), 0 otherwise."""
    try:
        return int(environ.get("RANK", "0"))
    except ValueError:
        return 0


def quiet_workflow(debug: bool | str = False, training: bool | str = False) -> None:
    """Silences what a ``monai.bundle run`` workflow would print without telling its user anything.

    Call it first in ``initialize`` (the configs have set up logging by then). Ranks other than 0
    print errors only, debug or not: every rank would print the same lines.

    Args:
        debug: show everything (``--debug true``); MONAI's input summary comes back too.
        training: the run trains (``training``, true in ``train.json``).
    """
    from bundle.inference.settings import flag  # settings imports the data readers: keep this module light

    if process_rank() != 0:
        logging.getLogger().setLevel(OTHER_RANK_LEVEL)
        for name in (SUMMARY_LOGGER, "transformers"):
            logging.getLogger(name).setLevel(OTHER_RANK_LEVEL)
    if flag(debug, "debug"):
        logging.getLogger(SUMMARY_LOGGER).setLevel(logging.INFO)
        return
    logging.getLogger(SUMMARY_LOGGER).setLevel(logging.WARNING)
    noise = WorkflowNoise(flag(training, "training"))
    # records propagate to the root's handlers (configs/logging.conf) and transformers' own
    for logger in (logging.getLogger(), logging.getLogger("transformers")):
        for handler in logger.handlers:
            for old in [f for f in handler.filters if isinstance(f, WorkflowNoise)]:
                handler.removeFilter(old)  # an earlier run of this process
            handler.addFilter(noise)
