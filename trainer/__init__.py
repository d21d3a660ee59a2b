"""Transfer-learning trainer: ``python -m trainer.fit`` and ``python -m trainer.export``."""
