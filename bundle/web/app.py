"""The page's HTTP side: a small Starlette app over :class:`bundle.web.service.WebService`.

Routes (JSON unless said): ``GET /`` the page (starts a web session, kept in a cookie; the
browser's earlier session ends), ``GET
/static/...`` its script and style, ``POST /api/upload?filename=NAME`` the raw file as the body,
``GET /api/library`` and ``POST /api/open`` the server-side volumes, ``POST /api/ask`` and ``POST
/api/new`` the dialogue, ``GET /api/progress``, ``GET /api/view/{plane}/{index}.png`` a slice (PNG;
``level``, ``width``, ``turn`` in the query), ``GET /api/download/{turn}/{kind}`` a turn's file,
``POST /api/end`` ends the session (its folder is deleted). Every error is one JSON ``{"error":
message}`` with status 400 (404 for an ended session, 413 for an oversized upload).

Questions are sent as JSON strings and handed to the session as text: never to a config parser.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bundle.web.service import SessionEnded, WebService, WebSession
from bundle.web.uploads import UploadTooLarge
from bundle.web.views import Window
from common.errors import ConfigError, DataError, one_line

STATIC = Path(__file__).with_name("static")
COOKIE = "medisee_session"
MAX_QUESTION_BYTES = 64 * 1024
"""Largest JSON body of a question (the model refuses long questions itself; this bounds the read)."""
DOWNLOAD_TYPES = {
    "mask": "application/gzip",
    "result": "application/json",
    "overlay": "image/png",
    "seg": "application/dicom",
}


class RequestError(Exception):
    """A request the page should not have sent (bad JSON, bad numbers)."""


def error_response(error: Exception) -> JSONResponse:
    """One readable message, as the page shows it."""
    status = 404 if isinstance(error, SessionEnded) else 413 if isinstance(error, UploadTooLarge) else 400
    return JSONResponse({"error": one_line(error)}, status_code=status)


def create_app(service: WebService) -> Starlette:
    """The app serving ``service``; its web sessions end (folders deleted) when the app shuts down."""

    def web_session(request: Request) -> WebSession:
        return service.get(request.cookies.get(COOKIE))

    async def json_body(request: Request) -> dict[str, Any]:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_QUESTION_BYTES:
                raise RequestError("the request is too long")
        try:
            value = json.loads(body or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise RequestError("the request is not JSON") from None
        if not isinstance(value, dict):
            raise RequestError("the request must be a JSON object")
        return value

    def handled(handler):
        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except (DataError, ConfigError, RequestError) as error:
                return error_response(error)

        return route

    async def index(request: Request) -> Response:
        page = FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})
        # a page opened again starts over: the browser's earlier session (and its files) ends
        service.end(request.cookies.get(COOKIE))
        web = service.start()
        page.set_cookie(COOKIE, web.id, httponly=True, samesite="strict")
        return page

    async def upload(request: Request) -> Response:
        web = web_session(request)
        filename = request.query_params.get("filename", "")
        declared = request.headers.get("content-length")
        size = int(declared) if declared and declared.isdigit() else None
        path = await web.uploads.store(filename, request.stream(), size)
        return JSONResponse(await run_in_threadpool(service.open_upload, web, path, filename))

    async def library(request: Request) -> Response:
        web_session(request)
        return JSONResponse({"volumes": sorted(service.library), "max_upload_bytes": service.limits.max_bytes})

    async def open_volume(request: Request) -> Response:
        web = web_session(request)
        name = (await json_body(request)).get("name")
        if not isinstance(name, str):
            raise RequestError("say which volume to open: {'name': ...}")
        return JSONResponse(await run_in_threadpool(service.open_library, web, name))

    async def ask(request: Request) -> Response:
        web = web_session(request)
        question = (await json_body(request)).get("question")
        if not isinstance(question, str):
            raise RequestError("the question must be text: {'question': ...}")
        return JSONResponse(await run_in_threadpool(service.ask, web, question))

    async def new_dialogue(request: Request) -> Response:
        service.new_dialogue(web_session(request))
        return JSONResponse({"ok": True})

    async def progress(request: Request) -> Response:
        return JSONResponse(web_session(request).progress.as_dict())

    async def view(request: Request) -> Response:
        web = web_session(request)
        web.require_volume()
        params = request.query_params
        try:
            index = int(request.path_params["index"])
            window = Window(float(params.get("level", web.window.level)), float(params.get("width", web.window.width)))
            turn = int(params["turn"]) if params.get("turn") else None
        except ValueError:
            raise RequestError("slice, level, width and turn must be numbers") from None
        png = await run_in_threadpool(service.view, web, request.path_params["plane"], index, window, turn)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def download(request: Request) -> Response:
        web = web_session(request)
        try:
            turn = int(request.path_params["turn"])
        except ValueError:
            raise RequestError("the turn must be a number") from None
        kind = request.path_params["kind"]
        path = service.download(web, turn, kind)
        return FileResponse(path, media_type=DOWNLOAD_TYPES.get(kind), filename=path.name)

    async def end(request: Request) -> Response:
        ended = service.end(request.cookies.get(COOKIE))
        response = JSONResponse({"ended": ended})
        response.delete_cookie(COOKIE)
        return response

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            service.end_all()

    routes = [
        Route("/", handled(index)),
        Route("/api/upload", handled(upload), methods=["POST"]),
        Route("/api/library", handled(library)),
        Route("/api/open", handled(open_volume), methods=["POST"]),
        Route("/api/ask", handled(ask), methods=["POST"]),
        Route("/api/new", handled(new_dialogue), methods=["POST"]),
        Route("/api/progress", handled(progress)),
        Route("/api/view/{plane}/{index}.png", handled(view)),
        Route("/api/download/{turn}/{kind}", handled(download)),
        Route("/api/end", handled(end), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
