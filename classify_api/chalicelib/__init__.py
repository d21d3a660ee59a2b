"""The skyclass service logic behind ``app.py``'s routes, in the order a request meets it:

- ``handlers``: what each route does; ``guard`` wraps every view (errors to JSON, one log line);
- ``framing``: one well-formed Content-Length, or chunks the server read;
- ``parameters``: ``top`` and ``reject``;
- ``uploads``: a body becomes images, through ``media_types``, ``limits``, ``multipart``,
  ``base64_images``, ``urls`` (a URL where bytes belong) and ``batch_keys``;
- ``model_store``: the one predictor per container; ``health``: /health's document;
- ``errors``, ``responses``: what a client gets back; ``request_log`` + ``emf``: what the
  operator gets (one JSON line with CloudWatch metrics);
- ``page``: the upload page; ``thread_safe_app``: the app class;
- ``packaging``: stops ``chalice deploy`` from shipping a bundle that cannot run.

Only the standard library, numpy, Pillow, onnxruntime, ``shared`` and chalice's runtime are
imported here: the Lambda bundle carries nothing else.
"""

import os
import sys

# Before numpy is first imported (app.py imports this package first): preprocessing's matrix
# products are small, and OpenBLAS's spinning worker threads fight onnxruntime's for Lambda's vCPU
# quota. Measured on 2 busy cores: preprocess 7-20 ms single-threaded vs 200-600 ms threaded.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# chalice imports app.py, and so this package first, before it zips anything: the one moment a
# broken package can be stopped with a sentence instead of a failed first request on Lambda.
if os.environ.get("AWS_CHALICE_CLI_MODE"):
    from chalicelib.packaging import refuse_broken_package

    refuse_broken_package(sys.argv)
