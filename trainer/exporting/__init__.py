"""Exporting: the ONNX graph, the parity gate, INT8, the rejection rule, the Lambda runtime check,
the files written (``steps`` runs them in order) and publishing to the API."""
