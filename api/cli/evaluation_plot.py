"""`recommender evaluate --plot`: the metrics of each strategy as grouped bars in a PNG."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from recommender.errors import RecommenderError
from recommender.evaluation.metrics import METRIC_NAMES as METRICS


def plot_evaluation(result: dict[str, Any], path: Path) -> None:
    """Draw `result` (the evaluation's JSON object) to `path`."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RecommenderError(
            "--plot needs matplotlib: pip install 'related-articles[plot]'"
        ) from exc
    strategies = list(result["results"])
    width = 0.8 / max(1, len(strategies))
    figure, axes = plt.subplots(figsize=(11, 4.5))
    for i, name in enumerate(strategies):
        values = [result["results"][name][metric] for metric in METRICS]
        values = [0.0 if v is None or math.isnan(v) else v for v in values]
        positions = [m + (i - (len(strategies) - 1) / 2) * width for m in range(len(METRICS))]
        bars = axes.bar(positions, values, width, label=name)
        axes.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    axes.set_xticks(range(len(METRICS)))
    axes.set_xticklabels([m.replace("_at_k", f"@{result['k']}") for m in METRICS], fontsize=9)
    axes.set_ylim(0, 1.1)
    axes.set_title(
        f"{Path(result['dataset']).parent.name or result['dataset']}: "
        f"{result['sources']} sources, {result['articles']} articles"
    )
    axes.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=110)
    except OSError as exc:
        raise RecommenderError(f"cannot write {path}: {exc.strerror}") from exc
    finally:
        plt.close(figure)
