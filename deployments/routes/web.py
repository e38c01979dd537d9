"""The web app (web/): `/` is its page, `/app/...` its scripts and styles. Open without a
key (the files hold no data; the app asks for a key and sends it on its API calls).

The files are found next to this package (`<repository>/web`), never from the working
directory: a Serve replica on another node runs from wherever its code was put (the image's
/app, a checkout, a `working_dir` zip), and web/ travels with the code. The page has a
strict Content-Security-Policy: scripts and styles from this origin only, no inline code,
nothing from another site, not framable. Every answer is revalidated (`no-cache` with an
ETag), so an upgrade shows at the next reload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
ASSETS_PREFIX = "/app"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # the page's media URLs carry signed links: never sent on to another site
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(tags=["web app"])


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers=HEADERS)


class Assets(StaticFiles):
    """web/'s files (Starlette refuses paths that leave the directory, and lists none),
    each with `HEADERS`."""

    def file_response(self, *args: Any, **kwargs: Any) -> Any:
        response = super().file_response(*args, **kwargs)
        response.headers.update(HEADERS)
        return response


def assets() -> Assets:
    return Assets(directory=WEB_DIR, check_dir=False)
