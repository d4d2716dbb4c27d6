"""Bundled data files: prompts, personas and scenarios (mapped from the repository's top-level folders)."""
