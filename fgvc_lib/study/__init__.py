"""The one study runner every notebook uses (docs/DESIGN.md, "Running the grid").

* :mod:`.parameters`: a notebook's parameters, declared and checked in one place;
* :mod:`.paper`: how a paper is declared (variants, printed cells, claims) as data;
* :mod:`.jobs`: one run as a picklable job with its key, checkpoint folder and lock;
* :mod:`.executors`: inline, local process pool, or Slurm through submitit;
* :mod:`.runner`: :class:`Study`, which plans, runs, and builds tables and claims.
"""
from .paper import Accuracy, Cell, Claim, Fixed, Paper, Printed, Score, Variant
from .parameters import Parameter
from .runner import Run, Study

__all__ = ["Accuracy", "Cell", "Claim", "Fixed", "Paper", "Parameter", "Printed", "Run", "Score", "Study", "Variant"]
