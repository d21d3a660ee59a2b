"""skyclass on AWS Lambda: routes only; the logic lives in chalicelib/.

Nothing heavy happens at import: `chalice package`/`deploy` import this file (with
AWS_CHALICE_CLI_MODE set) and the model is loaded on the first request that needs it.
"""

import os

from chalice import CORSConfig, Response

from chalicelib import handlers, uploads
from chalicelib.http import ThreadSafeChalice

app = ThreadSafeChalice(app_name="skyclass")
# Raw images and multipart bodies must reach Lambda byte-exact (base64 in the event).
app.api.binary_types = uploads.binary_types(app.api.binary_types)

# Browsers on other origins (a static site, Insomnia's web app) may call the API.
cors = CORSConfig(allow_origin="*", allow_headers=["Content-Type", "X-Api-Key"], max_age=600)

# Optional: set SKYCLASS_API_KEY_REQUIRED=true in .chalice/config.json (chalice applies a stage's
# environment variables before importing this file), then API Gateway wants x-api-key on /classify.
API_KEY_REQUIRED = os.environ.get("SKYCLASS_API_KEY_REQUIRED", "").lower() in ("1", "true", "yes")


@app.route("/", methods=["GET"], cors=cors)
def index() -> Response:
    return handlers.index()


@app.route("/health", methods=["GET"], cors=cors)
def health() -> Response:
    return handlers.health()


# "*/*": chalice would answer other types with its own 415 body; uploads.py answers in ours.
@app.route(
    "/classify",
    methods=["POST"],
    content_types=["*/*"],
    cors=cors,
    api_key_required=API_KEY_REQUIRED,
)
def classify() -> Response:
    request = app.current_request
    return handlers.classify(
        request.headers.get("content-type"), request.raw_body, request.query_params
    )
