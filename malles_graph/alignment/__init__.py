"""Economic alignment: calibration f, reweighting w(X, Z), likelihood choice scoring, post-training.

The core modules (calibration, reweighting, scoring, export) need only numpy/scipy/sklearn;
``train`` imports torch, transformers and peft inside its functions (the ``align`` extra).
"""

from malles_graph.alignment.errors import AlignmentError

__all__ = ["AlignmentError"]
