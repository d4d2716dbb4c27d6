"""The bundled persona and style-parameter files (package data)."""
