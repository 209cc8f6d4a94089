"""hyperdial's web dashboard: read-only pages over a running service.

Run it on its own (``hyperdial dashboard --target HOST:PORT``) or beside a replica
(``hyperdial serve --dashboard-port 8080``); see ``docs/dashboard.md``. It needs the
``dashboard`` extra (Starlette and uvicorn); plotly.js ships inside the package.

Example:
    >>> from hyperdial.aio import AsyncClient
    >>> from hyperdial.dashboard import DashboardServer, DashboardSettings, create_app
    >>> settings = DashboardSettings(lambda: AsyncClient("localhost:50051"))  # doctest: +SKIP
    >>> DashboardServer(create_app(settings), "127.0.0.1", 8080).serve_forever()  # doctest: +SKIP

Modules: ``_model`` (the rows and descriptions sent to the browser), ``_cache`` (the copy of
each open study, read incrementally), ``_app`` (routes), ``_runner`` (uvicorn, in the foreground
or in a thread).
"""

from hyperdial.dashboard._app import DashboardSettings, create_app
from hyperdial.dashboard._runner import DashboardServer

__all__ = ["DashboardServer", "DashboardSettings", "create_app"]
