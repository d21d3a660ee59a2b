"""The skyclass service logic behind ``app.py``'s routes, in the order a request meets it:
``handlers`` (what each route does), ``uploads`` (limits, media types, multipart, bodies),
``model_store`` (the predictor), ``http`` (errors, responses, the guard) and ``page`` (the upload
page); ``packaging`` stops ``chalice deploy`` from shipping a bundle that cannot run.

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
