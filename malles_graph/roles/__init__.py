"""Computed roles: the LLM-free MALLES agent (fitted role models, stacking decide, count model)."""
