"""Offline evaluation of recommendation models, the backend of `engage recs evaluate`.

    interactions = movielens_100k(workspace_root / "var" / "cache")   # or generated_interactions()
    evaluation = evaluate(interactions, [Popularity, Ease, Als], "personalize", seed=0, name="ml-100k")
    write_report(evaluation, workspace_root / "var" / "evaluations")  # ml-100k-personalize.txt .json .png

A dataset is a DataFrame of interactions (`interactions`); a protocol splits it into the training data,
the test users' input histories and their test interactions (`protocols`: Amazon Personalize's and
leave-last-out); every model ranks every item for every test user from their history through `Model.score`
(`runner`), measured under binary relevance with Personalize's metric names (`metrics`); `report` writes
the table, the JSON and the chart.
"""

from engage.recommend.evaluation.generated import generated_interactions
from engage.recommend.evaluation.interactions import COLUMNS, check_interactions, interaction_matrix
from engage.recommend.evaluation.metrics import (
    DEPTH,
    LABELS,
    METRICS,
    RunningMetrics,
    ranking_metrics,
    top_items,
)
from engage.recommend.evaluation.movielens import REQUIREMENT, WHEEL, download_wheel, movielens_100k
from engage.recommend.evaluation.protocols import PROTOCOLS, ProtocolName, Split, split_interactions
from engage.recommend.evaluation.report import (
    ReportFiles,
    report_table,
    table_text,
    write_chart,
    write_report,
)
from engage.recommend.evaluation.runner import Evaluation, ModelResult, ModelSource, evaluate, relevant_items

__all__ = [
    "COLUMNS",
    "DEPTH",
    "LABELS",
    "METRICS",
    "PROTOCOLS",
    "REQUIREMENT",
    "WHEEL",
    "Evaluation",
    "ModelResult",
    "ModelSource",
    "ProtocolName",
    "ReportFiles",
    "RunningMetrics",
    "Split",
    "check_interactions",
    "download_wheel",
    "evaluate",
    "generated_interactions",
    "interaction_matrix",
    "movielens_100k",
    "ranking_metrics",
    "relevant_items",
    "report_table",
    "split_interactions",
    "table_text",
    "top_items",
    "write_chart",
    "write_report",
]
