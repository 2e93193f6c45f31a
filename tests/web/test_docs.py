"""The API pages /docs and /redoc work offline: every file they need comes from the service.

The browser tests load each page in headless Chromium from a real server on 127.0.0.1,
wait until it shows the API, and check that no request went anywhere else. The proxy
of ``CHROMIUM_ARGS`` would stop such a request; without the check the page would only
look blank. The HTTP tests read the HTML for links to other hosts and fetch its files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from rentabot.config.settings import Settings
from tests.support.auth import write_auth_file
from tests.support.servers import LAB_DESCRIPTOR, InProcessServer, in_process_server
from tests.web.browser import DESKTOP, WAIT_MS, Recorder

URL = re.compile(r"https?://[^\s\"'<>)]+")
ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")
DOC_PAGES = ["/docs", "/redoc", "/docs/oauth2-redirect"]

# One Swagger UI operation: its method and path, as the page shows them.
OPERATIONS = """() => [...document.querySelectorAll('.opblock')].map(block => [
  block.querySelector('.opblock-summary-method').textContent.toLowerCase(),
  block.querySelector('.opblock-summary-path').dataset.path,
])"""


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """rentabot with authentication on and reads protected, so open pages must stay open."""
    auth_file = write_auth_file(tmp_path_factory.mktemp("auth"), protect_reads=True)
    settings = Settings(descriptor=LAB_DESCRIPTOR, auth_config=auth_file)
    with in_process_server(settings) as running:
        yield running


@pytest.fixture(scope="module")
def client(docs_server: InProcessServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=docs_server.base_url, timeout=30) as http:
        yield http


@dataclass
class DocsRecorder(Recorder):
    """Also records the requests that the page's Content-Security-Policy stopped."""

    blocked_by_policy: list[str] = field(default_factory=list)

    def on_request_failed(self, request: Any) -> None:
        if request.failure == "csp":
            self.blocked_by_policy.append(request.url)


@contextmanager
def open_docs(browser: Any, url: str) -> Iterator[tuple[Any, DocsRecorder]]:
    """Open ``url`` in a fresh browser context that records every request."""
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    recorder = DocsRecorder()
    context.on("request", recorder.on_request)
    context.on("requestfailed", recorder.on_request_failed)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.on("pageerror", recorder.on_page_error)
    try:
        page.goto(url)
        yield page, recorder
    finally:
        context.close()


def shows(page: Any, selector: str) -> bool:
    """Wait up to ``WAIT_MS`` for ``selector``, and return False when it never appears."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    try:
        page.wait_for_selector(selector)
    except PlaywrightTimeoutError:
        return False
    return True


def elsewhere(requests: list[str]) -> list[str]:
    """Return the URLs to a host other than 127.0.0.1. A blob: URL counts as its page's host."""
    return [url for url in requests if urlsplit(url.removeprefix("blob:")).hostname != "127.0.0.1"]


def operations_of(document: dict[str, Any]) -> list[list[str]]:
    return sorted(
        [method, path]
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    )


@pytest.mark.browser
def test_swagger_ui_renders_offline(
    browser: Any, docs_server: InProcessServer, client: httpx.Client
) -> None:
    document = client.get("/openapi.json").json()
    with open_docs(browser, docs_server.base_url + "/docs") as (page, recorder):
        operations_shown = shows(page, ".opblock")
        authorize_shown = shows(page, ".btn.authorize")
        rendered_operations = sorted(page.evaluate(OPERATIONS))
        dialog = ""
        if authorize_shown:
            page.click(".btn.authorize")
            dialog = page.inner_text(".modal-ux-content")

    assert elsewhere(recorder.requests) == []
    assert operations_shown, "Swagger UI rendered no operation"
    assert authorize_shown, "Swagger UI rendered no Authorize button"
    assert rendered_operations == operations_of(document)
    assert "APIKeyHeader" in dialog
    assert "HTTPBearer" in dialog
    assert recorder.page_errors == []


@pytest.mark.browser
def test_redoc_renders_offline(browser: Any, docs_server: InProcessServer) -> None:
    with open_docs(browser, docs_server.base_url + "/redoc") as (page, recorder):
        rendered = shows(page, "[data-section-id^='operation/']")

    # ReDoc's menu links Redocly's logo from its CDN. The page's policy stops that request
    # inside the browser, before it is sent.
    assert elsewhere(recorder.requests) == recorder.blocked_by_policy
    assert rendered, "ReDoc rendered no operation"
    assert recorder.page_errors == []


@pytest.mark.parametrize("path", DOC_PAGES, ids=DOC_PAGES)
def test_doc_page_names_no_other_host(client: httpx.Client, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert URL.findall(response.text) == []


@pytest.mark.parametrize("path", ["/docs", "/redoc"], ids=["docs", "redoc"])
def test_doc_page_files_need_no_key(client: httpx.Client, path: str) -> None:
    page_url = str(client.base_url.join(path))
    assets = [urljoin(page_url, link) for link in ASSET.findall(client.get(path).text)]
    # Checked before fetching anything, so the test itself never reaches another host.
    assert len(assets) >= 2
    assert elsewhere(assets) == []

    statuses = {Path(urlsplit(url).path).name: client.get(url).status_code for url in assets}
    assert set(statuses.values()) == {200}, statuses
