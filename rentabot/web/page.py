"""Serve the resource page. It is rendered here, with no CDN, so it works in offline labs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from rentabot import __version__
from rentabot.api.deps import get_service
from rentabot.api.views import resource_body
from rentabot.service import LockService

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


@router.get("/", response_class=HTMLResponse)
async def index(
    request: Request, service: Annotated[LockService, Depends(get_service)]
) -> HTMLResponse:
    listing = await service.list_resources()
    resources = [resource_body(resource, listing.now) for resource in listing.resources]
    return templates.TemplateResponse(
        request,
        "index.html",
        {"resources": resources, "now": listing.now, "version": __version__},
    )
