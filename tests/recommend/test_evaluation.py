"""The recommender's offline evaluation: the metrics on rankings computed by hand, both protocols' splits,
small models defined here evaluated on a generated dataset through the `Model` interface, the report's
files, and MovieLens-100K read from a recbole wheel already in the cache (never downloaded here)."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from engage.errors import EngageError
from engage.recommend.evaluation import (
    METRICS,
    PROTOCOLS,
    WHEEL,
    evaluate,
    generated_interactions,
    movielens_100k,
    ranking_metrics,
    runner,
    split_interactions,
    table_text,
    top_items,
    write_report,
)

CACHE = Path(__file__).resolve().parents[2] / "var" / "cache"
"""Where a developer's MovieLens wheel is kept: `pip download --no-deps recbole==1.2.1 -d var/cache`."""

NDCG = "normalized_discounted_cumulative_gain_at_{}"
PRECISION = "precision_at_{}"
MRR = "mean_reciprocal_rank_at_25"
HIT_RATE = "hit_rate_at_10"
RECALL = "recall_at_20"


# Models written here against the interface, so the tests do not depend on engage's own models.


class PopularityModel:
    name = "popularity"
    half_life = None

    def fit(self, interactions: sparse.csr_matrix) -> None:
        self.users_per_item = np.asarray((interactions > 0).sum(axis=0), dtype=np.float32).ravel()

    def score(self, histories: sparse.csr_matrix) -> np.ndarray:
        return np.tile(self.users_per_item, (histories.shape[0], 1))


class CooccurrenceModel:
    """Items scored by how many training users had them together with the history's items."""

    name = "cooccurrence"
    half_life = None

    def fit(self, interactions: sparse.csr_matrix) -> None:
        seen = (interactions > 0).astype(np.float32)
        self.together = (seen.T @ seen).toarray()
        np.fill_diagonal(self.together, 0.0)

    def score(self, histories: sparse.csr_matrix) -> np.ndarray:
        return np.asarray((histories > 0).astype(np.float32) @ self.together)


class OracleModel:
    """Knows each user's input history and test items; finds the user from the weight their interactions
    carry (see `tagged`), checks it was given that history, and scores the test items 1, the rest 0, but
    the history's own items 2: the evaluation must not rank those by default."""

    name = "oracle"
    half_life = None

    def __init__(self, answers: dict[int, tuple[frozenset[int], frozenset[int]]]):
        self.answers = answers

    def fit(self, interactions: sparse.csr_matrix) -> None:
        self.items = interactions.shape[1]

    def score(self, histories: sparse.csr_matrix) -> np.ndarray:
        scores = np.zeros((histories.shape[0], self.items), dtype=np.float32)
        for row in range(histories.shape[0]):
            history = histories[row]
            user = round((float(history.data[0]) - 1.0) * 1024)
            expected_history, test = self.answers[user]
            assert frozenset(history.indices.tolist()) == expected_history, f"user {user}'s history"
            scores[row, list(test)] = 1.0
            scores[row, history.indices] = 2.0
        return scores


class EchoModel:
    """Recommends only what the history holds, the heaviest first; nothing else is ranked."""

    name = "echo"
    half_life = None

    def fit(self, interactions: sparse.csr_matrix) -> None:
        pass

    def score(self, histories: sparse.csr_matrix) -> np.ndarray:
        dense = histories.toarray()
        return np.where(dense > 0, dense, -np.inf)


