"""The tables every benchmark prints: a rich table on screen, Markdown for RESULTS.md."""

from __future__ import annotations


def print_table(title: str, header, cells, right_aligned=(), width: int = 120) -> None:
    """A rich table (plain text if rich is missing), at least ``width`` columns wide: off a
    terminal rich assumes 80 columns and would cut every cell."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title)
        for line in (header, *cells):
            print("  ".join(line))
        return
    table = Table(title=title)
    for name in header:
        table.add_column(name, justify="right" if name in right_aligned else "left", no_wrap=True)
    for line in cells:
        table.add_row(*line)
    Console(width=max(Console().width, width)).print(table)


def print_markdown(header, cells) -> None:
    """The same table as Markdown."""
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for line in cells:
        print("| " + " | ".join(line) + " |")
