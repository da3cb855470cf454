"""What the two-stage model adds beyond the contract: candidate accounting, features, MMR."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recstack.errors import ConfigError
from recstack.models.ranking.candidates import candidate_recall
from recstack.models.ranking.features import SHARE_PRIOR, feature_names
from recstack.testing.contract import holdout_split
from recstack.testing.data import planted_dataset

pytest.importorskip("lightgbm")

from recstack.models.ranking.two_stage import TwoStageRecommender  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return holdout_split(planted_dataset())


@pytest.fixture(scope="module")
def fitted(data):
    train, _ = data
    return TwoStageRecommender(retrievers="ease,itemknn", candidates=20, rounds=30, folds=1).fit(
        train
    )


def test_candidate_recall_counts_positives_no_retriever_proposed(fitted, data):
    train, test = data
    users = np.arange(train.n_users)
    cands = fitted.candidates(train.matrix, users)
    recall = candidate_recall(cands, test.matrix, fitted.retriever_names)
    assert recall.positives == test.matrix.nnz
    assert recall.found + recall.missed == recall.positives
    assert 0 < recall.found < recall.positives  # 20 candidates per retriever miss some
    assert max(recall.per_retriever.values()) <= recall.found
    summary = fitted.report["candidate_recall"]
    assert summary["found"] + summary["missed"] == summary["positives"] > 0


def test_a_user_no_retriever_knows_gets_no_filler_candidates_but_popularity(fitted, data):
    train, _ = data
    empty = sp.csr_matrix((1, train.n_items), dtype=np.float32)
    cands = fitted.candidates(empty, np.array([-1]))
    assert len(cands.items) == 0  # every item at each retriever's floor: nothing proposed
    idx, _ = fitted.recommend(empty, 10, users=np.array([-1]))
    popularity = np.asarray(fitted.space.item_dense[:, 0])
    assert np.all(np.diff(popularity[idx[0]]) <= 0)  # the popularity order two_stage falls to
    assert popularity[idx[0][0]] == popularity.max()


def test_feature_rows_match_names_and_react_to_history(fitted, data):
    train, _ = data
    items = np.arange(10)
    h = train.matrix[:1]
    idx, features = fitted.rank_features(h, np.array([0]), items)
    assert idx.tolist() == items.tolist()
    assert features.shape == (10, len(fitted.feature_names))
    assert fitted.feature_names == feature_names(["ease", "itemknn"], 1, [], standardised=True)
    longer = h.copy().tolil()
    unseen = [i for i in range(train.n_items) if h[0, i] == 0][:3]
    for i in unseen:
        longer[0, i] = 1.0
    _, after = fitted.rank_features(sp.csr_matrix(longer), np.array([0]), items)
    col = fitted.feature_names.index("user_activity")
    assert (after[:, col] > features[:, col]).all()


def test_contributions_name_features(fitted, data):
    train, _ = data
    contrib = fitted.contributions(train.matrix[:1], np.array([0]), [1, 2, 3], top=2)
    assert set(contrib) == {1, 2, 3}
    for pairs in contrib.values():
        assert len(pairs) == 2 and all(
            name.removeprefix("anchor:") in fitted.feature_names for name, _ in pairs
        )


def test_diversity_spreads_the_top_list_over_clusters(data):
    train, _ = data
    genres = [g[0] for g in train.item_attribute("genres")]
    base = dict(retrievers="ease", candidates=30, rounds=20, folds=1)
    plain = TwoStageRecommender(**base).fit(train)
    diverse = TwoStageRecommender(**base, diversity=0.8).fit(train)
    users = np.arange(40)
    a, _ = plain.recommend(train.matrix[users], 10, users=users)
    b, _ = diverse.recommend(train.matrix[users], 10, users=users)
    distinct = [len({genres[i] for i in row}) for row in a]
    distinct_mmr = [len({genres[i] for i in row}) for row in b]
    assert np.mean(distinct_mmr) > np.mean(distinct)


def test_bad_retrievers_and_params_are_config_errors():
    with pytest.raises(ConfigError, match="retrievers"):
        TwoStageRecommender(retrievers="als,nope")
    with pytest.raises(ConfigError, match="retrievers"):
        TwoStageRecommender(retrievers="two_stage")
    with pytest.raises(ConfigError, match="retriever_params"):
        TwoStageRecommender(retriever_params="[1, 2]")


def test_standardised_scores_cover_candidates_a_retriever_did_not_propose(data):
    train, _ = data
    model = TwoStageRecommender(
        retrievers="ease,itemknn", candidates=5, rounds=10, folds=1, standardised_scores=True
    ).fit(train)
    users = np.arange(20)
    h = train.matrix[users]
    cands = model.candidates(h, users)
    assert cands.z is not None and cands.z.shape == cands.present.shape
    absent = ~cands.present[:, 1]
    assert absent.any()  # ease proposed items itemknn did not
    raw = np.array(model.retrievers[1].score(h, users), dtype=np.float64)
    for r in range(h.shape[0]):
        raw[r, h[r].indices] = np.nan
    mean, std = np.nanmean(raw, axis=1), np.nanstd(raw, axis=1)
    expected = (raw[cands.rows, cands.items] - mean[cands.rows]) / std[cands.rows]
    np.testing.assert_allclose(cands.z[:, 1], expected, rtol=1e-4, atol=1e-4)
    names = model.feature_names
    assert names[names.index("n_retrievers") + 1 : names.index("n_retrievers") + 3] == [
        "ease_z",
        "itemknn_z",
    ]
    # the features of exactly requested items carry the same standardised scores
    row = int(cands.rows[absent][0])
    item = int(cands.items[absent][0])
    idx, features = model.rank_features(h[row], users[row : row + 1], [item])
    assert idx.tolist() == [item]
    want = cands.z[(cands.rows == row) & (cands.items == item)][0]
    np.testing.assert_allclose(features[0, names.index("ease_z")], want[0], rtol=1e-5)


def test_early_stopping_picks_fewer_rounds_on_validation_users(data):
    train, _ = data
    model = TwoStageRecommender(
        retrievers="ease,itemknn", candidates=20, rounds=400, folds=2, early_stopping=5
    ).fit(train)
    assert all(1 <= trees < 400 for trees in model.report["rounds"])
    assert model.report["training_lists"] > 0


def test_global_split_trains_on_one_time_cut(data):
    from recstack.models.ranking.training import fold_lists

    train, _ = data
    model = TwoStageRecommender(retrievers="ease", candidates=20, split="global", folds=3)
    lists = fold_lists(
        train,
        model._new_retrievers,
        ["ease"],
        depth=20,
        share=0.2,
        folds=3,
        split="global",
        seed=0,
        half_life_days=30.0,
        context_features=False,
        n_context=0,
    )
    assert len(lists.groups) == 1  # one time cut, not one per fold
    _, labels, groups = lists.stacked()
    assert labels.sum() > 0 and len(lists.group_users()) == len(groups)
    fitted = model.fit(train)
    assert fitted.report["training_lists"] == len(groups)


def test_artifact_saved_without_standardised_scores_still_loads_and_scores(data, tmp_path):
    import json

    from recstack.models.base import Recommender

    train, _ = data
    old = TwoStageRecommender(
        retrievers="ease,itemknn", candidates=20, rounds=20, folds=1, standardised_scores=False
    ).fit(train)
    old.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    del manifest["params"]["standardised_scores"]  # as written before the option existed
    (tmp_path / "m" / "model.json").write_text(json.dumps(manifest))
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.config.standardised_scores is False
    users = np.arange(5)
    np.testing.assert_allclose(
        loaded.score(train.matrix[users], users), old.score(train.matrix[users], users), rtol=1e-5
    )


def test_max_users_bounds_the_training_lists_of_each_fold(data):
    train, _ = data
    full = TwoStageRecommender(retrievers="itemknn", candidates=20, folds=2, rounds=5).fit(train)
    capped = TwoStageRecommender(
        retrievers="itemknn", candidates=20, folds=2, rounds=5, max_users=15, min_data_in_leaf=5
    ).fit(train)
    assert full.report["training_lists"] > 30
    assert 0 < capped.report["training_lists"] <= 2 * 15
    assert (
        capped.report["candidate_recall"]["positives"]
        < full.report["candidate_recall"]["positives"]
    )


def test_bags_average_boosters_trained_on_lists_of_their_own_seeds(data):
    """Bag b learns from fold seeds after the previous bags' (with one fold: seed + b), so a
    bag of two equals the mean of the single-booster models of seeds 0 and 1."""
    train, _ = data
    base = dict(retrievers="ease,itemknn", candidates=20, rounds=20, folds=1)
    bagged = TwoStageRecommender(bags=2, **base).fit(train)
    singles = [TwoStageRecommender(bags=1, seed=s, **base).fit(train) for s in (0, 1)]
    assert bagged.report["bags"] == 2 and bagged.report["rounds"] == [20, 20]
    assert bagged.booster.num_trees() == 40
    _, features = bagged.rank_features(train.matrix[[3]], np.array([3]), np.arange(40))
    raw = [m.booster.predict(features, raw_score=True) for m in singles]
    assert not np.allclose(raw[0], raw[1])  # the two bags learnt different boosters
    np.testing.assert_allclose(
        bagged.booster.predict(features, raw_score=True), np.mean(raw, axis=0), atol=1e-9
    )


def test_unset_bags_follow_the_training_lists(fitted):
    """A few hundred users give a noisy booster: three are averaged when ``bags`` is unset."""
    from recstack.models.ranking.two_stage import auto_bags

    assert fitted.config.bags is None
    assert fitted.report["bags"] == auto_bags(fitted.report["training_lists"]) == 3
    assert len(fitted.report["rounds"]) == 3 and fitted.booster.num_trees() == 90


def test_topic_keys_become_history_and_item_shares_that_follow_the_history():
    from recstack.data.dataset import Dataset
    from recstack.testing.data import planted_frame

    inter, items = planted_frame()
    items["attributes"] = [{"topic": f"t{i % 4}", "level": f"l{i % 3}"} for i in range(len(items))]
    train, _ = holdout_split(Dataset.from_frame(inter, items=items))
    model = TwoStageRecommender(retrievers="itemknn", candidates=20, rounds=10, folds=1).fit(train)
    names = model.feature_names
    # level, topic, and their joint value (12 shelves)
    assert names == feature_names(["itemknn"], 0, [], standardised=True, n_keys=3)
    assert len(np.unique(np.asarray(model.space.key_codes)[:, 2])) == 12
    topic = np.asarray(model.space.key_codes)[:, 1]  # keys by name: level, then topic
    item_share = np.asarray(model.space.key_popularity)[:, 1]
    for value in np.unique(topic):  # an item's share of its topic's events: each topic sums to 1
        assert item_share[topic == value].sum() == pytest.approx(1.0, rel=1e-5)
    h = train.matrix[:1]
    seen = set(h.indices.tolist())
    pick = next(i for i in range(train.n_items) if i not in seen)
    same = [
        i for i in range(train.n_items) if topic[i] == topic[pick] and i != pick and i not in seen
    ]
    other = [i for i in range(train.n_items) if topic[i] != topic[pick] and i not in seen]
    cands = np.array(same[:3] + other[:3])
    col = names.index("key1_history_share")
    idx, before = model.rank_features(h, np.array([0]), cands)
    assert idx.tolist() == sorted(cands.tolist())  # rows follow the item index
    is_same = np.isin(idx, same[:3])
    longer = h.copy().tolil()
    longer[0, pick] = 1.0
    _, after = model.rank_features(sp.csr_matrix(longer), np.array([0]), cands)
    n = h.nnz + SHARE_PRIOR  # (same + prior / values) / (history + prior)
    grown, shrunk = after[is_same, col], after[~is_same, col]
    np.testing.assert_allclose(grown, (before[is_same, col] * n + 1) / (n + 1), rtol=1e-5)
    np.testing.assert_allclose(shrunk, before[~is_same, col] * n / (n + 1), rtol=1e-5)


def test_artifact_saved_before_attribute_keys_still_loads_and_scores(fitted, data, tmp_path):
    import json

    from recstack.models.base import Recommender

    train, _ = data
    fitted.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    manifest["arrays"] = [a for a in manifest["arrays"] if "key_" not in a]  # as written before
    (tmp_path / "m" / "model.json").write_text(json.dumps(manifest))
    loaded = Recommender.load(tmp_path / "m")
    assert np.asarray(loaded.space.key_codes).shape == (train.n_items, 0)
    users = np.arange(5)
    np.testing.assert_allclose(
        loaded.score(train.matrix[users], users),
        fitted.score(train.matrix[users], users),
        rtol=1e-5,
    )


def test_lists_cut_from_candidates_equal_the_dense_rows(fitted, data):
    """``recommend`` answers from the candidates when each row has k eligible ones; the
    lists must equal the top of the dense scores under every mask, and a row short of
    candidates falls back to the dense rows (popularity fill)."""
    from recstack.models.base import masked_top

    train, _ = data
    users = np.arange(train.n_users)
    h = train.matrix
    rng = np.random.default_rng(0)
    mask = rng.random(train.n_items) < 0.6
    per_row = rng.random((train.n_users, train.n_items)) < 0.7
    exclude = sp.csr_matrix(rng.random((train.n_users, train.n_items)) < 0.1)
    for k, kwargs in [
        (10, {}),
        (10, {"item_mask": mask}),
        (5, {"item_mask": per_row, "exclude": exclude}),
        (10, {"exclude_seen": False}),
        (60, {"item_mask": mask}),  # beyond the candidates: the dense fallback
    ]:
        got = fitted.recommend(h, k, users=users, **kwargs)
        dense = masked_top(
            np.array(fitted.score(h, users), dtype=np.float32),
            h,
            k,
            exclude_seen=kwargs.get("exclude_seen", True),
            exclude=kwargs.get("exclude"),
            mask=kwargs.get("item_mask"),
        )
        np.testing.assert_array_equal(got[0], dense[0])
        np.testing.assert_array_equal(got[1], dense[1])
    cands = fitted.candidates(h, users)
    proposed = set(zip(cands.rows.tolist(), cands.items.tolist(), strict=True))
    listed = [(r, int(i)) for r, row in enumerate(got[0]) for i in row if i >= 0]
    assert any(pair not in proposed for pair in listed)  # k = 60: filled past the candidates
