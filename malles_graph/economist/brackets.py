"""The U.S. federal brackets as plain constants (no numpy: scenario validation needs them at start-up)."""

from __future__ import annotations

# 2024 U.S. federal brackets for single filers (IRS Rev. Proc. 2023-34): lower thresholds in dollars.
US_THRESHOLDS: tuple[float, ...] = (0.0, 11_600.0, 47_150.0, 100_525.0, 191_950.0, 243_725.0, 609_350.0)
US_RATES: tuple[float, ...] = (10.0, 12.0, 22.0, 24.0, 32.0, 35.0, 37.0)
N_BRACKETS = len(US_THRESHOLDS)
