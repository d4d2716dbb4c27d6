"""Prompt experiments: paired A/B runs of prompt sets on the same purchase cases.

``variants`` checks the prompt sets before any LLM call, ``store`` keeps an experiment's
predictions on disk (resumable, rescorable), ``running`` answers the cases with each set,
``insight`` reads what each debate role said and cost, ``scoring`` computes the per-variant
figures and the paired differences, ``report`` writes markdown and HTML.
"""
