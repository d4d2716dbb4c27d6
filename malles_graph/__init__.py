"""malles-graph: LLM-agent economic simulation on LangGraph (MALLES and LLM Economist)."""

__version__ = "0.6.0"
