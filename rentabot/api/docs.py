"""Serve the API pages /docs (Swagger UI) and /redoc with no file from another host.

FastAPI's own pages load their JavaScript and CSS from a CDN, so in a lab without
internet access they stay blank. These are the same pages, built by FastAPI's
functions, but their files are the copies of Swagger UI 5 and ReDoc 2 that the
``fastapi-offline`` package installs, served here under ``/docs/static``. Swagger UI 5
is needed because the OpenAPI document is version 3.1. Like FastAPI's pages, these
need no key.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse

DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
REDOC_URL = "/redoc"
STATIC_URL = "/docs/static"
# ReDoc 2.5 puts Redocly's logo from cdn.redoc.ly in its menu on every page, and hides it
# when it fails to load. This Content-Security-Policy blocks that request in the browser.
REDOC_IMAGES = "img-src 'self' data:"
# Only the package's files are used, not its FastAPI factory.
STATIC_DIR = Path(str(files("fastapi_offline") / "static"))


def install(app: FastAPI) -> None:
    """Add /docs, its OAuth2 redirect page and /redoc, and the files they load.

    The app must be created with ``docs_url=None`` and ``redoc_url=None``, so that
    FastAPI adds no pages of its own on these paths.
    """
    openapi_url = app.openapi_url or "/openapi.json"

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = root_path(request)
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    async def oauth2_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        root = root_path(request)
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = REDOC_IMAGES
        return page

    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="docs-static")
    app.add_route(DOCS_URL, swagger_ui, include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT_URL, oauth2_redirect, include_in_schema=False)
    app.add_route(REDOC_URL, redoc, include_in_schema=False)


def root_path(request: Request) -> str:
    """Return the prefix a proxy serves the app under, as FastAPI's own pages do."""
    prefix: str = request.scope.get("root_path", "")
    return prefix.rstrip("/")
