"""Reference baselines, registered as methods (``METHODS``) with a :class:`ReferenceKind`.

They show whether a model learned anything and what the graph, the language model or
pretraining are worth; the reports draw them as reference lines on every front of
their family and keep them off fronts, hypervolumes, knees and early-stopping rungs.

* ``constant``: the training labels' mean (regression), the class prior (classification);
* ``ecfp_rf``: RDKit Morgan fingerprints (radius 2, 2048 bits) and a scikit-learn random forest;
* ``text_mlp``: an MLP on each node's own LM state, without the graph (trained in the loop);
* ``random_init`` is not a method but a flag on any variant (``MethodSpec.random_init``):
  the same method on a backbone that skipped pretraining.
"""
from workloads.references import constant, ecfp_rf, text_mlp  # noqa: F401  (importing registers them)
from workloads.references.base import Fitted, run_fitted_seed

__all__ = ["Fitted", "run_fitted_seed"]
