"""The PDQ matching benchmark's yardstick: its planted neighbours and its recall count."""

from __future__ import annotations

import numpy as np

from scripts.bench_match import PLANTED, RADIUS, HashbankEngine, make_data, score


def test_each_query_has_a_planted_neighbour_at_every_distance() -> None:
    vectors, queries, planted = make_data(500, 7, seed=1)
    assert vectors.shape == (500 + 7 * len(PLANTED), 32)
    assert len(set(planted.ravel().tolist())) == planted.size
    for i, q in enumerate(queries):
        distances = np.unpackbits(vectors[planted[i]] ^ q, axis=1).sum(axis=1)
        assert distances.tolist() == list(PLANTED)


def test_the_planted_neighbours_are_shuffled_among_the_random_hashes() -> None:
    _, _, planted = make_data(500, 7, seed=2)
    assert planted.min() < 500


def test_exact_answers_score_full_recall_and_nothing_wrong() -> None:
    vectors, queries, planted = make_data(2000, 5, seed=3)
    engine = HashbankEngine()
    engine.build(vectors)
    results = engine.query_many(queries, [])
    assert score(results, vectors, queries, planted) == (5 * (RADIUS + 1), 5 * (RADIUS + 1), 0)


def test_missing_too_far_and_misdistanced_answers_are_counted() -> None:
    vectors, queries, planted = make_data(100, 1, seed=4)
    exact = [(int(planted[0, d]), d) for d in range(RADIUS + 1)]
    answers = exact[1:]  # the neighbour at distance 0 is missing
    answers.append((int(planted[0, 32]), 32))  # beyond the radius
    answers[-2] = (answers[-2][0], 30)  # the one at 31 with a wrong distance
    found, within, wrong = score([answers], vectors, queries, planted)
    assert (found, within, wrong) == (RADIUS - 1, RADIUS + 1, 2)
