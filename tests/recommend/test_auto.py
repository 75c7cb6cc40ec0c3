"""engage's default model, `auto`, on small generated data: its choice by validation on the matrix it is
fitted on, what it records of that choice, and that it is a `Model` like the others (scores any history,
pickles)."""

from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from engage.recommend.evaluation import evaluate, generated_interactions, interaction_matrix
from engage.recommend.models import Model, auto
from engage.recommend.models.als import Als
from engage.recommend.models.auto import Auto, Blend
from engage.recommend.models.ease import Ease
from engage.recommend.models.popularity import Popularity
from engage.recommend.models.recency import Histories

FAMILIES = {"popularity", "itemknn", "ease", "als", "blend"}


def matrix(users: int = 300, items: int = 120, seed: int = 0) -> sparse.csr_matrix:
    frame = generated_interactions(users, items, seed=seed)
    return interaction_matrix(frame, pd.Index(range(users)), pd.Index(range(items)))


@pytest.fixture(scope="module")
def fitted() -> tuple[Auto, sparse.csr_matrix]:
    interactions = matrix()
    model = Auto(seed=3)
    model.fit(interactions)
    return model, interactions


def test_the_choice_is_the_best_validated_candidate_of_every_family(
    fitted: tuple[Auto, sparse.csr_matrix],
) -> None:
    model, _ = fitted
    choice = model.choice
    candidates = choice["candidates"]
    assert {candidate["model"] for candidate in candidates} == FAMILIES
    assert all(0.0 <= candidate["ndcg_at_10"] <= 1.0 for candidate in candidates)
    assert all(candidate["seconds"] >= 0.0 for candidate in candidates)
    best = max(candidates, key=lambda candidate: candidate["ndcg_at_10"])
    assert (choice["model"], choice["params"]) == (best["model"], best["params"])
    assert (choice["reason"], choice["seed"], choice["metric"]) == (
        "validation",
        3,
        "normalized_discounted_cumulative_gain_at_10",
    )
    assert choice["validation"]["folds"] >= 2 and choice["validation"]["users"] >= 50
    assert model.chosen.name == choice["model"]
    assert json.loads(json.dumps(choice)) == choice, "a manifest can record it as it is"
    popularity = next(c["ndcg_at_10"] for c in candidates if c["model"] == "popularity")
    assert best["ndcg_at_10"] > 1.3 * popularity, "generated users follow their categories: learnable"


def validated(model: Auto) -> list[tuple[str, dict[str, Any], float]]:
    return [(c["model"], c["params"], c["ndcg_at_10"]) for c in model.choice["candidates"]]


def test_a_fit_is_deterministic_for_its_seed(fitted: tuple[Auto, sparse.csr_matrix]) -> None:
    model, interactions = fitted
    again = Auto(seed=3)
    again.fit(interactions)
    assert validated(again) == validated(model)
    histories = interactions[:20]
    np.testing.assert_array_equal(again.score(histories), model.score(histories))

    other = Auto(seed=4)
    other.fit(interactions)
    assert validated(other) != validated(model), "the seed draws the validation users"


def test_it_scores_any_history_as_a_model(fitted: tuple[Auto, sparse.csr_matrix]) -> None:
    model, interactions = fitted
    assert isinstance(model, Model)
    items = interactions.shape[1]
    histories = sparse.csr_matrix(
        ([1.0, 2.0, 1.0], ([0, 0, 0], [3, 17, 40])), shape=(2, items), dtype=np.float32
    )
    scores = model.score(histories)  # a history never seen in training, and an empty one
    assert scores.shape == (2, items)
    assert np.isfinite(scores).all()
    assert scores[0].std() > 0, "a history is personalized"


def test_it_pickles_with_what_it_chose(fitted: tuple[Auto, sparse.csr_matrix]) -> None:
    model, interactions = fitted
    loaded = pickle.loads(pickle.dumps(model))
    assert loaded.choice == model.choice
    np.testing.assert_array_equal(loaded.score(interactions[:50]), model.score(interactions[:50]))


