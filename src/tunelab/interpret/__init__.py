"""Interpretability: token attributions (Integrated Gradients, gradient x input, occlusion),
global feature importance of a classifier, attention maps, and HTML/JSON reports of them.

Everything heavy (torch, captum) is imported inside the functions that need it, so importing
this package costs nothing. Entry points: `interpret.explain.explain` and
`interpret.global_importance.global_importance` (also `tunelab.api.explain` and
`tunelab explain` on the command line).
"""
