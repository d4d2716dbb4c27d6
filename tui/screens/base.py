"""The base of the five mode screens (Run, Live debate, Population, History, editor): a cheap first visit.

Textual 8.2 styles a mode's new screen four times over before its first frame: once as each widget
mounts, then again for each of the two ScreenResume events that ``App.switch_mode`` posts on a mode's
first visit (one from ``_init_mode``, one from ``switch_mode``), and once more when the first Resize
event gives the screen its breakpoint class (``-narrow``/``-wide``), each time restyling the whole
screen. Here the screen has its breakpoint class from the start, and as a new screen's styles are then
current (it starts at the app's CSS update count, every widget is styled from the live stylesheet as it
mounts, class changes restyle what they touch), its resumes skip the full restyle until it is first
hidden. Those restyles were most of the event loop's CPU of a first visit.
"""

from __future__ import annotations

from textual import events
from textual.screen import Screen


class ModeScreen(Screen[None]):
    """A screen shown as an app mode; behaves as Screen except for the redundant restyles of a new screen."""

    def __init__(self) -> None:
        super().__init__()
        self._never_hidden = True
        # A new screen is styled from the app's current stylesheet when it mounts, so it is not behind any CSS
        # change. Textual starts every screen at CSS update count -1, and a mode's first screen then makes the
        # app re-parse all its CSS from scratch twice (in _init_mode and in switch_mode).
        self._css_update_count = self.app._css_update_count
        # The breakpoint class (-narrow/-wide) from the start: set by the first Resize event instead, it would
        # restyle the whole screen once more, right after every widget was styled without it.
        self.set_class(True, *self._breakpoint_classes(), update=False)

    def _breakpoint_classes(self) -> set[str]:
        width, height = self.app.size
        horizontal = (
            self.app.HORIZONTAL_BREAKPOINTS if self.HORIZONTAL_BREAKPOINTS is None else self.HORIZONTAL_BREAKPOINTS
        )
        vertical = self.app.VERTICAL_BREAKPOINTS if self.VERTICAL_BREAKPOINTS is None else self.VERTICAL_BREAKPOINTS
        return self._get_breakpoint_classes(width, horizontal or []) | self._get_breakpoint_classes(
            height, vertical or []
        )

    def _on_screen_resume(self, event: events.ScreenResume) -> None:
        # Runs before Screen's handler (subclass first in the MRO), which restyles only if asked to.
        if self._never_hidden:
            event.refresh_styles = False

    def _on_screen_suspend(self) -> None:
        self._never_hidden = False  # hidden screens can miss a CSS or theme change: restyle on every resume
