"""The look shared by every figure (``analyze``'s and ``plot-training``'s) and how figures are saved.

Separate from :mod:`.plots` so that ``plot-training`` does not depend on the law's figures: a
change to the scaling plot must not rerun the training plot. Series are told apart by marker and
line style as well as colour, so the figures survive black-and-white printing; every figure is
written as PNG (quick looks, the report) and PDF (the paper) side by side.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES: tuple[str, ...] = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))


def style(i: int) -> dict:
    """Marker, line style and colour of the i-th series (all three vary)."""
    return {
        "marker": MARKERS[i % len(MARKERS)],
        "linestyle": LINESTYLES[i % len(LINESTYLES)],
        "color": f"C{i % 10}",
    }


def save(fig: plt.Figure, out: Path) -> list[Path]:
    """Write ``out`` as .png and .pdf (whatever suffix ``out`` had) and close the figure."""
    out = Path(out)
    stem = out.with_suffix("") if out.suffix.lower() in {".png", ".pdf"} else out
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def empty(ax: plt.Axes, message: str) -> None:
    """Say in the panel why it has nothing to show, instead of leaving it blank."""
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
