"""The app's footer: Textual's Footer, rebuilt only when the keys it shows change.

Textual's Footer recomposes (removes and mounts every key widget, then styles them) each time the
screen's bindings are refreshed, which happens on every screen switch and focus change even when the
keys are the same. That was most of the CPU time of a screen switch (about 0.15-0.2 s of 0.25 s).
And each new key widget starts as compact (FooterKey's default) and is bound to the footer's own
setting (not compact) only once mounted, so every key was restyled twice right after its first styling;
here each bound key is made with the footer's setting.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class KeyFooter(Footer):
    """A Footer that recomposes only when the shown keys (or whether they are enabled) change."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: tuple | None = None

    def _keys(self, screen: Screen) -> tuple:
        """What compose() draws from: the shown bindings and the command palette's key."""
        palette = screen.app.COMMAND_PALETTE_BINDING
        return tuple(
            (key, screen.app.get_key_display(binding), binding.action, binding.description, enabled, tooltip)
            for key, (_, binding, enabled, tooltip) in screen.active_bindings.items()
            if binding.show or key == palette
        )

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            # The keys bound to the footer's setting (the command palette's key is not, and stays compact).
            if isinstance(widget, FooterKey) and "compact" in (widget._reactive_connect or {}):
                widget.set_reactive(FooterKey.compact, self.compact)
                widget.set_class(self.compact, "-compact", update=False)
            yield widget

    def bindings_changed(self, screen: Screen) -> None:
        if self.is_attached and screen is self.screen and screen.app.app_focus:
            keys = self._keys(screen)
            if keys == self._shown:
                self._bindings_ready = True
                return
            self._shown = keys
        super().bindings_changed(screen)