def tagged(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with each user's interactions weighing 1 + user / 1024 (exact in float32), so a history's
    weights tell whose it is."""
    return frame.assign(weight=1.0 + frame["user"] / 1024)


def oracle_answers(frame: pd.DataFrame, protocol: str) -> dict[int, tuple[frozenset[int], frozenset[int]]]:
    """Each user's input history and test items (column indices: items ascending), worked out from the
    protocol's rules independently of `split_interactions`, for every user (held out or not)."""
    items = np.sort(frame["item"].unique())
    answers = {}
    for user, events in frame.sort_values("timestamp", kind="stable").groupby("user"):
        columns = np.searchsorted(items, events["item"].to_numpy()).tolist()
        tested = 1 if protocol == "leave-last-out" else max(1, len(columns) // 10)
        answers[user] = (frozenset(columns[:-tested]), frozenset(columns[-tested:]))
    return answers


def one_user(scores: list[float] | np.ndarray, relevant: list[int]) -> dict[str, float]:
    scores = np.asarray(scores, dtype=np.float64)[None, :]
    truth = np.zeros_like(scores, dtype=bool)
    truth[0, relevant] = True
    return ranking_metrics(scores, sparse.csr_matrix(truth))


def ranked(order: list[int], items: int = 30) -> np.ndarray:
    """Scores over `items` items ranking `order` first (in that order), then the rest by index."""
    scores = np.zeros(items)
    scores[order] = np.arange(len(order), 0, -1) + 1.0
    return scores


def ideal(relevant: int) -> float:
    return sum(1 / math.log2(rank + 1) for rank in range(1, relevant + 1))


# Metrics


def test_metrics_have_personalize_names_and_the_two_extra() -> None:
    assert METRICS == (
        "coverage",
        "mean_reciprocal_rank_at_25",
        "normalized_discounted_cumulative_gain_at_5",
        "normalized_discounted_cumulative_gain_at_10",
        "normalized_discounted_cumulative_gain_at_25",
        "precision_at_5",
        "precision_at_10",
        "precision_at_25",
        "hit_rate_at_10",
        "recall_at_20",
    )


def test_a_perfect_ranking() -> None:
    metrics = one_user(ranked([3, 7, 12]), [3, 7, 12])
    assert metrics[NDCG.format(5)] == metrics[NDCG.format(10)] == metrics[NDCG.format(25)] == 1.0
    assert metrics[MRR] == metrics[HIT_RATE] == metrics[RECALL] == 1.0
    assert metrics[PRECISION.format(5)] == pytest.approx(3 / 5)
    assert metrics[PRECISION.format(10)] == pytest.approx(3 / 10)
    assert metrics[PRECISION.format(25)] == pytest.approx(3 / 25)
    assert metrics["coverage"] == pytest.approx(25 / 30)


def test_a_reversed_ranking_finds_nothing() -> None:
    metrics = one_user(np.arange(30.0), [0, 1])  # the relevant items are ranked 30th and 29th
    assert {name: value for name, value in metrics.items() if name != "coverage"} == dict.fromkeys(
        [name for name in METRICS if name != "coverage"], 0.0
    )
    assert metrics["coverage"] == pytest.approx(25 / 30)


def test_the_25th_rank_counts_only_in_the_metrics_that_reach_it() -> None:
    metrics = one_user(np.arange(30.0), [5])  # item 5 is ranked 25th of 30
    assert metrics[MRR] == pytest.approx(1 / 25)
    assert metrics[NDCG.format(25)] == pytest.approx(1 / math.log2(26))
    assert metrics[PRECISION.format(25)] == pytest.approx(1 / 25)
    for name in (NDCG.format(10), PRECISION.format(10), HIT_RATE, RECALL):
        assert metrics[name] == 0.0, name


def test_a_partial_ranking() -> None:
    metrics = one_user(ranked([9, 4, 20, 6, 0]), [4, 6])  # relevant at ranks 2 and 4
    assert metrics[PRECISION.format(5)] == pytest.approx(2 / 5)
    assert metrics[NDCG.format(5)] == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / ideal(2))
    assert metrics[MRR] == pytest.approx(1 / 2)
    assert metrics[HIT_RATE] == metrics[RECALL] == 1.0


def test_a_user_with_several_test_items() -> None:
    order = list(range(10, 30)) + list(range(10))  # item 10 first, ..., item 9 last
    relevant = [10, 12, 20, 29, 9]  # ranks 1, 3, 11, 20 and 30
    metrics = one_user(ranked(order), relevant)
    assert metrics[PRECISION.format(5)] == pytest.approx(2 / 5)
    assert metrics[PRECISION.format(10)] == pytest.approx(2 / 10)
    assert metrics[PRECISION.format(25)] == pytest.approx(4 / 25)
    assert metrics[RECALL] == pytest.approx(4 / 5)
    assert metrics[NDCG.format(10)] == pytest.approx((1 + 1 / math.log2(4)) / ideal(5))
    expected = (1 + 1 / math.log2(4) + 1 / math.log2(12) + 1 / math.log2(21)) / ideal(5)
    assert metrics[NDCG.format(25)] == pytest.approx(expected)
    assert metrics[MRR] == metrics[HIT_RATE] == 1.0


def test_more_test_items_than_a_cut_can_still_score_perfectly() -> None:
    metrics = one_user(ranked(list(range(12))), list(range(12)))
    for name in (NDCG.format(5), NDCG.format(10), PRECISION.format(5), PRECISION.format(10), MRR, RECALL):
        assert metrics[name] == pytest.approx(1.0), name
    assert metrics[NDCG.format(25)] == pytest.approx(1.0)
    assert metrics[PRECISION.format(25)] == pytest.approx(12 / 25)


def test_metrics_average_over_users_and_coverage_joins_their_rankings() -> None:
    scores = np.vstack([ranked(list(range(25)), 50), ranked(list(range(25, 50)), 50)])
    relevant = sparse.csr_matrix(([True, True], ([0, 1], [0, 0])), shape=(2, 50))
    metrics = ranking_metrics(scores, relevant)
    assert metrics[MRR] == pytest.approx(0.5)  # item 0 is the first user's 1st, the second user's 26th
    assert metrics[HIT_RATE] == pytest.approx(0.5)
    assert metrics[PRECISION.format(5)] == pytest.approx(0.1)
    assert metrics["coverage"] == 1.0
    assert ranking_metrics(scores[[0, 0]], relevant[[0, 0]])["coverage"] == 0.5


def test_items_scored_minus_infinity_are_never_ranked() -> None:
    scores = np.full(30, -np.inf)
    scores[[4, 8, 15]] = [1.0, 3.0, 2.0]
    assert top_items(scores[None, :])[0].tolist() == [8, 15, 4] + [-1] * 22
    metrics = one_user(scores, [4, 29])
    assert metrics["coverage"] == pytest.approx(3 / 30)
    assert metrics[MRR] == pytest.approx(1 / 3)
    assert metrics[RECALL] == pytest.approx(1 / 2)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 4).flatmap(
        lambda rows: st.integers(1, 60).flatmap(
            lambda items: st.lists(
                st.lists(
                    st.sampled_from([-np.inf, 0.0, 0.5, 1.0, 2.0, np.nan]), min_size=items, max_size=items
                ),
                min_size=rows,
                max_size=rows,
            )
        )
    ),
    st.integers(1, 30),
)
def test_the_ranking_is_the_sorted_scores_ties_by_index(values: list[list[float]], depth: int) -> None:
    scores = np.array(values, dtype=np.float32)
    for row, top in zip(scores, top_items(scores, depth), strict=True):
        rankable = [item for item in range(len(row)) if np.isfinite(row[item]) or row[item] == np.inf]
        expected = sorted(rankable, key=lambda item: (-row[item], item))[:depth]
        assert top.tolist() == expected + [-1] * (depth - len(expected))


