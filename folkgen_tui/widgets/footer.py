"""Textual's Footer without its leak."""

from __future__ import annotations

from textual.widgets import Footer


class StudioFooter(Footer):
    """The Footer recomposes whenever the keys that apply change (several times per generated
    tune here), and binds each new key to its `compact` setting with a watcher. Textual prunes
    those watchers only when `compact` changes, which it never does, so every removed key stayed
    alive: 456 widgets per round of bench/long_session.py, about 30 MB. This drops them."""

    async def recompose(self) -> None:
        await super().recompose()
        watchers: dict[str, list[tuple[object, object]]] = getattr(self, "__watchers", {})
        for bound in watchers.values():
            bound[:] = [(node, callback) for node, callback in bound
                        if getattr(node, "is_attached", True)]  # fmt: skip
