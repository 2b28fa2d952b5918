"""Training checkpoints: saved atomically, and training resumed from the latest one.

A checkpoint is a directory ``<save_dir>/iteration_<N>/`` holding a MediSee checkpoint (the
trained weights as safetensors, the architecture json and the tokenizer: usable directly as the
bundle's ``checkpoint``) and ``training_state.pt`` (optimizer, scheduler, engine counters, the
loader's position and random states, loadable with ``weights_only=True``).

A resumed run is the same run: it ends with the weights the uninterrupted run ends with. Besides
weights, optimizer and scheduler, that takes every random state (torch's, CUDA's, Python's and
NumPy's, at the save) and the rest of the interrupted epoch's batches: the states at the epoch's
start are saved too, so the resumed epoch's loader redraws the same order, and a
:class:`bundle.data.ResumableDataLoader` walks past the batches already trained on before the
states of the save are put back.

A run killed at any point (even SIGKILL during a save) leaves only complete checkpoints under
their final names: directories are written under hidden temporary names and renamed, the state
file goes in last, and old checkpoints are renamed away before they are deleted. What a kill
leaves (hidden temporaries, a directory without its state file) is never taken for a checkpoint
and is removed when training resumes.
"""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events

from bundle.engines.batch import unwrap
from common.errors import WeightsError, brief
from common.files import atomic_path
from networks.checkpoint import load_checkpoint, save_checkpoint

logger = logging.getLogger(__name__)

PREFIX = "iteration_"
STATE_FILE = "training_state.pt"
PATTERN = re.compile(rf"^{PREFIX}(\d+)$")
LEFTOVER = re.compile(rf"^\.{PREFIX}\d+\.")
"""Hidden names of atomic writes and deletions (``.iteration_N.tmp-*``, ``.iteration_N.old-*``)."""


def checkpoints_in(save_dir: str | Path) -> list[Path]:
    """Complete checkpoint directories in ``save_dir``, oldest first (temporary ones are ignored)."""
    save_dir = Path(save_dir)
    if not save_dir.is_dir():
        return []
    found = [
        (int(m.group(1)), p) for p in save_dir.iterdir() if (m := PATTERN.match(p.name)) and (p / STATE_FILE).is_file()
    ]
    return [p for _, p in sorted(found)]


def remove_leftovers(save_dir: str | Path) -> list[Path]:
    """Deletes what an interrupted save or prune left in ``save_dir``; returns what was removed.

    Leftovers are hidden temporaries of atomic writes and checkpoint directories without their
    state file (a kill between the weights and the state). Neither is ever resumed from.
    """
    save_dir = Path(save_dir)
    if not save_dir.is_dir():
        return []
    complete = set(checkpoints_in(save_dir))
    leftovers = [
        p for p in save_dir.iterdir() if LEFTOVER.match(p.name) or (PATTERN.match(p.name) and p not in complete)
    ]
    for path in leftovers:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if leftovers:
        logger.warning("removed leftovers of an interrupted save: %s", ", ".join(p.name for p in leftovers))
    return leftovers


def discard(checkpoint: Path) -> None:
    """Deletes a checkpoint directory, renaming it to a hidden name first so no half-deleted one stays visible."""
    hidden = checkpoint.with_name(f".{checkpoint.name}.old-{os.getpid()}")
    os.replace(checkpoint, hidden)
    shutil.rmtree(hidden, ignore_errors=True)


RandomStates = dict[str, Any]
"""Every global random generator's state, as :func:`random_states` gives it (weights-only loadable)."""
NUMPY_GENERATOR = "MT19937"


def random_states() -> RandomStates:
    """The states of torch's (CPU and CUDA), Python's and NumPy's global random generators."""
    version, python_state, gauss = random.getstate()
    _, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": {"version": version, "state": list(python_state), "gauss": gauss},
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "position": position, "has_gauss": has_gauss,
                  "cached": cached},
    }  # fmt: skip


def set_random_states(states: RandomStates) -> None:
    """Puts back states from :func:`random_states` (those a checkpoint lacks stay as they are).

    Checkpoints written before the full states were kept hold torch's state and Python's as a bare
    list: only torch's comes back from those.
    """
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if isinstance(states.get("python"), dict):
        python = states["python"]
        random.setstate((python["version"], tuple(python["state"]), python["gauss"]))
    if "numpy" in states:
        numpy = states["numpy"]
        keys = numpy["keys"].numpy().astype(np.uint32)
        np.random.set_state((NUMPY_GENERATOR, keys, numpy["position"], numpy["has_gauss"], numpy["cached"]))


def batches_this_epoch(engine: Engine) -> int:
    """How many batches of its current epoch ``engine`` has trained on (all of them for an unknown epoch length)."""
    if not engine.state.epoch_length:
        return engine.state.iteration
    return engine.state.iteration - (engine.state.epoch - 1) * engine.state.epoch_length


def latest_checkpoint(save_dir: str | Path) -> str | None:
    """The newest checkpoint directory in ``save_dir`` (a ``checkpoint`` value), or None."""
    found = checkpoints_in(save_dir)
    return str(found[-1]) if found else None


