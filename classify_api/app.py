"""skyclass on AWS Lambda: routes only; the logic lives in chalicelib/.

Nothing heavy happens at import: `chalice package`/`deploy` import this file (with
AWS_CHALICE_CLI_MODE set) and the model is loaded on the first request that needs it.
"""

import os

from chalice import CORSConfig, Response

from chalicelib import handlers
from chalicelib.media_types import binary_types
from chalicelib.thread_safe_app import ThreadSafeChalice

app = ThreadSafeChalice(app_name="skyclass")
# Raw images and multipart bodies must reach Lambda byte-exact (base64 in the event).
app.api.binary_types = binary_types(app.api.binary_types)

# Browsers on other origins (a static site, Insomnia's web app) may call the API.
cors = CORSConfig(allow_origin="*", allow_headers=["Content-Type", "X-Api-Key"], max_age=600)

# Optional: set SKYCLASS_API_KEY_REQUIRED=true in .chalice/config.json (chalice applies a stage's
# environment variables before importing this file), then API Gateway wants x-api-key on /classify.
API_KEY_REQUIRED = os.environ.get("SKYCLASS_API_KEY_REQUIRED", "").lower() in ("1", "true", "yes")

# Every method a route does not serve is declared too, so that it reaches the app (API Gateway
# answers undeclared ones itself, with 403 "Missing Authentication Token") and gets a 405 in our
# {error, message} shape with CORS headers. OPTIONS stays chalice's CORS preflight.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_PAGE, _CLASSIFY = ("GET", "HEAD"), ("POST",)
# "*/*": chalice would answer other types with its own 415 body; the handlers answer in ours.
_ANY = ["*/*"]


def _others(allowed: tuple[str, ...]) -> list[str]:
    return [method for method in _METHODS if method not in allowed]


@app.route("/", methods=list(_PAGE), cors=cors)
def index() -> Response:
    return handlers.index(app.current_request)


@app.route("/health", methods=list(_PAGE), cors=cors)
def health() -> Response:
    return handlers.health(app.current_request)


@app.route(
    "/classify",
    methods=list(_CLASSIFY),
    content_types=_ANY,
    cors=cors,
    api_key_required=API_KEY_REQUIRED,
)
def classify() -> Response:
    return handlers.classify(app.current_request)


_index_405 = handlers.method_not_allowed("/", _PAGE)
_health_405 = handlers.method_not_allowed("/health", _PAGE)
_classify_405 = handlers.method_not_allowed("/classify", _CLASSIFY)


@app.route("/", methods=_others(_PAGE), content_types=_ANY, cors=cors)
def index_other_methods() -> Response:
    return _index_405(app.current_request)


@app.route("/health", methods=_others(_PAGE), content_types=_ANY, cors=cors)
def health_other_methods() -> Response:
    return _health_405(app.current_request)


@app.route("/classify", methods=_others(_CLASSIFY), content_types=_ANY, cors=cors)
def classify_other_methods() -> Response:
    return _classify_405(app.current_request)


# Any other one-segment path (/predict, /favicon.ico): 404 in our shape. Deeper paths never reach
# the app: API Gateway and chalice local answer them with 403 "Missing Authentication Token".
@app.route("/{path}", methods=list(_METHODS), content_types=_ANY, cors=cors)
def unknown_path(path: str) -> Response:
    return handlers.not_found(app.current_request)
