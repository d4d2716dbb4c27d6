"""Wholesale dialogue (MALLES): purchasing rules, inventory simulator, baselines, symbolic regression."""
