"""Plain-text tables for the terminal (the command line, the experiments, the explanations)."""

from __future__ import annotations


def table(rows: list[list], header: list[str]) -> str:
    """Left-aligned columns, a rule under the header."""
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()   # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def markdown_table(rows: list[list], header: list[str]) -> str:
    """The same rows as a Markdown (GitHub) table: the results files beside each experiment's figure."""
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def format_metric(name: str, value: float | None) -> str:
    """Accuracies as percentages, counts as integers, everything else with four decimals."""
    if value is None:
        return "-"
    if name.endswith("acc"):
        return f"{100 * value:.2f}%"
    return f"{int(value):,}" if float(value).is_integer() and abs(value) >= 1 else f"{value:.4f}"
