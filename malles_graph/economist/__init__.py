"""LLM Economist (Karten et al. 2025): workers, tax schedules, planner maths, Saez baseline."""
