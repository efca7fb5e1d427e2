"""`--help` that wraps lines only between words.

Click's wrapper breaks at hyphens and cuts words longer than the column, so a slug, a path, a
URL or an environment variable in the help could come out as `allsides-neus-⏎stories` and no
longer be copied whole. Here a line breaks only at spaces, a word longer than the column runs
past it, and each example command stays on one line. (Typer vendors its own click: the
formatter and the commands are typer's classes.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from textwrap import TextWrapper
from typing import Any

import typer
from typer._click.core import Command
from typer._click.formatting import HelpFormatter
from typer.core import TyperGroup


def _wrap(text: str, width: int, indent: str = "") -> str:
    """`text` wrapped to `width` between words, its paragraphs (blank-line separated) kept; the
    paragraphs after an `Examples:` one are commands, not rewrapped."""
    paragraphs: list[str] = []
    examples = False
    for paragraph in text.expandtabs().split("\n\n"):
        lines = [line for line in paragraph.splitlines() if line.strip()]
        if not lines:
            continue
        if examples:  # commands: kept on their lines, to paste whole
            paragraphs.append("\n".join(indent + line for line in lines))
            continue
        examples = lines == ["Examples:"]
        wrapper = TextWrapper(
            max(width, len(indent) + 1),
            initial_indent=indent,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
        paragraphs.append(wrapper.fill(" ".join(line.strip() for line in lines)))
    return "\n\n".join(paragraphs)


class WholeWordsFormatter(HelpFormatter):
    """Click's help layout (the usage line is click's: its pieces are short), wrapped by
    `_wrap`."""

    def write_text(self, text: str) -> None:
        self.write(_wrap(text, self.width, " " * self.current_indent) + "\n")

    def write_dl(
        self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        rows = list(rows)
        first_col = min(max((len(term) for term, _ in rows), default=0), col_max) + col_spacing
        margin = " " * (self.current_indent + first_col)
        for term, text in rows:
            self.write(f"{'':>{self.current_indent}}{term}")
            if not text:
                self.write("\n")
                continue
            if len(term) <= first_col - col_spacing:
                self.write(" " * (first_col - len(term)))
            else:
                self.write("\n" + margin)
            lines = _wrap(text, max(self.width - first_col - 2, 10)).splitlines() or [""]
            rest = [margin + line if line else "" for line in lines[1:]]
            self.write("\n".join([lines[0], *rest]) + "\n")


class WholeWordsContext(typer.Context):
    formatter_class = WholeWordsFormatter


class WholeWordsGroup(TyperGroup):
    """The root command: it and every command under it format help with `WholeWordsFormatter`."""

    context_class = WholeWordsContext

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        # Typer builds each subcommand from its own class; a command's context class decides
        # its formatter, so every one of them gets ours.
        for command in _descendants(self):
            command.context_class = WholeWordsContext


def _descendants(group: TyperGroup) -> Iterator[Command]:
    for command in group.commands.values():
        yield command
        if isinstance(command, TyperGroup):
            yield from _descendants(command)
