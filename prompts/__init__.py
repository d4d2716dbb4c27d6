"""The bundled role prompts (package data: one ``.txt`` file per role)."""
