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


def quiet_libraries(environ: MutableMapping[str, str] = os.environ) -> None:
    """Silences the library notices listed in this module (call before holoscan or transformers is imported).

    Args:
        environ: the process environment (a user's own setting of a variable is kept).
    """
    for name, value in ENVIRONMENT.items():
        environ.setdefault(name, value)
    for name, level in LOGGERS.items():
        logging.getLogger(name).setLevel(level)
