"""The dashboard's web application (Starlette): two pages, a JSON API they poll, the assets.

Every route is a ``GET``: the dashboard reads the service and changes nothing in it.

* ``/``: the Studies page;
* ``/studies/{id}``: a study's page (a 404 page for a study the token cannot see);
* ``/api/studies``: the studies (``ETag``; ``304`` while unchanged);
* ``/api/studies/{id}/trials?since=R&epoch=E``: the study and its trials changed after revision
  ``R`` of the copy ``E`` (all of them for another copy); ``304`` for the ``If-None-Match`` of
  the last answer while nothing changed;
* ``/api/studies/{id}/curves``: learning curves of the latest trials that reported;
* ``/api/studies/{id}/importance?objective=NAME``: parameter importance;
* ``/static/...``: CSS, JavaScript and the vendored plotly.js; ``/healthz``: ``ok``.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import string
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from hyperdial import __version__
from hyperdial._aio import AsyncClient
from hyperdial._errors import HyperdialError, InvalidArgumentError, NotFoundError
from hyperdial.dashboard._cache import Directory, StudyCache

__all__ = ["DashboardSettings", "create_app"]

_HERE = Path(str(resources.files("hyperdial.dashboard")))
STATIC_DIR = _HERE / "static"
PAGES_DIR = _HERE / "pages"
#: What a study id may be (as the service checks it): anything else is not a study.
_STUDY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: Seconds a study's cache lives unread before it is dropped.
IDLE_CACHE_SECONDS = 600.0


@dataclass(frozen=True)
class DashboardSettings:
    """How the dashboard reads the service and how often the pages poll.

    Attributes:
        connect: Makes the client the dashboard reads the service with; called on the
            dashboard's event loop at start-up, closed at shutdown.
        target: The service's address, shown on the pages.
        namespace: The namespace shown on the pages (the service never tells a client its
            namespace: it is the token's); ``None`` shows none.
        poll_seconds: How often a page asks the dashboard for changes.
        min_read_seconds: Least seconds between two reads of one study from the service,
            however many pages poll it.
    """

    connect: Callable[[], AsyncClient]
    target: str = ""
    namespace: str | None = None
    poll_seconds: float = 2.0
    min_read_seconds: float = 1.0


class _State:
    """What the routes share: the client, the list of studies, the caches of open studies."""

    def __init__(self, settings: DashboardSettings, client: AsyncClient) -> None:
        self.settings = settings
        self.client = client
        self.directory = Directory(client, namespace=settings.namespace)
        self.caches: dict[str, StudyCache] = {}

    async def cache(self, study_id: str) -> StudyCache | None:
        """The cache of a study, made on first use; ``None`` when there is no such study (for
        this token), or ``study_id`` is not a study id at all."""
        now = time.monotonic()
        for name in [n for n, c in self.caches.items() if now - c.last_used > IDLE_CACHE_SECONDS]:
            del self.caches[name]
        cache = self.caches.get(study_id)
        if cache is not None:
            return cache
        if not _STUDY_ID.fullmatch(study_id):
            return None
        try:
            study = await self.client.get_study(study_id)
        except (NotFoundError, InvalidArgumentError):
            return None
        return self.caches.setdefault(
            study_id,
            StudyCache(
                self.client,
                study,
                namespace=self.settings.namespace,
                min_interval=self.settings.min_read_seconds,
            ),
        )


# -- responses -------------------------------------------------------------------------------

_NO_CACHE = {"Cache-Control": "no-cache"}


def _json(data: object, status: int = 200, etag: str | None = None) -> Response:
    headers = dict(_NO_CACHE)
    if etag is not None:
        headers["ETag"] = etag
    body = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return Response(body, status, headers=headers, media_type="application/json")


def _not_modified(request: Request, etag: str) -> Response | None:
    """``304`` when the request's ``If-None-Match`` names ``etag``."""
    wanted = request.headers.get("if-none-match", "")
    if etag in (t.strip().removeprefix("W/") for t in wanted.split(",")):
        return Response(status_code=304, headers={**_NO_CACHE, "ETag": etag})
    return None


def _page(name: str, values: dict[str, str], status: int = 200) -> HTMLResponse:
    """A page of ``pages/``, its ``$names`` replaced by ``values`` (HTML-escaped)."""
    template = string.Template((PAGES_DIR / name).read_text(encoding="utf-8"))
    text = template.substitute({k: html.escape(v) for k, v in values.items()})
    return HTMLResponse(text, status, headers=_NO_CACHE)


def _settings_values(state: _State) -> dict[str, str]:
    s = state.settings
    return {
        "target": s.target,
        "namespace": s.namespace or "",
        "poll_ms": str(int(s.poll_seconds * 1000)),
        "version": __version__,
    }


# -- routes ----------------------------------------------------------------------------------


def _state(request: Request) -> _State:
    state: _State = request.app.state.dashboard
    return state


async def studies_page(request: Request) -> Response:
    return _page("studies.html", _settings_values(_state(request)))


async def study_page(request: Request) -> Response:
    state = _state(request)
    study_id = request.path_params["study_id"]
    values = _settings_values(state)
    try:
        cache = await state.cache(study_id)
    except HyperdialError as e:
        return _page("unavailable.html", {**values, "message": " ".join(str(e).split())}, 503)
    if cache is None:
        return _page("not_found.html", {**values, "what": f"study {study_id}"}, 404)
    return _page("study.html", {**values, "study": study_id})


async def api_studies(request: Request) -> Response:
    directory = _state(request).directory
    await directory.refresh()
    unchanged = _not_modified(request, directory.etag)
    if unchanged is not None:
        return unchanged
    data = {"studies": directory.studies, "error": directory.error, "now": time.time()}
    return _json(data, etag=directory.etag)


def _gone() -> Response:
    return _json({"error": {"reason": "STUDY_NOT_FOUND", "message": "no such study"}}, 404)


async def _study_cache(request: Request) -> StudyCache | Response:
    """The study's cache, brought up to date; a 404 answer for an unknown study, a 503 one
    when the service cannot say (the study was never read)."""
    state = _state(request)
    study_id = request.path_params["study_id"]
    try:
        cache = await state.cache(study_id)
        if cache is None:
            return _gone()
        await cache.refresh()
    except NotFoundError:
        state.caches.pop(study_id, None)
        return _gone()
    except HyperdialError as e:
        return _json({"error": {"reason": e.reason, "message": " ".join(str(e).split())}}, 503)
    return cache


async def api_trials(request: Request) -> Response:
    found = await _study_cache(request)
    if isinstance(found, Response):
        return found
    cache = found
    unchanged = _not_modified(request, cache.etag)
    if unchanged is not None:
        return unchanged
    try:
        since = int(request.query_params.get("since", "0"))
    except ValueError:
        since = 0
    if request.query_params.get("epoch") != cache.epoch:
        since = 0  # rows of another copy: start over
    head = {
        "epoch": cache.epoch,
        "revision": cache.revision,
        "reset": since == 0,
        # The spec is fixed: sent with a full answer only.
        "study": cache.description if since == 0 else None,
        "counts": cache.state_counts(),
        "trial_count": cache.trial_count,
        "update_time": cache.update_time,
        "optimal": cache.optimal,
        "error": cache.error,
        "now": time.time(),
    }
    # The rows are JSON already (encoded once per change of a trial): joined, not re-encoded.
    text = json.dumps(head, separators=(",", ":"), allow_nan=False)
    body = text[:-1] + ',"trials":[' + ",".join(cache.rows_since(since)) + "]}"
    headers = {**_NO_CACHE, "ETag": cache.etag}
    return Response(body, headers=headers, media_type="application/json")


async def api_curves(request: Request) -> Response:
    found = await _study_cache(request)
    if isinstance(found, Response):
        return found
    etag = f'"{found.epoch}.{found.revision}.curves"'
    unchanged = _not_modified(request, etag)
    if unchanged is not None:
        return unchanged
    try:
        data = await found.curves()
    except NotFoundError:
        return _gone()
    return _json(data, etag=None if data["error"] else etag)


async def api_importance(request: Request) -> Response:
    found = await _study_cache(request)
    if isinstance(found, Response):
        return found
    objectives = [o["name"] for o in found.description["objectives"]]
    objective = request.query_params.get("objective") or objectives[0]
    if objective not in objectives:
        return _json({"error": {"reason": "NO_SUCH_OBJECTIVE", "message": objective}}, 404)
    try:
        data = await found.importance(objective)
    except NotFoundError:
        return _gone()
    return _json(data)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok", headers=_NO_CACHE)


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if request.url.path.startswith("/api/"):
        return _json({"error": {"reason": "NOT_FOUND", "message": request.url.path}}, status)
    if status == 404:
        values = {**_settings_values(_state(request)), "what": request.url.path}
        return _page("not_found.html", values, 404)
    return PlainTextResponse(str(getattr(exc, "detail", "error")), status)


class _SecurityHeaders:
    """Adds headers that keep the pages out of frames and stop content sniffing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(settings: DashboardSettings) -> Starlette:
    """The dashboard as an ASGI application; serve it with uvicorn
    (:class:`hyperdial.dashboard.DashboardServer` does)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client = settings.connect()
        app.state.dashboard = _State(settings, client)
        try:
            yield
        finally:
            await client.close()

    routes = [
        Route("/", studies_page, methods=["GET"]),
        Route("/studies/{study_id}", study_page, methods=["GET"]),
        Route("/api/studies", api_studies, methods=["GET"]),
        Route("/api/studies/{study_id}/trials", api_trials, methods=["GET"]),
        Route("/api/studies/{study_id}/curves", api_curves, methods=["GET"]),
        Route("/api/studies/{study_id}/importance", api_importance, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {404: _not_found}
    return Starlette(
        routes=routes,
        middleware=[Middleware(_SecurityHeaders), Middleware(GZipMiddleware, minimum_size=1024)],
        exception_handlers=handlers,
        lifespan=lifespan,
    )
