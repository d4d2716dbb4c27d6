"""Evaluation against real purchases: cases, predictors, metrics and reports (issue 7).

Import the submodules you need (``cases``, ``builder``, ``choice_model``, ``predictors``,
``metrics``, ``report``); this package import stays light.
"""
