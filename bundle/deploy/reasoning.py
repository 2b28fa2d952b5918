"""The reasoning segmentation operator: MediSee answers the question on each volume it receives."""

from __future__ import annotations

from typing import Any

from monai.deploy.core import Fragment, Operator, OperatorSpec

from bundle.deploy import ports
from bundle.deploy.model import MediSeeBundle, VolumeReasoner
from bundle.inference import keys as K


class MediSeeReasoningOperator(Operator):
    """Segments, locates and explains the target the question names, one volume per ``compute``.

    The model is built once, when the graph starts, and serves every volume of the run.

    Named input:
        volume: ``{"image": (1, X, Y, Z) MetaTensor on the input's grid, "name": str}``.
    Named output:
        prediction: the volume's dictionary with ``query``, ``pred`` (uint8 mask on the input's grid
        and affine), ``slices``, ``answer``, ``answer_slice`` and ``result`` (boxes, volume).

    Args:
        fragment: the application.
        bundle: the bundle's configs (model, inferer, intensity settings).
        query: the question, asked of every volume.
    """

    def __init__(self, fragment: Fragment, *args: Any, bundle: MediSeeBundle, query: str, **kwargs: Any) -> None:
        self.bundle = bundle
        self.query = query
        self.reasoner: VolumeReasoner | None = None
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input(ports.VOLUME)
        spec.output(ports.PREDICTION)

    def start(self) -> None:
        """Builds the model (once per run; weights are read here)."""
        self.reasoner = self.bundle.build_reasoner()

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        """Answers the question on the received volume and emits the prediction."""
        volume = op_input.receive(ports.VOLUME)
        op_output.emit(self.reasoner({**volume, K.QUERY: self.query}), ports.PREDICTION)
