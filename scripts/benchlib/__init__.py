"""The pieces of ``scripts/bench.py``: one module per section, plus what they share.

Every timed measurement runs in a fresh child interpreter (:mod:`scripts.benchlib.worker`), so
torch's and onnxruntime's thread pools never compete inside one process and each side's memory
is its own. The parent only prepares inputs (models, images, events) and collects the results.
"""
