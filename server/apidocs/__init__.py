"""The API's documentation pages, `/docs` (Swagger UI) and `/redoc` (ReDoc), served from
assets bundled in this package (`assets/`: swagger-ui-dist 5.35.0 and redoc 2.5.4 from
their npm packages, with their licences), so they work on a floor with no internet. No
page loads anything from another origin, and no inline script is needed: the Swagger UI
is started by `swagger-init.js`. One change to the bundles: ReDoc's footer logo, which it
loads from a CDN, is a blank `data:` image in `redoc.standalone.js`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).resolve().parent / "assets"
ASSETS_URL = "/docs-assets"

# ReDoc (styled-components) writes its styles into <style> elements and runs its search in
# a worker made from a blob: the one relaxation of the site's policy, on this page only.
REDOC_POLICY = (
    "default-src 'self'; script-src 'self' blob:; worker-src 'self' blob:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

SWAGGER_PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>WavePick API</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="{ASSETS_URL}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{ASSETS_URL}/swagger-ui-bundle.js"></script>
  <script src="{ASSETS_URL}/swagger-init.js"></script>
</body>
</html>
"""

REDOC_PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>WavePick API</title>
  <link rel="icon" href="data:,">
</head>
<body>
  <redoc spec-url="/openapi.json"></redoc>
  <script src="{ASSETS_URL}/redoc.standalone.js"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    return HTMLResponse(SWAGGER_PAGE)


@router.get("/redoc")
def redoc() -> HTMLResponse:
    return HTMLResponse(REDOC_PAGE, headers={"Content-Security-Policy": REDOC_POLICY})


def assets() -> StaticFiles:
    return StaticFiles(directory=ASSETS)
