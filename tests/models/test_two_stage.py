"""What the two-stage model adds beyond the contract: candidate accounting, features, MMR."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recstack.errors import ConfigError
from recstack.models.ranking.candidates import candidate_recall
from recstack.models.ranking.features import feature_names
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


def test_feature_rows_match_names_and_react_to_history(fitted, data):
    train, _ = data
    items = np.arange(10)
    h = train.matrix[:1]
    idx, features = fitted.rank_features(h, np.array([0]), items)
    assert idx.tolist() == items.tolist()
    assert features.shape == (10, len(fitted.feature_names))
    assert fitted.feature_names == feature_names(["ease", "itemknn"], 1, [])
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
