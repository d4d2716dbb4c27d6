"""The malles-graph terminal app (Textual). Start it with ``malles tui``; nothing imports this package."""