class TrainingCheckpoint:
    """Saves every ``save_interval`` iterations and at the end of each epoch; resumes at start.

    Args:
        save_dir: where checkpoint directories go (``<output_dir>/checkpoints``).
        network: the model (DDP wrappers are unwrapped).
        tokenizer: saved with the weights.
        optimizer: its state is saved for resuming.
        lr_scheduler: its state is saved for resuming (optional).
        save_interval: iterations between saves (0: epoch ends only).
        n_saved: how many checkpoints to keep.
        resume: load the latest checkpoint in ``save_dir`` when training starts.
    """

    def __init__(
        self,
        save_dir: str | Path,
        network: torch.nn.Module,
        tokenizer,
        optimizer: torch.optim.Optimizer,
        lr_scheduler=None,
        save_interval: int = 0,
        n_saved: int = 2,
        resume: bool = True,
    ) -> None:
        self.save_dir = Path(save_dir)
        self.model = unwrap(network)
        self.tokenizer = tokenizer
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.save_interval = save_interval
        self.n_saved = max(n_saved, 1)
        self.resume = resume
        self._epoch_states: RandomStates | None = None
        self._pending: dict[str, Any] | None = None

    def attach(self, engine: Engine) -> None:
        """Registers resume-at-start, the epoch's random states and the periodic saves on ``engine``.

        Attach it after the handlers that set the epoch on datasets and samplers (``EpochSetter``):
        what it records at ``EPOCH_STARTED`` is the state the epoch's loader draws its order from.
        """
        if self.resume:
            engine.add_event_handler(Events.STARTED, self.load_latest)
        engine.add_event_handler(Events.EPOCH_STARTED, self.epoch_started)
        if self.save_interval:
            engine.add_event_handler(Events.ITERATION_COMPLETED(every=self.save_interval), self.save)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.save)

    def save(self, engine: Engine) -> None:
        """Writes ``iteration_<N>`` atomically (rank 0 only) and prunes old checkpoints."""
        if torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
            return
        target = self.save_dir / f"{PREFIX}{engine.state.iteration:08d}"
        if (target / STATE_FILE).is_file():
            return  # an epoch end that coincides with an interval save
        state = {
            "engine": {"iteration": engine.state.iteration, "epoch": engine.state.epoch},
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict() if self.lr_scheduler is not None else None,
            "rng": random_states(),
            "loader": {"batches": batches_this_epoch(engine), "epoch_rng": self._epoch_states},
        }
        # save_checkpoint writes its directory atomically; the state file goes in last, so a
        # directory without it is never taken for a complete checkpoint
        save_checkpoint(self.model, self.tokenizer, target)
        with atomic_path(target / STATE_FILE) as tmp:
            torch.save(state, tmp)
        logger.info("saved checkpoint %s", target)
        for old in checkpoints_in(self.save_dir)[: -self.n_saved]:
            discard(old)

    def load_latest(self, engine: Engine) -> None:
        """Restores weights, optimizer, scheduler and counters from the newest checkpoint.

        Leftovers of a killed run are removed first (rank 0; other ranks never read them).
        """
        if not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0:
            remove_leftovers(self.save_dir)
        latest = latest_checkpoint(self.save_dir)
        if latest is None:
            return
        load_checkpoint(self.model, latest)
        try:
            state = torch.load(Path(latest) / STATE_FILE, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise WeightsError(f"cannot read training state in {latest}: {brief(exc)}") from None
        self.optimizer.load_state_dict(state["optimizer"])
        if self.lr_scheduler is not None and state["lr_scheduler"] is not None:
            self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        # ignite starts the first epoch of a run at iteration % epoch_length and then increments
        # the epoch, so a mid-epoch checkpoint continues inside its own epoch
        engine.state.iteration = state["engine"]["iteration"]
        engine.state.epoch = engine.state.iteration // engine.state.epoch_length
        loader = state.get("loader") or {}
        done = engine.state.iteration % engine.state.epoch_length
        if done and loader.get("epoch_rng") is not None:
            self._pending = {"batches": done, "epoch_rng": loader["epoch_rng"], "rng": state["rng"]}
        else:
            set_random_states(state["rng"])  # an epoch's end (or an older checkpoint: its torch state only)
            if done:
                logger.warning("checkpoint %s has no loader position: the rest of its epoch draws new batches", latest)
        logger.info("resumed from %s at iteration %d (epoch %d)", latest, engine.state.iteration, engine.state.epoch)

    def epoch_started(self, engine: Engine) -> None:
        """Records the random states the epoch starts from; in a resumed epoch, replays the interrupted one.

        The replay puts back the interrupted epoch's starting states, so the loader draws the same
        order, has a :class:`bundle.data.ResumableDataLoader` skip the batches trained on before the
        save, and puts back the states of the save just before the first remaining batch.
        """
        pending, self._pending = self._pending, None
        if pending is None:
            self._epoch_states = random_states()
            return
        self._epoch_states = pending["epoch_rng"]
        set_random_states(pending["epoch_rng"])
        # with gradient accumulation the engine iterates MicroBatches: an iteration took K of its loader's batches
        loader = getattr(engine.state.dataloader, "loader", engine.state.dataloader)
        micro_batches = getattr(engine.state.dataloader, "accumulation_steps", 1)
        batch_sampler = getattr(loader, "batch_sampler", None)
        if hasattr(batch_sampler, "skip_next"):
            skipped = pending["batches"] * micro_batches
            batch_sampler.skip_next(skipped, then=lambda: set_random_states(pending["rng"]))
        else:
            set_random_states(pending["rng"])
            logger.warning(
                "the training loader cannot fast-forward (use bundle.data.ResumableDataLoader): "
                "the rest of epoch %d draws new batches", engine.state.epoch,
            )  # fmt: skip
