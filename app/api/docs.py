"""Swagger UI's own files, served by the service so that `/api/docs` works without internet.

flask-smorest renders the `/api/docs` page; the JavaScript and CSS it loads come from the
installed flask-swagger-ui package, whose `dist/` folder is Swagger UI's release files (kept
current with Swagger UI). Only those files are used, not that package's blueprint.
"""

from __future__ import annotations

from importlib.resources import files

from flask import Blueprint

# Where the page loads them from: OPENAPI_SWAGGER_UI_URL in app/__init__.py names the same path.
STATIC_URL_PATH = "/api/docs/static"

blp = Blueprint(
    "api_docs",
    __name__,
    static_folder=str(files("flask_swagger_ui") / "dist"),
    static_url_path=STATIC_URL_PATH,
)
