"""The browser pages: server-rendered shells whose small scripts call the JSON API.

The pages hold no secret: each one is the same for everybody, and its script reads the session
token from the browser's storage and fetches what it shows from ``/api/...`` with an
``Authorization: Bearer`` header.  So the HTML can be served without a session, and a page
source never contains a key, a token or another user's data.  One exception, for speed: the
gallery sends its first page of images within the HTML to the account whose session cookie
(HttpOnly, SameSite=Strict, set by signing in) came with the request: that page is never
stored (``no-store``) and holds only what ``GET /api/images`` would give that account.

Static files (our own CSS, JavaScript and icon; no third-party files, no build step) are served
from ``web/static`` under ``/static/``.  A page names each one with its version (a digest of
its bytes, ``?v=``), and its modules' imports reach the same versioned URLs through an import
map: the browser keeps them for good and asks for nothing again until a file changes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from ...providers import INFOS
from .. import gallery
from ..deps import SESSION_COOKIE, ServicesDep, authenticate
from ..problems import ApiError
from ..services import Services
from .images import image_page

if TYPE_CHECKING:
    from jinja2 import Environment

__all__ = ["CONTENT_SECURITY_POLICY", "WEB_DIR", "docs_router", "router"]

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

#: Only our own scripts and styles run; images may be blob: URLs (fetched with the bearer
#: header) or data: URLs; the page may talk only to this origin (and read its own blob: URLs).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: Pages are revalidated on every load (ETag), so an upgrade shows at once.
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
#: A static file asked for at its current version never changes under that URL.
IMMUTABLE = "public, max-age=31536000, immutable"

#: Each provider's label for the pages' scripts (``data-providers`` on ``<body>``).
PROVIDER_LABELS = json.dumps({name: info.label for name, info in INFOS.items()})

router = APIRouter(include_in_schema=False)


@cache
def _templates() -> Environment:
    # Built (and Jinja imported, ~2 MB) on the first page served: an API-only service never
    # loads it, and importing the router stays free of file access.
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    return Environment(
        loader=FileSystemLoader(WEB_DIR / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def _static() -> StaticFiles:
    return StaticFiles(directory=WEB_DIR / "static", check_dir=True)


#: ``import ... from "./name.js"`` (or a bare ``import "./name.js"``) in our modules.
_IMPORT = re.compile(r"""(?:\bfrom|^import)\s*["']\./([\w.-]+\.js)["']""", re.MULTILINE)


@cache
def _module_graph(script: str) -> tuple[str, ...]:
    """Every module ``script`` imports, directly or not, as ``/static/js/`` paths.

    The page names them all in ``<link rel="modulepreload">``: the browser then fetches them
    at once, instead of finding each level of imports only after the level above has arrived
    (three round trips before the gallery can ask for its first page).  Read once per process:
    which modules import which changes only with a new release (the files' versions are read
    again whenever a file changes, ``_version``)."""
    found: list[str] = []
    todo = [f"{script}.js"]
    while todo:
        name = todo.pop(0)
        source = (WEB_DIR / "static" / "js" / name).read_text(encoding="utf-8")
        for dep in _IMPORT.findall(source):
            if dep not in found and dep != f"{script}.js":
                found.append(dep)
                todo.append(dep)
    return tuple(f"/static/js/{name}" for name in found)


@lru_cache(maxsize=256)
def _digest(path: Path, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _version(name: str) -> str | None:
    """The version of the static file ``name`` (a path under ``static/``) as it is now: a digest
    of its bytes, read again only when the file changes; None for no such file."""
    path = WEB_DIR / "static" / name
    try:
        st = path.stat()
    except OSError:
        return None
    return _digest(path, st.st_mtime_ns, st.st_size)


def asset(name: str) -> str:
    """The URL of the static file ``name`` at its current version."""
    version = _version(name)
    return f"/static/{name}?v={version}" if version else f"/static/{name}"


def _import_map(script: str) -> str:
    """The import map sending ``script``'s imports (as resolved URLs) to their versions."""
    modules = [f"/static/js/{script}.js", *_module_graph(script)]
    imports = {m: asset(m.removeprefix("/static/")) for m in modules}
    return json.dumps({"imports": imports}, separators=(",", ":"))


def _csp_allowing(inline_script: str) -> str:
    """The page policy, allowing this one inline script (the import map) by its digest."""
    digest = base64.b64encode(hashlib.sha256(inline_script.encode()).digest()).decode()
    return CONTENT_SECURITY_POLICY.replace(
        "script-src 'self';", f"script-src 'self' 'sha256-{digest}';"
    )


def _page(
    template: str,
    *,
    title: str,
    page: str,
    script: str,
    early: str | None = None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """``template`` run by ``script`` (a module of ``static/js``); ``early``, one of its
    imports that the page also starts on its own, as soon as it arrives (an ``async`` module:
    it asks for the page's data while the rest is still loading)."""
    import_map = _import_map(script)
    html = (
        _templates()
        .get_template(template)
        .render(
            title=title,
            page=page,
            script=script,
            preload=[asset(m.removeprefix("/static/")) for m in _module_graph(script)],
            import_map=import_map,
            early=asset(f"js/{early}.js") if early else None,
            asset=asset,
            nav=page not in ("login", "register"),
            provider_labels=PROVIDER_LABELS,
            **context,
        )
    )
    sent = {**PAGE_HEADERS, "Content-Security-Policy": _csp_allowing(import_map), **(headers or {})}
    return HTMLResponse(html, headers=sent)


@router.get("/", response_class=HTMLResponse)
async def generator_page() -> HTMLResponse:
    return _page("generator.html", title="Generate", page="generator", script="generator")


@router.get("/login", response_class=HTMLResponse)
async def login_page() -> HTMLResponse:
    return _page("login.html", title="Sign in", page="login", script="login", mode="login")


@router.get("/register", response_class=HTMLResponse)
async def register_page() -> HTMLResponse:
    return _page(
        "login.html", title="Create an account", page="register", script="login", mode="register"
    )


@router.get("/gallery", response_class=HTMLResponse)
async def gallery_page(request: Request, services: ServicesDep) -> HTMLResponse:
    first = await _first_gallery_page(request, services)
    return _page(
        "gallery.html",
        title="Gallery",
        page="gallery",
        script="gallery",
        early="gallerypage",
        first_page=first,
        headers={"Cache-Control": "no-store" if first else "no-cache", "Vary": "Cookie"},
    )


#: The gallery's page size, as ``gallerypage.js`` asks for it.
GALLERY_PAGE_SIZE = 30


async def _first_gallery_page(request: Request, services: Services) -> dict[str, Any] | None:
    """The first page of the gallery, for the account whose session cookie came with the
    request, when the address asks for no more than an order (a search or filter, and a
    day in the browser's time zone, are left to the page's script): what the script would
    ask ``url`` for, sent within the page so that it has nothing to wait for.  None without
    a valid cookie."""
    raw = request.cookies.get(SESSION_COOKIE)
    params = request.query_params
    sort: gallery.Sort
    match params.get("sort") or "newest":
        case "newest":
            sort = "newest"
        case "oldest":
            sort = "oldest"
        case _:
            return None
    if not raw or set(params) - {"sort", "group"}:
        return None
    try:
        auth = await authenticate(services, raw)
    except ApiError:
        return None  # expired or revoked: the script asks with the stored token, as without
    async with services.sessionmaker() as session:
        page = await image_page(
            session, auth.user.id, gallery.ImageFilter(), sort=sort, limit=GALLERY_PAGE_SIZE
        )
    return {
        "user": auth.user.username,
        "url": f"/api/images?limit={GALLERY_PAGE_SIZE}&sort={sort}",
        "page": page,
    }


@router.get("/gallery/{generation_id}", response_class=HTMLResponse)
async def detail_page(generation_id: str) -> HTMLResponse:
    # The id is only echoed (escaped) into a data attribute; the script asks the API for the
    # record, so an unknown or foreign id gets the API's 404 there.
    return _page(
        "detail.html",
        title="Generation",
        page="detail",
        script="detail",
        generation_id=generation_id[:64],
    )


@router.get("/edit", response_class=HTMLResponse)
async def sessions_page() -> HTMLResponse:
    return _page("edit.html", title="Edit", page="edit", script="edit", session_id=None)


@router.get("/edit/{session_id}", response_class=HTMLResponse)
async def session_page(session_id: str) -> HTMLResponse:
    # Echoed (escaped) into a data attribute only; the API answers 404 for a foreign id.
    return _page("edit.html", title="Edit", page="edit", script="edit", session_id=session_id[:64])


@router.get("/settings", response_class=HTMLResponse)
async def settings_page() -> HTMLResponse:
    return _page(
        "settings.html",
        title="Settings",
        page="settings",
        script="settings",
        providers=[(n, i.label, i.key_placeholder, i.key_hint) for n, i in INFOS.items()],
    )


@router.get("/usage", response_class=HTMLResponse)
async def usage_page() -> HTMLResponse:
    return _page("usage.html", title="Usage", page="usage", script="usage")


@router.api_route("/static/{path:path}", methods=["GET", "HEAD"])
async def static_file(path: str, request: Request) -> Response:
    # StaticFiles resolves the path inside the folder (no ../ escape), sets the content type
    # and answers conditional requests with 304.
    response = await _static().get_response(path, request.scope)
    version = request.query_params.get("v")
    found = response.status_code in (200, 304)
    current = found and version is not None and version == _version(path)
    response.headers["Cache-Control"] = IMMUTABLE if current else "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# ---------------------------------------------------------------------------- API docs
#: ``/docs``: Swagger UI from the installed fastapi-swagger package (no CDN: it works offline),
#: started by our own script, so the page needs no inline script.
docs_router = APIRouter(include_in_schema=False)
DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>nanobanana API</title>
  <link rel="icon" href="/static/img/favicon.svg">
  <link rel="stylesheet" href="/docs-assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs-assets/swagger-ui-bundle.js"></script>
  <script src="/static/js/swagger-init.js"></script>
</body>
</html>
"""
#: Swagger UI sets styles inline; scripts stay our own and the bundle's.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@cache
def _swagger_assets() -> StaticFiles:
    from importlib.resources import files

    import fastapi_swagger.resources

    return StaticFiles(directory=str(files(fastapi_swagger.resources)), check_dir=True)


@docs_router.get("/docs", response_class=HTMLResponse)
async def docs_page() -> HTMLResponse:
    return HTMLResponse(DOCS_PAGE, headers={**PAGE_HEADERS, "Content-Security-Policy": DOCS_CSP})


@docs_router.api_route("/docs-assets/{path:path}", methods=["GET", "HEAD"])
async def docs_asset(path: str, request: Request) -> Response:
    if not path.endswith((".js", ".css", ".png")):
        return Response(status_code=404)
    response = await _swagger_assets().get_response(path, request.scope)
    response.headers["Cache-Control"] = "public, max-age=86400"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
