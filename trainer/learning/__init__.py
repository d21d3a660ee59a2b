"""Learning: the run's options (``config``), and its two regimes on a shared base (``run``):
``solved_head`` (the default: cached features, a linear head solved, choices cross-validated) and
``epochs`` (fine-tuning, an MLP head, no cache), with their checkpoints, for ``--resume``."""
