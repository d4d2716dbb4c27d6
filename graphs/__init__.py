"""LangGraph graphs of malles-graph: decision, population, economist, wholesale.

Each module exposes a builder and a compiled ``graph`` listed in langgraph.json.
"""
