"""Evaluation and reports: a served model scored through the API's own path, metrics with their
intervals, and every file a run writes for people (report.md, the model card, plots)."""