def test_ties_are_ranked_by_item_index() -> None:
    assert top_items(np.ones((2, 40)))[0].tolist() == list(range(25))
    scores = np.ones(60)
    scores[[50, 41, 33]] = 2.0
    assert top_items(scores[None, :])[0].tolist() == [33, 41, 50, *range(22)]
    assert top_items(np.ones((1, 5)))[0].tolist() == [0, 1, 2, 3, 4] + [-1] * 20


# Protocols


def small_dataset(seed: int = 1) -> pd.DataFrame:
    """200 generated users, and 3 users with a single interaction, which no protocol can split."""
    frame = generated_interactions(200, 100, seed=seed)
    singles = pd.DataFrame({"user": [900, 901, 902], "item": [1, 2, 3], "weight": 1.0, "timestamp": 5})
    return pd.concat([frame, singles], ignore_index=True)


def test_personalize_holds_out_a_tenth_of_the_users_with_their_newest_tenth_as_test() -> None:
    frame = small_dataset()
    split = split_interactions(frame, "personalize", seed=7)
    counts = frame.groupby("user").size()

    assert split.skipped_users == 3
    assert len(split.users) == round(0.1 * 200)
    assert split.users.is_monotonic_increasing
    assert (counts[split.users] >= 2).all()

    held_out = frame["user"].isin(split.users)
    assert set(split.train.index) == set(frame.index[~held_out]), "models learn from the other users only"
    assert not set(split.history.index) & set(split.test.index)
    assert set(split.history.index) | set(split.test.index) == set(frame.index[held_out])
    for user in split.users:
        history = split.history[split.history["user"] == user]
        test = split.test[split.test["user"] == user]
        assert len(test) == max(1, counts[user] // 10)
        assert history["timestamp"].max() <= test["timestamp"].min()


def test_personalize_draws_the_same_users_from_the_same_seed_only() -> None:
    frame = small_dataset()
    first = split_interactions(frame, "personalize", seed=7)
    again = split_interactions(frame.sample(frac=1.0, random_state=3), "personalize", seed=7)
    other = split_interactions(frame, "personalize", seed=8)
    assert first.users.tolist() == again.users.tolist()
    assert first.users.tolist() != other.users.tolist()


def test_leave_last_out_tests_each_users_last_interaction_and_trains_on_the_rest() -> None:
    frame = small_dataset()
    split = split_interactions(frame, "leave-last-out", seed=0)
    splittable = frame.groupby("user").size().loc[lambda counts: counts >= 2].index

    assert split.skipped_users == 3
    assert split.users.tolist() == sorted(splittable)
    assert split.test["user"].tolist() == sorted(splittable)
    last = frame.loc[frame.groupby("user")["timestamp"].idxmax()]
    assert set(split.test.index) == set(last.index[last["user"].isin(splittable)])
    assert set(split.train.index) == set(frame.index) - set(split.test.index)
    assert set(split.history.index) == set(split.train.index[split.train["user"].isin(splittable)])
    assert set(split.train["user"]) >= {900, 901, 902}, "a single interaction still trains"


def test_ties_in_time_keep_the_order_of_the_frame() -> None:
    frame = pd.DataFrame(
        {"user": ["a", "a", "a"], "item": ["x", "z", "y"], "weight": 1.0, "timestamp": [10, 20, 20]}
    )
    assert split_interactions(frame, "leave-last-out", seed=0).test["item"].tolist() == ["y"]


def test_matrices_sum_repeated_interactions_over_every_item() -> None:
    frame = pd.DataFrame(
        {
            "user": ["a", "a", "a", "b", "b", "c"],
            "item": ["x", "x", "y", "y", "w", "z"],
            "weight": [1.0, 2.0, 1.0, 1.0, 1.0, 1.0],
            "timestamp": [1, 2, 3, 1, 2, 1],
        }
    )
    split = split_interactions(frame, "leave-last-out", seed=0)
    assert split.items.tolist() == ["w", "x", "y", "z"]
    assert split.users.tolist() == ["a", "b"]
    assert split.history_matrix().toarray().tolist() == [[0, 3, 0, 0], [0, 0, 1, 0]]
    assert split.test_matrix().toarray().tolist() == [[0, 0, 1, 0], [1, 0, 0, 0]]
    assert split.train_matrix().toarray().tolist() == [[0, 3, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]


@pytest.mark.parametrize(
    ("frame", "protocol", "message"),
    [
        (pd.DataFrame({"user": [1], "item": [1], "weight": [1.0]}), "personalize", "lack the column"),
        (pd.DataFrame({"user": [1, 2], "item": [1, 1], "weight": 1.0, "timestamp": 1}), "personalize", "two"),
        (generated_interactions(20, 10), "random", "unknown evaluation protocol 'random'"),
    ],
)
def test_what_cannot_be_split_is_an_engage_error(frame: pd.DataFrame, protocol: str, message: str) -> None:
    with pytest.raises(EngageError, match=message):
        split_interactions(frame, protocol, seed=0)


# Evaluation


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_oracle_scores_perfectly(protocol: str) -> None:
    frame = tagged(generated_interactions(300, 120, seed=2))
    answers = oracle_answers(frame, protocol)
    evaluation = evaluate(frame, [lambda: OracleModel(answers)], protocol, seed=4)
    metrics = evaluation.result("oracle").metrics

    for name in (NDCG.format(5), NDCG.format(10), NDCG.format(25), MRR, HIT_RATE, RECALL):
        assert metrics[name] == pytest.approx(1.0), name
    tested = frame[frame["user"].isin(split_interactions(frame, protocol, seed=4).users)]
    sizes = [1 if protocol == "leave-last-out" else max(1, n // 10) for n in tested.groupby("user").size()]
    for k in (5, 10, 25):
        assert metrics[PRECISION.format(k)] == pytest.approx(np.mean([min(size, k) / k for size in sizes]))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_cooccurrence_beats_popularity_on_generated_data(protocol: str) -> None:
    frame = generated_interactions(500, 200, seed=0)
    evaluation = evaluate(frame, [PopularityModel, CooccurrenceModel], protocol, seed=0)
    popular = evaluation.result("popularity").metrics
    personal = evaluation.result("cooccurrence").metrics
    assert personal[NDCG.format(10)] > 1.3 * popular[NDCG.format(10)]
    assert personal[RECALL] > popular[RECALL]
    assert personal["coverage"] > 2 * popular["coverage"]


def test_repurchases_count_only_when_history_is_ranked() -> None:
    rows = []
    for user in range(20):
        history = [f"i{(user + step) % 40:02d}" for step in range(3)]
        last = history[0] if user % 2 else f"i{(user + 10) % 40:02d}"  # odd users buy their first item again
        rows += [(f"u{user:02d}", item, 1.0, time) for time, item in enumerate([*history, last])]
    frame = pd.DataFrame(rows, columns=["user", "item", "weight", "timestamp"])

    excluded = evaluate(frame, [EchoModel], "leave-last-out", seed=0)
    assert (excluded.test_users, excluded.repeat_only_users) == (10, 10)
    assert excluded.result("echo").metrics[HIT_RATE] == 0.0
    ranked_too = evaluate(frame, [EchoModel], "leave-last-out", seed=0, exclude_seen=False)
    assert (ranked_too.test_users, ranked_too.repeat_only_users) == (20, 0)
    assert ranked_too.result("echo").metrics[HIT_RATE] == 0.5
    assert ranked_too.result("echo").metrics[MRR] == 0.5  # a repeat is the first of its user's history


def test_every_model_is_fitted_fresh_and_measured_on_the_same_split() -> None:
    made: list[PopularityModel] = []

    def factory() -> PopularityModel:
        made.append(PopularityModel())
        return made[-1]

    frame = generated_interactions(200, 80, seed=3)
    first = evaluate(frame, [factory], "personalize", seed=1)
    second = evaluate(frame, [factory], "personalize", seed=1)
    assert len(made) == 2 and made[0] is not made[1]
    assert first.result("popularity").metrics == second.result("popularity").metrics

    instance = CooccurrenceModel()
    both = evaluate(frame, [PopularityModel, instance], "personalize", seed=1)
    assert [result.model for result in both.results] == ["popularity", "cooccurrence"]
    assert both.result("popularity").metrics == first.result("popularity").metrics
    assert instance.together.shape == (80, 80)
    with pytest.raises(EngageError, match="distinct names.*popularity"):
        evaluate(frame, [PopularityModel, factory], "personalize", seed=1)


def test_each_model_scores_histories_weighted_by_its_own_half_life() -> None:
    class Recording(PopularityModel):
        def __init__(self, name: str, half_life: float | None):
            self.name, self.half_life = name, half_life
            self.rows: list[sparse.csr_matrix] = []

        def score(self, histories: sparse.csr_matrix) -> np.ndarray:
            self.rows.append(histories.copy())
            return super().score(histories)

    # One user, five items in turn, b seen twice (last at the third step); their last item is the test.
    frame = pd.DataFrame({"user": [0] * 6, "item": list("abcbde"), "weight": 1.0, "timestamp": range(6)})
    frame = pd.concat([frame, pd.DataFrame({"user": 1, "item": list("ab"), "weight": 1.0, "timestamp": 0})])
    plain, recent = Recording("plain", None), Recording("recent", 1.0)
    evaluate(frame, [plain, recent], "leave-last-out", seed=0, exclude_seen=False)
    assert plain.rows[0].toarray()[0].tolist() == [1.0, 2.0, 1.0, 1.0, 0.0]  # a b c d e, summed
    # d is the newest item of the history (recency 0), b the one before, then c, then a.
    assert recent.rows[0].toarray()[0].tolist() == [1 / 8, 2.0 / 2, 1 / 4, 1.0, 0.0]


def test_the_evaluation_counts_what_it_measured() -> None:
    frame = small_dataset()
    evaluation = evaluate(frame, [PopularityModel], "personalize", seed=7)
    held_out = frame["user"].isin(split_interactions(frame, "personalize", seed=7).users)
    assert (evaluation.users, evaluation.interactions) == (203, len(frame))
    assert evaluation.items == frame["item"].nunique()
    assert (evaluation.train_users, evaluation.train_interactions) == (183, int((~held_out).sum()))
    assert (evaluation.test_users, evaluation.skipped_users, evaluation.repeat_only_users) == (20, 3, 0)
    assert (evaluation.dataset, evaluation.protocol, evaluation.seed) == ("dataset", "personalize", 7)


def test_fit_and_scoring_are_timed() -> None:
    class SlowModel(PopularityModel):
        name = "slow"

        def fit(self, interactions: sparse.csr_matrix) -> None:
            time.sleep(0.05)
            super().fit(interactions)

        def score(self, histories: sparse.csr_matrix) -> np.ndarray:
            time.sleep(0.03)
            return super().score(histories)

    result = evaluate(generated_interactions(100, 50), [SlowModel], "leave-last-out", seed=0).result("slow")
    assert 0.05 <= result.fit_seconds < 1.0
    assert 0.03 <= result.score_seconds < 1.0


def test_batches_of_users_give_the_same_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = generated_interactions(300, 120, seed=5)
    whole = evaluate(frame, [CooccurrenceModel], "leave-last-out", seed=0).results[0].metrics
    monkeypatch.setattr(runner, "_BATCH_CELLS", 7 * 120)  # 7 users a batch
    batched = evaluate(frame, [CooccurrenceModel], "leave-last-out", seed=0).results[0].metrics
    assert batched == pytest.approx(whole)


# Report


def test_the_report_writes_a_table_json_and_a_chart(tmp_path: Path) -> None:
    frame = generated_interactions(200, 80, seed=6)
    evaluation = evaluate(frame, [PopularityModel, CooccurrenceModel], "personalize", seed=0, name="shop")
    files = write_report(evaluation, tmp_path / "reports")

    assert [path.name for path in (files.table, files.json, files.chart)] == [
        "shop-personalize.txt",
        "shop-personalize.json",
        "shop-personalize.png",
    ]
    text = files.table.read_text()
    assert text == table_text(evaluation)
    assert "popularity" in text and "cooccurrence" in text and "NDCG@10" in text
    data = json.loads(files.json.read_text())
    assert (data["dataset"], data["protocol"], data["test_users"]) == ("shop", "personalize", 20)
    assert [row["model"] for row in data["results"]] == ["popularity", "cooccurrence"]
    for row, result in zip(data["results"], evaluation.results, strict=True):
        assert row["metrics"] == pytest.approx(result.metrics)
        assert set(row["metrics"]) == set(METRICS)
    assert files.chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert files.chart.stat().st_size > 10_000


# MovieLens-100K


def test_movielens_reads_the_cached_wheel() -> None:
    if not (CACHE / WHEEL).exists():
        pytest.skip(f"no {CACHE / WHEEL}, and tests never download: pip download --no-deps recbole==1.2.1")
    frame = movielens_100k(CACHE, download=False)
    assert (len(frame), frame["user"].nunique(), frame["item"].nunique()) == (100_000, 943, 1_682)
    assert (frame["weight"] == 1.0).all()
    assert frame["timestamp"].dtype == np.int64 and frame["timestamp"].min() > 870_000_000


def test_movielens_without_its_wheel_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(EngageError, match="pip download --no-deps recbole==1.2.1"):
        movielens_100k(tmp_path, download=False)
    (tmp_path / WHEEL).write_bytes(b"not a zip")
    with pytest.raises(EngageError, match="delete the file and run again"):
        movielens_100k(tmp_path)


def test_a_failed_download_is_an_engage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no extra index or find-links from a pip.conf
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens on the discard port
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    with pytest.raises(EngageError, match="could not download recbole==1.2.1.*pip download"):
        movielens_100k(tmp_path / "cache")
