"""Reads the built-in page's HTML as the page tests compare it with the API: the ``data-*``
attributes of its table rows and the text of its elements with an id."""

from __future__ import annotations

from html.parser import HTMLParser


class PageRows(HTMLParser):
    """Collects the ``data-*`` attributes of table rows and the text of elements with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self.texts: dict[str, str] = {}
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "tr" and any(k.startswith("data-") for k in values):
            self.rows.append(values)
        self._open = values.get("id")

    def handle_data(self, data: str) -> None:
        if self._open:
            self.texts[self._open] = self.texts.get(self._open, "") + data

    def handle_endtag(self, tag: str) -> None:
        self._open = None

    def row(self, attribute: str, value: str) -> dict[str, str]:
        """The table row whose ``attribute`` is ``value``."""
        return next(r for r in self.rows if r.get(attribute) == value)
