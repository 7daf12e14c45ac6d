"""The files of one attention map: a PNG grid of every layer and head, the rollout PNG, the
interactive page and the JSON summary."""

from __future__ import annotations

import json
from pathlib import Path

from tunelab.atomic import atomic_write_text
from tunelab.interpret.attention import maps_summary
from tunelab.interpret.attention_html import attention_html
from tunelab.interpret.attention_plots import plot_attention_grid, plot_rollout


def write_attention(maps: dict, output_dir: str | Path, *, stem: str = "attention") -> dict:
    """Write stem.png (grid of all layers and heads), stem-rollout.png, stem.html
    (interactive) and stem.json into `output_dir`, each atomically. Returns their paths
    keyed "png", "rollout_png", "html", "json"."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "png": out / f"{stem}.png",
        "rollout_png": out / f"{stem}-rollout.png",
        "html": out / f"{stem}.html",
        "json": out / f"{stem}.json",
    }
    plot_attention_grid(maps, paths["png"])
    plot_rollout(maps, paths["rollout_png"])
    title = f"Attention: {maps.get('model') or 'model'}"
    atomic_write_text(paths["html"], attention_html(maps, title=title))
    atomic_write_text(paths["json"], json.dumps(maps_summary(maps), indent=1) + "\n")
    return paths
