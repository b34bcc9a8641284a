"""/docs and /redoc show without a network: the page and everything it loads come from hookd."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from support import Api

# Attributes through which a page loads something.
LOADING = {"src", "href", "spec-url"}


class References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.extend(value for name, value in attrs if name in LOADING and value)

    def handle_data(self, data: str) -> None:
        self.scripts.append(data)


def references(page: str) -> list[str]:
    parser = References()
    parser.feed(page)
    # Swagger UI is told where the document is in its inline script: `url: '/openapi.json'`.
    inline = re.findall(r"""\burl:\s*['"]([^'"]+)['"]""", "".join(parser.scripts))
    return parser.found + inline


@pytest.fixture
def run_worker() -> bool:
    return False


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("/docs", {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"}),
        ("/redoc", {"/docs/assets/redoc.standalone.js"}),
    ],
)
async def test_the_page_and_every_asset_it_references_come_from_hookd(
    api: Api, page: str, expected: set[str]
) -> None:
    response = await api.client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "http://" not in response.text and "https://" not in response.text, "no CDN"
    found = references(response.text)
    assert expected | {"/openapi.json"} <= set(found), found
    for url in found:
        assert url.startswith("/") and not url.startswith("//"), f"{url} is not on hookd"
        asset = await api.client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url


async def test_assets_have_their_media_types(api: Api) -> None:
    script = await api.client.get("/docs/assets/swagger-ui-bundle.js")
    assert "javascript" in script.headers["content-type"]
    style = await api.client.get("/docs/assets/swagger-ui.css")
    assert style.headers["content-type"].startswith("text/css")


async def test_an_unknown_asset_is_404_in_hookds_shape(api: Api) -> None:
    response = await api.client.get("/docs/assets/nothing.js")
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found"}
