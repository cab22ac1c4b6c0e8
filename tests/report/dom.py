"""Reading the figures back out of a report page: every element with data-metric, by (metric, key)."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser


@dataclass(frozen=True)
class Figure:
    value: str  # data-value: the exact figure
    text: str  # what a reader sees


class _Figures(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.figures: dict[tuple[str, str | None], Figure] = {}
        self.ids: set[str] = set()
        self.tags: list[str] = []
        self._open: tuple[str, tuple[str, str | None], str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        metric = found.get("data-metric")
        if metric is not None and self._open is None:
            self._open = (tag, (metric, found.get("data-key")), str(found.get("data-value")))
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._open is not None and tag == self._open[0]:
            _, key, value = self._open
            assert key not in self.figures, f"figure {key} appears twice"
            self.figures[key] = Figure(value, "".join(self._text).strip())
            self._open = None


def figures(document: str) -> _Figures:
    parser = _Figures()
    parser.feed(document)
    parser.close()
    return parser
