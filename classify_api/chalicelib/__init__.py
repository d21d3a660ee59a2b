"""The skyclass service logic behind ``app.py``'s routes.

Only the standard library, numpy, Pillow, onnxruntime, ``shared`` and (in ``responses``) chalice's
runtime are imported here: the Lambda bundle carries nothing else.
"""

import os

# Before numpy is first imported (app.py imports this package first): preprocessing's matrix
# products are small, and OpenBLAS's spinning worker threads fight onnxruntime's for Lambda's vCPU
# quota. Measured on 2 busy cores: preprocess 7-20 ms single-threaded vs 200-600 ms threaded.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
