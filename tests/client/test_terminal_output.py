"""Text from the service reaches the terminal escaped: no raw control sequence, no markup."""

from __future__ import annotations

import io

from fewshot_client.cli.console import plain
from rich.console import Console
from rich.table import Table


def test_labels_left_from_before_the_rule_print_escaped():
    table = Table("label")
    for label in (
        "\x1b[31mred",
        "nul\x00",
        "\u202eevil\u202c",
        "[bold]x[/]",
        "café 가",
        "\U000f0000",
    ):
        table.add_row(plain(label))
    screen = io.StringIO()
    Console(file=screen, width=120, color_system=None).print(table)
    shown = screen.getvalue()
    assert not any(char in shown for char in "\x1b\x00\u202e\u202c\U000f0000")
    for escaped in (r"\x1b[31mred", r"nul\x00", r"\u202eevil\u202c", "[bold]x[/]", "café 가"):
        assert escaped in shown
    assert r"\U000f0000" in shown
