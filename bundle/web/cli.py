"""The command line of the web page: options, the model session, the server.

Model options are those of the chat (:mod:`bundle.chat`): ``--config_file`` and ``--id value``
overrides of the inference configs, the demo model without them. ``--image`` names a volume or a
folder of volumes the page offers besides uploads (only those; no other server path is reachable).
The server binds to ``127.0.0.1`` unless ``--host`` says otherwise; its web sessions' folders live
in one temporary folder, deleted when the server stops.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bundle.chat import model_overrides, session_configs
from bundle.command_line import check_ids, read_configs
from bundle.inference.inputs import find_volumes
from bundle.quiet import quiet_libraries
from common.cli import DefaultsHelpFormatter
from common.errors import ConfigError, run_command

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_UPLOAD_MB = 1024.0
DEFAULT_UNPACKED_MB = 4096.0
DESCRIPTION = (
    "Serve a page for asking questions about a volume: upload a NIfTI file or a zipped DICOM series (or pick one "
    "of --image), scroll its planes, ask questions turn by turn and see each mask on the image. The model is "
    "built once; model options follow as --id value (the inference config ids: --checkpoint DIR, ...)."
)


def build_parser() -> argparse.ArgumentParser:
    """The page's own options (model options follow as ``--id value``)."""
    parser = argparse.ArgumentParser(
        prog="python -m bundle.web", description=DESCRIPTION, formatter_class=DefaultsHelpFormatter
    )
    parser.add_argument("--image", help="a volume (NIfTI file or DICOM series folder) or a folder of them to offer")
    parser.add_argument("--config_file", help="inference configs, as for monai.bundle run (default: the demo model)")
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (0.0.0.0 opens it to the network)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on (0: any free port)")
    parser.add_argument("--max_upload_mb", type=float, default=DEFAULT_UPLOAD_MB, help="largest upload, in MiB")
    parser.add_argument(
        "--max_unpacked_mb", type=float, default=DEFAULT_UNPACKED_MB, help="largest unpacked zipped series, in MiB"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def window_preset(config: Any, overrides: dict[str, Any]) -> str | None:
    """The CT window the views open with: the model's ``window`` config (None for ``mr`` or unknown)."""
    window = overrides.get("window", config.get("window") if isinstance(config, dict) else None)
    return window if isinstance(window, str) and window != "mr" else None


def check_limits(args: argparse.Namespace) -> None:
    """Refuses limits and ports that cannot work."""
    if args.max_upload_mb <= 0 or args.max_unpacked_mb <= 0:
        raise ConfigError("--max_upload_mb and --max_unpacked_mb must be positive")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be a port number (0 to 65535), got {args.port}")


def build_service(args: argparse.Namespace, extra: Sequence[str], root: Path) -> Any:
    """The model session and the page's service over it."""
    from bundle.session import Session  # builds torch and the model: after the options are checked
    from bundle.web.service import WebService, library_volumes
    from bundle.web.uploads import UploadLimits

    files, overrides = session_configs(args.config_file, model_overrides(extra))
    config = read_configs(files)
    check_ids(list(overrides), config)
    library = library_volumes(find_volumes(args.image)) if args.image else {}
    quiet_libraries()
    print("building the model ...", flush=True)
    session = Session.from_configs(files, {**overrides, "debug": args.debug})
    limits = UploadLimits.megabytes(args.max_upload_mb, args.max_unpacked_mb)
    return WebService(session, root, limits, library, window_preset(config, overrides))


def serve(args: argparse.Namespace, extra: Sequence[str]) -> None:
    """Builds the service and serves the page until interrupted."""
    import uvicorn

    from bundle.web.app import create_app

    check_limits(args)
    listening = bind(args.host, args.port)  # a taken port costs no model building
    with listening, tempfile.TemporaryDirectory(prefix="medisee-web-") as root:
        service = build_service(args, extra, Path(root))
        host, port = listening.getsockname()[:2]
        server = uvicorn.Server(uvicorn.Config(create_app(service), log_level="warning"))
        print(f"MediSee web page: http://{host}:{port}/ (Ctrl+C stops)", flush=True)
        try:
            server.run(sockets=[listening])
        except KeyboardInterrupt:  # uvicorn shuts down cleanly, then passes Ctrl+C on
            pass
    print("MediSee web page stopped; its session folders are deleted", flush=True)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (bound before the page is announced, so the address printed is the one served).

    Raises:
        ConfigError: the address cannot be used (taken, or not this machine's).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as error:
        listening.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return listening


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit code (1 with one ``error:`` line for bad options or input)."""
    args, extra = build_parser().parse_known_args(argv)
    return run_command(lambda: serve(args, extra), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
