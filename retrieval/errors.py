"""Errors of the transaction memory (user-facing: the CLI prints them without a traceback).

They are defined in the core (``malles_graph.retail.retrieval_api``) so that the decision graph
catches the same classes whichever retriever it was given; re-exported here.
"""

from __future__ import annotations

from malles_graph.retail.retrieval_api import RetrievalError, UnknownCustomerError

__all__ = ["RetrievalError", "UnknownCustomerError"]
