"""When the trainer draws progress bars: on a terminal or in a notebook, never in a log file.

tqdm's own default (``disable=None``) turns bars off whenever the output is not a terminal, which
keeps CI logs readable but also hides them in Jupyter and Colab, where a kernel's stderr is not a
terminal yet shows a bar perfectly well.
"""

import sys


def hidden(progress: bool = True) -> bool | None:
    """tqdm's ``disable`` argument for a run that wants bars (``progress``) or not."""
    if not progress:
        return True
    return False if "ipykernel" in sys.modules else None
