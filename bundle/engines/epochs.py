"""Tell datasets and samplers which epoch it is, so each epoch draws new targets and questions."""

from __future__ import annotations

from collections.abc import Sequence

from ignite.engine import Engine, Events


class EpochSetter:
    """Calls ``set_epoch(epoch)`` on every given object that has it (datasets, DistributedSampler).

    Args:
        targets: objects to update at the start of each epoch (None entries are ignored).
    """

    def __init__(self, targets: Sequence) -> None:
        self.targets = [t for t in targets if t is not None and hasattr(t, "set_epoch")]

    def attach(self, engine: Engine) -> None:
        """Registers the update on ``EPOCH_STARTED``."""
        engine.add_event_handler(Events.EPOCH_STARTED, self)

    def __call__(self, engine: Engine) -> None:
        for target in self.targets:
            target.set_epoch(engine.state.epoch)
