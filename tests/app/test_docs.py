"""/docs (Swagger UI) and /redoc (ReDoc) work offline: every script, style and icon they name is
served by the app itself, and in a real browser (Debian's chromium) they render the API's
OpenAPI 3.1 document with nothing fetched off the server."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from common.settings import Settings
from tests.app.test_console import browser  # noqa: F401  (the fixture)
from tests.service_fixtures import live_server

DOC_PAGES = ("/docs", "/redoc")
# the one thing ReDoc's script fetches itself: a decorative logo, hidden when it fails to load
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


class References(HTMLParser):
    """Every URL a page makes the browser load: src, href and ReDoc's spec-url attributes,
    and the ``url:`` Swagger UI's inline script reads the document from."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.in_script = tag == "script"
        self.urls += [v for k, v in attrs if k in ("src", "href", "spec-url") and v]

    def handle_data(self, data: str) -> None:
        if self.in_script:
            self.urls += re.findall(r"""\burl:\s*['"]([^'"]+)['"]""", data)


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("page", DOC_PAGES)
def test_doc_pages_load_only_what_the_app_serves(page):
    client = TestClient(create_app(Settings(auth="open")))  # no lifespan: Redis not needed
    html = client.get(page)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    urls = references(html.text)
    assert "/openapi.json" in urls
    assert any(url.endswith(".js") for url in urls), urls  # the UI itself, not just the page
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from off-site"
        served = client.get(url)
        assert served.status_code == 200 and served.content, url
    if page == "/docs":
        assert any(url.endswith(".css") for url in urls), urls


@pytest.mark.redis
@pytest.mark.slow
def test_doc_pages_render_in_a_browser_without_the_internet(browser, settings):  # noqa: F811
    with live_server(settings) as url:
        page = browser.new_page()
        off_site: list[str] = []

        def only_this_server(route) -> None:
            if route.request.url.startswith(url + "/"):
                route.continue_()
            else:  # what a machine without internet could not load
                off_site.append(route.request.url)
                route.abort()

        page.route("**/*", only_this_server)
        page.goto(f"{url}/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
        assert "robust-fewshot" in page.inner_text(".swagger-ui .info .title")
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any("/v1/models/{model_id}/predictions" in p for p in paths), paths
        assert page.locator("button.authorize").count() == 1  # the bearer scheme
        assert page.get_by_text("Unable to render").count() == 0
        assert off_site == []

        page.goto(f"{url}/redoc")
        page.wait_for_selector("redoc h1", timeout=30_000)
        assert "robust-fewshot" in page.inner_text("redoc h1")
        assert page.get_by_text("predictions").count() > 0
        assert page.locator("img[alt='redocly logo']").count() == 0  # gone when it failed
        assert off_site in ([], [REDOC_LOGO])
        page.close()
