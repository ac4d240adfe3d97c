"""The CLI's report details: a matrix of attacks by eps, as the console shows it, not one row
per attack and eps."""

from __future__ import annotations

from fewshot_client.cli.remote import attack_matrix
from rich.console import Console


def cell(attack: str, eps: float, mean: float) -> dict:
    return {"attack": attack, "eps": eps, "mean": mean, "low": mean / 2, "high": 1.0, "n": 4}


CELLS = [  # as a report lists them: every attack at eps 0 too, the worst case among them
    *(cell(attack, 0.0, 1.0) for attack in ("fgsm", "apgd-ce-20", "worst")),
    *(cell(attack, 0.1, 0.75) for attack in ("worst", "fgsm", "apgd-ce-20")),
    *(cell(attack, 0.5, 0.0) for attack in ("fgsm", "apgd-ce-20", "worst")),
]


def rendered(cells: list[dict]) -> list[str]:
    console = Console(width=120, record=True, color_system=None)
    console.print(attack_matrix(cells, "robust (served)"))
    return [line for line in console.export_text().splitlines() if line.strip()]


def test_one_row_per_attack_no_attack_once_worst_last():
    lines = rendered(CELLS)
    header = [part.strip() for part in lines[2].split("┃") if part.strip()]
    assert header == ["attack", "eps 0.1", "eps 0.5"]  # eps 0 is the no-attack row's
    rows = [[part.strip() for part in line.split("│")[1:-1]] for line in lines if "│" in line]
    assert [row[0] for row in rows] == ["no attack (eps 0)", "fgsm", "apgd-ce-20", "worst case"]
    assert rows[1] == ["fgsm", "75% 38-100%", "0% 0-100%"]  # share correct, then its interval
