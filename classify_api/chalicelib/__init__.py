"""The skyclass service logic behind ``app.py``'s routes.

Only the standard library, numpy, Pillow, onnxruntime, ``shared`` and (in ``responses``) chalice's
runtime are imported here: the Lambda bundle carries nothing else.
"""
