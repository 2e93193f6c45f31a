"""Serve the resource page at ``/`` and its static files under ``/static/``.

The page is plain HTML, CSS and JavaScript from this package, with no CDN and no
external fonts, so it works in labs without internet access. Its script loads the
lists from the API and follows ``/api/v1/events``. The HTML also carries the list
rendered here inside ``<noscript>``, for browsers without JavaScript and for clients
of rentabot 1.0.0 that read resource names from the page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from rentabot import __version__
from rentabot.api.auth import authenticator_of
from rentabot.api.deps import get_service
from rentabot.api.views import resource_body
from rentabot.service import LockService

WEB_DIR = Path(__file__).parent

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))
static_files = StaticFiles(directory=WEB_DIR / "static")

# The page may load and connect to its own origin only. This also stops any markup that
# slipped into the page from running scripts or sending data elsewhere.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@router.get("/", response_class=HTMLResponse)
async def index(
    request: Request, service: Annotated[LockService, Depends(get_service)]
) -> Response:
    listing = await service.list_resources()
    resources = [resource_body(resource, listing.now) for resource in listing.resources]
    # The admin controls need this: with authentication off any token passes, and force
    # unlock is rejected.
    authentication = "on" if authenticator_of(request).enabled else "off"
    return templates.TemplateResponse(
        request,
        "index.html",
        {"resources": resources, "version": __version__, "authentication": authentication},
        headers=PAGE_HEADERS,
    )


@router.get("/static/{path:path}")
async def static(path: str, request: Request) -> Response:
    """Return a file from ``rentabot/web/static``, or 404 for a path outside it."""
    response = await static_files.get_response(path, request.scope)
    # Revalidated on every load, so a new version of the page is picked up at once.
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
