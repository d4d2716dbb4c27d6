"""The retail domain (MALLES customers): population setup, preflight checks, seed statistics.

``population``: customer features (Ta Feng or personas), archetypes and each representative's
base situation; ``preflight``: what is checked before a retail run starts; ``seeds``: the spread
of final outcomes across seeds.
"""