def test_too_little_data_is_served_by_popularity_unvalidated() -> None:
    interactions = matrix()
    few_interactions = interactions[: np.searchsorted(np.cumsum(np.diff(interactions.indptr)), 900)]
    few_users = sparse.csr_matrix(np.ones((24, 100), dtype=np.float32))
    for interactions in (few_interactions, few_users):
        model = Auto()
        model.fit(interactions)
        assert isinstance(model.chosen, Popularity)
        assert (model.choice["model"], model.choice["reason"]) == ("popularity", "too little data")
        assert model.choice["candidates"] == [] and model.choice["validation"] is None
        counts = np.asarray((interactions > 0).sum(axis=0)).ravel()
        np.testing.assert_array_equal(model.score(interactions[:2])[1], counts)


def test_too_few_users_to_validate_on_are_served_by_ease_unvalidated() -> None:
    pairs = [(user, (user * 7 + step) % 300) for user in range(600) for step in range(2)]
    pairs += [(600 + user, step) for user in range(5) for step in range(10)]
    rows, columns = zip(*pairs, strict=True)
    interactions = sparse.csr_matrix((np.ones(len(pairs), np.float32), (rows, columns)), shape=(605, 300))
    model = Auto()
    model.fit(interactions)
    assert (model.choice["model"], model.choice["reason"]) == ("ease", "too few users to validate")
    assert model.choice["params"] == {"regularization": 500.0} and model.choice["candidates"] == []


def test_validation_holds_out_users_of_the_matrix_and_hides_part_of_their_items() -> None:
    interactions = matrix()
    popularity = np.asarray((interactions > 0).sum(axis=0)).ravel()
    folds = Auto(seed=1)._folds(Histories.unordered(interactions), ordered=False)
    assert 2 <= len(folds) <= auto.MAX_FOLDS
    held_out: list[np.ndarray] = []
    hidden_popularity: list[np.ndarray] = []
    kept_popularity: list[np.ndarray] = []
    for fold in folds:
        assert fold.histories.matrix.shape == fold.targets.shape == (fold.users.size, interactions.shape[1])
        assert fold.train.shape == (interactions.shape[0] - fold.users.size, interactions.shape[1])
        # Each held-out user is a row of the matrix, split between history and targets, and out of training.
        rows = interactions[fold.users]
        assert (fold.histories.matrix + fold.targets != rows).nnz == 0
        assert fold.histories.matrix.multiply(fold.targets).nnz == 0
        sizes, hidden = np.diff(rows.indptr), np.diff(fold.targets.indptr)
        assert (sizes >= auto.MIN_VALIDATION_INTERACTIONS).all()
        assert (hidden == np.maximum(1, np.round(auto.VALIDATION_TARGETS * sizes))).all()
        kept = np.setdiff1d(np.arange(interactions.shape[0]), fold.users)
        assert (fold.train != interactions[kept]).nnz == 0
        held_out.append(fold.users)
        hidden_popularity.append(popularity[fold.targets.indices])
        kept_popularity.append(popularity[fold.histories.matrix.indices])
    everyone = np.concatenate(held_out)
    assert np.unique(everyone).size == everyone.size, "folds hold out different users"
    assert np.concatenate(hidden_popularity).mean() < 0.8 * np.concatenate(kept_popularity).mean()


def drifting(users: int = 300, sessions: int = 4, per_session: int = 6, seed: int = 0) -> pd.DataFrame:
    """Shoppers whose interest moves: each session in one of 12 categories of 10 items (the lower numbers
    more popular), the next session in another; what a shopper does next is in their latest category."""
    rng = np.random.default_rng(seed)
    chances = 1.0 / np.arange(1, 11)
    rows = []
    for user in range(users):
        for session, category in enumerate(rng.choice(12, sessions, replace=False)):
            picks = rng.choice(10, per_session, replace=False, p=chances / chances.sum())
            rows += [
                (user, 10 * category + pick, session * per_session + step) for step, pick in enumerate(picks)
            ]
    frame = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    return frame.assign(weight=1.0)


def in_order(frame: pd.DataFrame) -> Histories:
    frame = frame.sort_values(["user", "timestamp"], kind="stable")
    shape = (int(frame["user"].max()) + 1, int(frame["item"].max()) + 1)
    return Histories.in_order(
        frame["user"].to_numpy(), frame["item"].to_numpy(), frame["weight"].to_numpy(), shape
    )


