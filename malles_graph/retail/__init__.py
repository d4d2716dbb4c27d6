"""The retail domain (MALLES customers): situations, personas, hidden factors, stabilisers, run setup.

``situations``: a customer's choice situation built from Ta Feng history; ``personas``: persona and
style-parameter files; ``hidden_factors``: the reconstructed hidden factors Z; ``stabilise``: the
multi-sample vote and calibrators; ``retrieval_api``: the retriever protocol the memory implements;
``population``: customer features (Ta Feng or personas), archetypes and each representative's base
situation; ``preflight``: what is checked before a retail run starts; ``seeds``: the spread of final
outcomes across seeds.
"""
