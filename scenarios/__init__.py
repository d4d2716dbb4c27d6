"""The bundled, ready-to-run scenario files (package data)."""