def test_in_order_the_newest_items_are_hidden_and_the_rest_keeps_its_recency() -> None:
    histories = in_order(drifting())
    for fold in Auto(seed=2)._folds(histories, ordered=True):
        whole = histories.take(fold.users)
        hidden = np.diff(fold.targets.indptr)
        assert (
            hidden == np.maximum(1, np.round(auto.VALIDATION_TARGETS * np.diff(whole.matrix.indptr)))
        ).all()
        for row in range(fold.users.size):
            start, end = whole.matrix.indptr[row], whole.matrix.indptr[row + 1]
            newest = set(whole.matrix.indices[start:end][whole.recency[start:end] < hidden[row]].tolist())
            assert set(fold.targets[row].indices.tolist()) == newest
            kept = fold.histories.recency[
                fold.histories.matrix.indptr[row] : fold.histories.matrix.indptr[row + 1]
            ]
            assert sorted(kept.tolist()) == list(range(len(kept))), "counted from the newest item kept"


def test_when_interests_move_auto_weighs_recency_and_beats_models_that_do_not() -> None:
    model = Auto()
    model.fit_in_order(in_order(drifting()))
    half_lives = model.choice["validation"]["half_lives"]
    assert [entry["half_life"] for entry in half_lives] == list(auto.HALF_LIVES)
    assert model.half_life is not None and model.choice["half_life"] == model.half_life
    assert {c["half_life"] for c in model.choice["candidates"]} == {model.half_life}

    evaluation = evaluate(drifting(seed=1), [Als, Ease, Auto], "personalize", seed=0)
    ndcg = "normalized_discounted_cumulative_gain_at_10"
    best_plain = max(evaluation.result(name).metrics[ndcg] for name in ("als", "ease"))
    assert evaluation.result("auto").metrics[ndcg] > 1.5 * best_plain


def test_large_data_is_validated_on_one_fold_and_a_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    interactions = matrix()
    monkeypatch.setattr(auto, "FOLD_WORK", interactions.nnz)
    monkeypatch.setattr(auto, "TRAIN_SAMPLE", interactions.nnz // 4)
    (fold,) = Auto()._folds(Histories.unordered(interactions), ordered=False)
    assert 0.15 < fold.scale < 0.35
    assert fold.train.nnz == pytest.approx(fold.scale * interactions.nnz)


def test_no_ease_beyond_its_catalog_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auto, "MAX_ITEMS", 100)
    model = Auto()
    model.fit(matrix(users=200, items=120))
    families = {candidate["model"] for candidate in model.choice["candidates"]}
    assert "ease" not in families and "als" in families
    assert "ease" not in repr(model.choice["params"])


def test_a_blend_adds_standardized_scores() -> None:
    interactions = matrix(users=100, items=50)
    blend = Blend([(Popularity(), 0.25), (Popularity(), 0.75)])
    blend.fit(interactions)
    scores = blend.score(interactions[:3])
    counts = np.asarray((interactions > 0).sum(axis=0), dtype=np.float64).ravel()
    np.testing.assert_allclose(scores[0], (counts - counts.mean()) / counts.std(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        blend.score(sparse.csr_matrix((1, 50), dtype=np.float32)), scores[:1], rtol=1e-5
    )


def test_it_beats_popularity_in_an_evaluation() -> None:
    frame = generated_interactions(400, 150, seed=5)
    evaluation = evaluate(frame, [Popularity, Auto], "personalize", seed=0)
    ndcg = "normalized_discounted_cumulative_gain_at_10"
    assert evaluation.result("auto").metrics[ndcg] > 1.3 * evaluation.result("popularity").metrics[ndcg]


def test_remembered_training_rows_score_as_their_histories_would() -> None:
    data = matrix()
    als = Als(factors=16, iterations=5)
    blend = Blend([(als, 0.5), (Ease(), 0.5)])
    blend.fit(data)
    blend.remember(data)
    rows = data[[3, 7, 11]].tocsr()
    known = np.array([3, -1, 11])  # the second is scored from its history, as for a changed shopper
    np.testing.assert_allclose(blend.score_known(rows, known), blend.score(rows), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(als.score_known(rows, known), als.score(rows), rtol=1e-4, atol=1e-4)
