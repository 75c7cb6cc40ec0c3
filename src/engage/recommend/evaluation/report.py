"""An evaluation's report: a text table (one row per model, the metrics as columns), the same figures as
JSON, and a PNG bar chart of NDCG@10 and precision@10 per model, written side by side into one folder."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from engage.recommend.evaluation.metrics import LABELS, METRICS
from engage.recommend.evaluation.runner import Evaluation

__all__ = ["ReportFiles", "CHART_METRICS", "report_table", "table_text", "write_report", "write_chart"]

CHART_METRICS = ("normalized_discounted_cumulative_gain_at_10", "precision_at_10")


@dataclass(frozen=True)
class ReportFiles:
    table: Path
    json: Path
    chart: Path


def report_table(evaluation: Evaluation) -> Table:
    """One row per model: every metric of `METRICS`, then its fit and scoring seconds."""
    table = Table(title=_title(evaluation), title_justify="left")
    table.add_column("model", no_wrap=True)
    for metric in METRICS:
        table.add_column(LABELS[metric], justify="right")
    table.add_column("fit s", justify="right")
    table.add_column("score s", justify="right")
    for result in evaluation.results:
        figures = [f"{result.metrics[metric]:.4f}" for metric in METRICS]
        table.add_row(result.model, *figures, f"{result.fit_seconds:.2f}", f"{result.score_seconds:.2f}")
    return table


def table_text(evaluation: Evaluation) -> str:
    """`report_table` as plain text, without colours, as wide as it needs."""
    output = io.StringIO()
    Console(file=output, width=200, color_system=None).print(report_table(evaluation))
    return "\n".join(line.rstrip() for line in output.getvalue().splitlines()) + "\n"


def write_report(evaluation: Evaluation, folder: Path) -> ReportFiles:
    """Write the table (.txt), `Evaluation.to_dict()` (.json) and the chart (.png) into `folder`, created
    if needed, each named after the dataset and the protocol, so runs of other datasets and protocols can
    share the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{evaluation.dataset}-{evaluation.protocol}"
    files = ReportFiles(folder / f"{stem}.txt", folder / f"{stem}.json", folder / f"{stem}.png")
    files.table.write_text(table_text(evaluation), encoding="utf-8")
    files.json.write_text(json.dumps(evaluation.to_dict(), indent=2) + "\n", encoding="utf-8")
    write_chart(evaluation, files.chart)
    return files


def write_chart(evaluation: Evaluation, path: Path) -> None:
    """A PNG of `CHART_METRICS` as bars grouped by model. Drawn on a bare Figure with the Agg canvas, so
    pyplot's global state and the process's backend are left alone."""
    models = [result.model for result in evaluation.results]
    figure = Figure(figsize=(max(6.0, 1.2 * len(models) + 2.0), 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = np.arange(len(models))
    width = 0.8 / len(CHART_METRICS)
    for offset, metric in enumerate(CHART_METRICS):
        values = [result.metrics[metric] for result in evaluation.results]
        shift = (offset - (len(CHART_METRICS) - 1) / 2) * width
        bars = axes.bar(positions + shift, values, width, label=LABELS[metric])
        axes.bar_label(bars, fmt="%.3f", fontsize=8, padding=2)
    axes.set_xticks(positions, models)
    axes.set_ylim(0, 1.2 * max([r.metrics[m] for r in evaluation.results for m in CHART_METRICS] + [0.01]))
    axes.set_title(_title(evaluation), fontsize=10)
    axes.legend()
    figure.savefig(path, format="png", dpi=120)


def _title(evaluation: Evaluation) -> str:
    seen = "history excluded" if evaluation.exclude_seen else "history ranked"
    return (
        f"{evaluation.dataset}, {evaluation.protocol} protocol (seed {evaluation.seed}, {seen}): "
        f"{evaluation.test_users:,} test users, {evaluation.items:,} items"
    )
