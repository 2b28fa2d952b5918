"""What the page asks of the server, apart from HTTP: web sessions, uploads, questions, views, downloads.

One :class:`bundle.session.Session` (the model, built once) serves every browser: each web session
has its own folder (uploads and outputs), its own open volume (a
:class:`bundle.session.Conversation`, whose slice encodings stay between questions) and its turns.
The model answers one question at a time (a lock); the progress of the running question is read
by the page while it waits. A session's folder is deleted when the session ends (the page closes
it, or the server stops).
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bundle.deploy.segmentation import SEG_FILE
from bundle.inference import keys as K
from bundle.inference.dialogue import turn_line
from bundle.inference.inputs import VolumeSource
from bundle.session import Conversation, Session
from bundle.web.dicom import TurnSegWriter
from bundle.web.uploads import UploadFolder, UploadLimits, shown_name
from bundle.web.views import Plane, SliceViews, TurnOverlay, Window, default_window, png_bytes
from common.errors import ConfigError, DataError
from transforms.dicom_series import DEFAULT_TOLERANCE
from transforms.intensity import WINDOW_PRESETS

SESSION_ID_BYTES = 16
DEFAULT_IDLE_S = 3600.0
QUERY_PREFIX = "config 'query': "
UPLOADS = "uploads"
OUTPUTS = "outputs"
DOWNLOADS = (K.MASK_FILE, K.RESULT_FILE, K.OVERLAY_FILE, SEG_FILE)
"""The output kinds a turn offers for download (the DICOM SEG for a DICOM series' turns that found their target)."""


class SessionEnded(DataError):
    """A request of a web session that has ended (or never was)."""


@dataclass
class Progress:
    """The state of a web session's running question (or volume being opened)."""

    busy: bool = False
    done: int = 0
    total: int = 0
    stage: str = ""

    def update(self, done: int, total: int) -> None:
        """Called by the inferer after each batch of slices."""
        self.done, self.total = done, total

    def as_dict(self) -> dict[str, Any]:
        """The JSON the page polls."""
        return {"busy": self.busy, "done": self.done, "total": self.total, "stage": self.stage}


@dataclass
class WebSession:
    """One browser's session: its folder, uploads, open volume and turns."""

    id: str
    folder: Path
    uploads: UploadFolder
    conversation: Conversation | None = None
    views: SliceViews | None = None
    window: Window | None = None
    label: str = ""
    seg_writer: TurnSegWriter | None = None
    overlays: dict[int, TurnOverlay] = field(default_factory=dict)
    progress: Progress = field(default_factory=Progress)
    last_seen: float = field(default_factory=time.monotonic)
    working: threading.Lock = field(default_factory=threading.Lock)
    """Held while the session's volume is opened or a question of it is answered (one at a time)."""

    def require_volume(self) -> Conversation:
        """The open volume's conversation.

        Raises:
            DataError: no volume is open yet.
        """
        if self.conversation is None or self.views is None:
            raise DataError("no volume is open: upload one or pick one first")
        return self.conversation

    def turn(self, number: int) -> Mapping[str, Any]:
        """Turn ``number`` (from 1) of the open volume.

        Raises:
            DataError: there is no such turn.
        """
        turns = self.require_volume().turns
        if not 1 <= number <= len(turns):
            raise DataError(f"there is no turn {number}: {len(turns)} asked so far")
        return turns[number - 1]


def library_volumes(sources: Sequence[VolumeSource]) -> dict[str, Path]:
    """The server-side volumes a user may pick, by name (the only paths a request can reach)."""
    return {source.name: source.path for source in sources}


def turn_summary(turn: Mapping[str, Any], threshold: float, overlay: TurnOverlay) -> dict[str, Any]:
    """What the page shows of one turn: the dialogue summary's line, plus the 3D box, the highest presence
    score, the files offered and the slices the views go to."""
    line = turn_line(turn)
    files = line.pop("files")
    result = turn.get(K.RESULT, {})
    scores = [p["score"] for p in result.get("presence", []) if p.get("score") is not None]
    return {
        **line,
        "box_3d": result.get("box_3d"),
        "presence": max(scores) if scores else None,
        "presence_threshold": threshold,
        "downloads": [kind for kind in DOWNLOADS if kind in files],
        "centre": overlay.centre(),
    }


class WebService:
    """The page's server side, on one model session.

    Args:
        session: the model session (built once).
        root: the folder the web sessions' folders are made in (deleted entries are under it only).
        limits: upload size limits.
        library: server-side volumes a user may pick (``--image``), by name.
        window_preset: the model's CT window name (the views' default window), or None (MR: percentiles).
        idle_s: a web session with no request for this long ends (its folder deleted) when another starts.
    """

    def __init__(
        self,
        session: Session,
        root: Path,
        limits: UploadLimits,
        library: Mapping[str, Path] | None = None,
        window_preset: str | None = None,
        idle_s: float = DEFAULT_IDLE_S,
    ) -> None:
        self.session = session
        self.idle_s = idle_s
        self.root = root
        self.limits = limits
        self.library = dict(library or {})
        self.window_preset = WINDOW_PRESETS.get(window_preset) if window_preset else None
        self.sessions: dict[str, WebSession] = {}
        self.model_lock = threading.Lock()
        self.threshold = float(session.inferer.presence_threshold)
        self.tolerance = float(
            getattr(session.preprocessing.transforms[0], "slice_spacing_tolerance", DEFAULT_TOLERANCE)
        )

    # sessions

    def start(self) -> WebSession:
        """A new web session with its own folder (sessions idle too long end first)."""
        now = time.monotonic()
        for old in [w.id for w in self.sessions.values() if now - w.last_seen > self.idle_s]:
            self.end(old)
        sid = secrets.token_hex(SESSION_ID_BYTES)
        folder = self.root / sid
        folder.mkdir(parents=True)
        web = WebSession(sid, folder, UploadFolder(folder / UPLOADS, self.limits))
        self.sessions[sid] = web
        return web

    def get(self, sid: str | None) -> WebSession:
        """The web session ``sid``.

        Raises:
            SessionEnded: no such session (it ended, or the server restarted).
        """
        web = self.sessions.get(sid or "")
        if web is None:
            raise SessionEnded("this page's session has ended: reload the page")
        web.last_seen = time.monotonic()
        return web

    def end(self, sid: str | None) -> bool:
        """Ends web session ``sid``: its volume is released and its folder deleted. False if there was none.

        Never waits for the model: a session ended while its question is answered has its folder
        deleted when that answer is done (:meth:`working_on`).
        """
        web = self.sessions.pop(sid or "", None)
        if web is None:
            return False
        if web.working.acquire(blocking=False):
            try:
                self.release(web)
            finally:
                web.working.release()
        return True

    @staticmethod
    def release(web: WebSession) -> None:
        """Forgets an ended session's volume and deletes its folder."""
        web.conversation, web.views, web.overlays = None, None, {}
        shutil.rmtree(web.folder, ignore_errors=True)

    @contextlib.contextmanager
    def working_on(self, web: WebSession, stage: str) -> Iterator[Progress]:
        """Runs one piece of model work for ``web`` (opening a volume, answering a question), one at a time.

        Raises:
            DataError: the session is already working.
        """
        if not web.working.acquire(blocking=False):
            raise DataError("the page is still working on the last request: wait for it")
        web.progress = Progress(busy=True, stage=stage)
        try:
            yield web.progress
        finally:
            web.progress.busy = False
            if web.id not in self.sessions:  # ended meanwhile
                self.release(web)
            web.working.release()

    def end_all(self) -> None:
        """Ends every web session (the server stops)."""
        for sid in list(self.sessions):
            self.end(sid)

    # volumes

    def open_upload(self, web: WebSession, path: Path, filename: str) -> dict[str, Any]:
        """Opens a stored upload; an upload that is not a readable volume is deleted and refused.

        Raises:
            DataError: the upload is not one readable 3D volume.
        """
        label = shown_name(filename)
        try:
            return self.open(web, path, label)
        except (DataError, ConfigError) as error:
            web.uploads.remove(path)
            # the message names the user's file, not where the server stored it
            raise type(error)(str(error).replace(str(path), label)) from None

    def open_library(self, web: WebSession, name: str) -> dict[str, Any]:
        """Opens the server-side volume called ``name``.

        Raises:
            DataError: no volume of the server's folder has that name.
        """
        if name not in self.library:
            raise DataError(f"no volume called {shown_name(name)!r} here; pick one of the list")
        return self.open(web, self.library[name], name)

    def open(self, web: WebSession, path: Path, label: str) -> dict[str, Any]:
        """Loads the volume at ``path`` for ``web`` (its earlier volume and turns are released)."""
        with self.working_on(web, "reading the volume"), self.model_lock:
            conversation = self.session.open(path, output_dir=web.folder / OUTPUTS, keep_source=True)
            self.session.conversation = None  # current again only while this session asks
        if min(conversation.source.shape[1:]) < 2:
            shape = "x".join(str(n) for n in conversation.volume.shape[1:])
            raise DataError(f"{label} is a 2D image ({shape} voxels): upload a volume of several slices")
        spacing = [float(s) for s in conversation.entry[K.IMAGE].pixdim[:3]]
        web.seg_writer = TurnSegWriter(Path(path), self.tolerance) if Path(path).is_dir() else None
        web.conversation, web.label, web.overlays = conversation, label, {}
        web.views = SliceViews(conversation.source, spacing)
        web.window = default_window(conversation.source, self.window_preset)
        return self.volume_info(web)

    def volume_info(self, web: WebSession) -> dict[str, Any]:
        """What the page needs to show the open volume."""
        web.require_volume()
        return {
            "name": web.label,
            "shape": list(web.views.shape),
            "spacing": list(web.views.spacing),
            "window": {"level": web.window.level, "width": web.window.width},
            "presets": {name: {"level": lv, "width": wd} for name, (lv, wd) in WINDOW_PRESETS.items()},
            "turns": [turn_summary(t, self.threshold, web.overlays[t[K.TURN]]) for t in web.conversation.turns],
        }

    # questions

    def ask(self, web: WebSession, question: Any) -> dict[str, Any]:
        """Answers ``question`` as the session's next turn (blocking: call it off the event loop).

        Raises:
            ConfigError: the question is empty or too long.
            DataError: no volume is open, or the session is still working on its last request.
        """
        conversation = web.require_volume()
        if not str(question).strip():
            raise ConfigError("the question is empty: type a question")
        with self.working_on(web, "finding the target slice by slice") as progress:
            with self.model_lock:
                self.session.use(conversation)
                try:
                    turn = self.session.ask(question, on_progress=progress.update)
                except ConfigError as error:
                    # the session words it for the command line; the page has no config ids
                    raise ConfigError(str(error).removeprefix(QUERY_PREFIX)) from None
                finally:
                    self.session.conversation = None
            if web.seg_writer is not None:
                progress.stage = "writing the DICOM SEG"
                turn = web.seg_writer(turn, conversation.output_dir)
                conversation.turns[-1] = turn
        boxes = {int(s.index): s.box.tolist() for s in turn[K.SLICES]}
        overlay = TurnOverlay.of(turn[K.LOADED_PRED], boxes)
        web.overlays[turn[K.TURN]] = overlay
        return turn_summary(turn, self.threshold, overlay)

    def new_dialogue(self, web: WebSession) -> None:
        """Starts a new dialogue about the open volume (its encodings are kept)."""
        web.require_volume().dialogue.new()

    # views and files

    def view(self, web: WebSession, plane: str, index: int, window: Window, turn: int | None) -> bytes:
        """The PNG of slice ``index`` of ``plane`` with turn ``turn``'s mask (none when None).

        Raises:
            DataError: no volume is open, an unknown plane, slice or turn.
        """
        web.require_volume()
        overlay = None
        if turn is not None:
            web.turn(turn)
            overlay = web.overlays.get(turn)
        return png_bytes(web.views.render(Plane.named(plane), index, window, overlay))

    def download(self, web: WebSession, turn: int, kind: str) -> Path:
        """The path of output ``kind`` of turn ``turn``.

        Raises:
            DataError: no such turn, or the turn has no such output.
        """
        files = web.turn(turn).get(K.OUTPUT_FILES, {})
        if kind not in DOWNLOADS or kind not in files:
            raise DataError(f"turn {turn} has no {shown_name(kind)!r} file; it has {', '.join(files)}")
        return Path(files[kind])
