"""Tests for hashbank.pdq_index (pure: no Django, no database).

Every search is checked against a brute-force scan of the same hashes. Run on their own, with
no Django loaded, with ``pytest -p no:django --noconftest tests/hashbank/test_pdq_index.py``
(pytest-django would load the settings, and the shared tests/conftest.py imports Django).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashbank import pdq_index
from hashbank.pdq_index import DEFAULT_RADIUS, PDQIndex, vectors_from_hex

REPO = Path(__file__).resolve().parents[2]
Vectors = npt.NDArray[np.uint8]
PLANTED = 71  # neighbours planted at distances 0..70, across every radius the probing treats apart
Expected = list[tuple[int, int]]


def random_vectors(rng: np.random.Generator, n: int) -> Vectors:
    return rng.integers(0, 256, (n, 32), dtype=np.uint8)


def at_distance(rng: np.random.Generator, vector: Vectors, d: int) -> Vectors:
    """A copy of ``vector`` with exactly ``d`` bits flipped."""
    bits = np.unpackbits(vector)
    bits[rng.choice(256, size=d, replace=False)] ^= 1
    return np.packbits(bits)


def brute_force(vectors: Vectors, ids: list[int], query: Vectors, radius: int) -> Expected:
    if len(vectors) == 0:
        return []
    d = np.unpackbits(vectors ^ query, axis=1).sum(axis=1)
    hits = [(ids[i], int(d[i])) for i in np.flatnonzero(d <= radius)]
    return sorted(hits, key=lambda m: (m[1], m[0]))


@pytest.fixture(scope="module")
def planted() -> tuple[Vectors, list[int], Vectors]:
    """5,000 random hashes, and 6 queries each with a neighbour at every distance 0..70."""
    rng = np.random.default_rng(14)
    queries = random_vectors(rng, 6)
    near = [at_distance(rng, q, d) for q in queries for d in range(PLANTED)]
    vectors = np.concatenate([random_vectors(rng, 5000), np.array(near)])
    ids = rng.permutation(10 * len(vectors))[: len(vectors)].tolist()
    return vectors, ids, queries


# Both sides of each point where the probing changes: a word within r // 8 bits, one of its
# halves within r // 16 bits, and the full scan from 64 on.
RADII = [0, 1, 7, 8, 15, 16, 17, 23, 24, 31, 32, 33, 47, 48, 63, 64, 65, 100, 256]


@pytest.mark.parametrize("radius", RADII)
def test_it_finds_exactly_the_hashes_within_the_radius(
    planted: tuple[Vectors, list[int], Vectors], radius: int
) -> None:
    vectors, ids, queries = planted
    index = PDQIndex(vectors, ids)
    for q in queries:
        assert index.query(q, radius) == brute_force(vectors, ids, q, radius)


def test_it_finds_the_planted_neighbour_at_every_distance_up_to_the_radius(
    planted: tuple[Vectors, list[int], Vectors],
) -> None:
    vectors, ids, queries = planted
    index = PDQIndex(vectors, ids)
    for k, q in enumerate(queries):
        planted_ids = {ids[5000 + PLANTED * k + d]: d for d in range(PLANTED)}
        found = {i: d for i, d in index.query(q) if i in planted_ids}
        assert found == {i: d for i, d in planted_ids.items() if d <= DEFAULT_RADIUS}


def test_query_many_answers_as_query_does(planted: tuple[Vectors, list[int], Vectors]) -> None:
    vectors, ids, queries = planted
    index = PDQIndex(vectors, ids)
    many = np.concatenate(
        [queries, vectors[5000:5100], random_vectors(np.random.default_rng(1), 40)]
    )
    for radius in (31, 8, 70):
        assert index.query_many(many, radius) == [index.query(q, radius) for q in many]


def test_query_many_with_more_queries_than_one_batch() -> None:
    rng = np.random.default_rng(2)
    vectors = random_vectors(rng, 300)
    queries = np.concatenate(
        [at_distance(rng, vectors[i % 300], i % 40)[None] for i in range(2100)]
    )
    index = PDQIndex(vectors, range(300))
    ids = list(range(300))
    assert index.query_many(queries) == [brute_force(vectors, ids, q, 31) for q in queries]


def test_it_finds_exactly_the_hashes_within_the_radius_in_clustered_data() -> None:
    """Real hashes are not uniform: families of near-duplicates fill the same buckets."""
    rng = np.random.default_rng(3)
    centres = random_vectors(rng, 20)
    vectors = np.array(
        [at_distance(rng, centres[i % 20], int(rng.integers(0, 60))) for i in range(3000)]
    )
    ids = list(range(3000))
    index = PDQIndex(vectors, ids)
    queries = np.concatenate([centres, vectors[:30]])
    for radius in (0, 16, 31, 40):
        expected = [brute_force(vectors, ids, q, radius) for q in queries]
        assert index.query_many(queries, radius) == expected


def test_a_batch_over_crowded_buckets_is_exact() -> None:
    """Near-duplicates of one image crowd the same buckets: a batch reads ~10^5 entries,
    and the queries share most of their matches."""
    rng = np.random.default_rng(16)
    centre = random_vectors(rng, 1)[0]
    spread = rng.integers(0, 48, size=4000)
    vectors = np.array([at_distance(rng, centre, int(d)) for d in spread])
    queries = np.array([at_distance(rng, centre, d) for d in range(0, 40, 2)])
    ids = list(range(4000))
    index = PDQIndex(vectors, ids)
    expected = [brute_force(vectors, ids, q, 31) for q in queries]
    assert index.query_many(queries) == expected


@pytest.mark.parametrize("block", [1, 7, 100])
def test_reading_bucket_entries_in_small_blocks_changes_nothing(
    planted: tuple[Vectors, list[int], Vectors], monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    vectors, ids, queries = planted
    index = PDQIndex(vectors, ids)
    expected = [brute_force(vectors, ids, q, 31) for q in queries]
    monkeypatch.setattr(pdq_index, "_ENTRY_BLOCK", block)
    assert index.query_many(queries) == expected


@pytest.mark.parametrize("n", [0, 5, 8191, 8192, 8197, 40_003])
@pytest.mark.parametrize("share", [0.0, 0.01, 0.09, 0.3, 1.0])
def test_wordwise_nonzero_finds_what_numpy_finds(n: int, share: float) -> None:
    mask = np.random.default_rng(n).random(n) < share
    found = pdq_index._flatnonzero(mask)
    assert found.tolist() == np.flatnonzero(mask).tolist()


def test_results_are_sorted_by_distance_then_id() -> None:
    rng = np.random.default_rng(4)
    q = random_vectors(rng, 1)[0]
    near = np.array([at_distance(rng, q, d) for d in (5, 3, 5, 0, 3)])
    index = PDQIndex(near, [50, 40, 30, 20, 10])
    assert index.query(q) == [(20, 0), (10, 3), (40, 3), (30, 5), (50, 5)]


def test_ids_come_back_as_python_ints() -> None:
    index = PDQIndex(np.zeros((1, 32), dtype=np.uint8), np.array([2**40], dtype=np.int64))
    [(id_, dist)] = index.query(np.zeros(32, dtype=np.uint8))
    assert (type(id_), type(dist)) == (int, int)
    assert id_ == 2**40


def test_an_empty_index_finds_nothing() -> None:
    for index in (PDQIndex(), PDQIndex(np.empty((0, 32), dtype=np.uint8), [])):
        q = random_vectors(np.random.default_rng(5), 3)
        assert len(index) == 0
        assert index.query(q[0]) == []
        assert index.query(q[0], 256) == []
        assert index.query_many(q) == [[], [], []]
        assert index.query_many(np.empty((0, 32), dtype=np.uint8)) == []


def test_an_index_emptied_by_removal_finds_nothing() -> None:
    vectors = random_vectors(np.random.default_rng(6), 10)
    index = PDQIndex(vectors, range(10))
    assert index.remove(range(10)) == 10
    assert len(index) == 0
    assert index.query(vectors[0]) == []


def test_added_hashes_are_found_at_once() -> None:
    rng = np.random.default_rng(7)
    vectors = random_vectors(rng, 1000)
    index = PDQIndex(vectors, range(1000))
    q = random_vectors(rng, 1)[0]
    index.add(np.array([at_distance(rng, q, 31), at_distance(rng, q, 32)]), [5000, 5001])
    assert len(index) == 1002
    assert index.query(q) == [(5000, 31)]
    assert 5000 in index


def test_many_adds_keep_every_result_exact() -> None:
    """Enough small adds to fold the pending hashes into the tables more than once."""
    rng = np.random.default_rng(8)
    queries = random_vectors(rng, 5)
    index = PDQIndex()
    held: dict[int, Vectors] = {}
    for batch in range(30):
        near = [at_distance(rng, queries[i % 5], int(rng.integers(0, 40))) for i in range(10)]
        vectors = np.concatenate([random_vectors(rng, 190), np.array(near)])
        ids = list(range(batch * 200, batch * 200 + 200))
        index.add(vectors, ids)
        held.update(zip(ids, vectors, strict=True))
    all_ids = list(held)
    all_vectors = np.array(list(held.values()))
    assert len(index) == 6000
    for q in queries:
        assert index.query(q) == brute_force(all_vectors, all_ids, q, 31)


def test_removed_hashes_are_never_found_again() -> None:
    rng = np.random.default_rng(9)
    q = random_vectors(rng, 1)[0]
    vectors = np.concatenate(
        [random_vectors(rng, 500), [at_distance(rng, q, d) for d in range(10)]]
    )
    index = PDQIndex(vectors, range(510))
    index.add(np.array([at_distance(rng, q, 12)]), [999])
    assert index.remove([500, 503, 999, 12345]) == 3
    assert [i for i, _ in index.query(q)] == [501, 502, 504, 505, 506, 507, 508, 509]
    assert len(index) == 508
    assert 500 not in index and 999 not in index


def test_many_removals_keep_every_result_exact() -> None:
    """Enough removals to rebuild the tables, mixed with adds, against a brute-force model."""
    rng = np.random.default_rng(10)
    queries = random_vectors(rng, 4)
    near = [at_distance(rng, queries[i % 4], i % 35) for i in range(400)]
    vectors = np.concatenate([random_vectors(rng, 9600), np.array(near)])
    held = dict(enumerate(vectors))
    index = PDQIndex(vectors, range(10_000))
    for step in range(12):
        gone = rng.choice(list(held), size=400, replace=False).tolist()
        assert index.remove(gone) == 400
        for i in gone:
            del held[i]
        new = [at_distance(rng, queries[step % 4], int(rng.integers(0, 35))) for _ in range(50)]
        new_ids = list(range(20_000 + 50 * step, 20_050 + 50 * step))
        index.add(np.array(new), new_ids)
        held.update(zip(new_ids, new, strict=True))
        assert len(index) == len(held)
        ids = list(held)
        assert index.query_many(queries) == [
            brute_force(np.array(list(held.values())), ids, q, 31) for q in queries
        ]


def test_a_removed_id_can_be_added_again_with_another_hash() -> None:
    rng = np.random.default_rng(11)
    a, b = random_vectors(rng, 2)
    index = PDQIndex(a[None], [7])
    index.remove([7])
    index.add(b[None], [7])
    assert index.query(a) == []
    assert index.query(b) == [(7, 0)]


def test_removing_what_is_not_held_changes_nothing() -> None:
    vectors = random_vectors(np.random.default_rng(12), 3)
    index = PDQIndex(vectors, [1, 2, 3])
    assert index.remove([4, 5]) == 0
    assert index.remove([]) == 0
    assert index.remove([1, 1, 1]) == 1
    assert index.remove([1]) == 0
    assert len(index) == 2


def test_one_hash_under_several_ids_is_returned_under_each() -> None:
    v = random_vectors(np.random.default_rng(13), 1)
    index = PDQIndex(np.repeat(v, 3, axis=0), [30, 10, 20])
    index.add(v, [5])
    assert index.query(v[0]) == [(5, 0), (10, 0), (20, 0), (30, 0)]


def test_ids_must_be_distinct() -> None:
    v = random_vectors(np.random.default_rng(15), 2)
    with pytest.raises(ValueError, match="distinct"):
        PDQIndex(v, [1, 1])
    with pytest.raises(ValueError, match="distinct"):
        PDQIndex(random_vectors(np.random.default_rng(16), 3), [5, 1, 5])
    index = PDQIndex(v, [1, 2])
    with pytest.raises(ValueError, match="distinct"):
        index.add(v, [3, 3])
    with pytest.raises(ValueError, match=r"already in the index: \[2\]"):
        index.add(v, [3, 2])
    index.add(v[:1], [4])
    with pytest.raises(ValueError, match=r"already in the index: \[4\]"):
        index.add(v[:1], [4])
    # A refused add changes nothing.
    assert len(index) == 3
    assert [i for i, _ in index.query(v[0], 0)] == [1, 4]


@pytest.mark.parametrize(
    "vectors",
    [
        np.zeros((2, 32), dtype=np.int64),
        np.zeros((2, 32), dtype=np.float64),
        np.zeros((2, 32), dtype=np.int8),
        np.zeros((2, 31), dtype=np.uint8),
        np.zeros((2, 64), dtype=np.uint8),
        np.zeros(32, dtype=np.uint8),
        np.zeros((2, 2, 32), dtype=np.uint8),
        [[0] * 32, [0] * 32],
        b"\0" * 64,
    ],
    ids=["int64", "float", "int8", "31-bytes", "64-bytes", "1-d", "3-d", "list", "bytes"],
)
def test_bad_vectors_raise_value_error(vectors: object) -> None:
    with pytest.raises(ValueError, match="vectors"):
        PDQIndex(vectors, [1, 2])  # type: ignore[arg-type]
    index = PDQIndex()
    with pytest.raises(ValueError, match="vectors"):
        index.add(vectors, [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="vectors"):
        index.query_many(vectors)  # type: ignore[arg-type]
    assert len(index) == 0


@pytest.mark.parametrize(
    "ids",
    [
        [1],
        [1, 2, 3],
        [1.0, 2.0],
        ["1", "2"],
        [[1], [2]],
        [2**63, 1],
        np.array([2**63, 1], dtype=np.uint64),
        np.array([True, False]),
        [1, None],
        5,
    ],
    ids=[
        "short",
        "long",
        "floats",
        "strings",
        "2-d",
        "too-big",
        "uint64-big",
        "bools",
        "none",
        "scalar",
    ],
)
def test_bad_ids_raise_value_error(ids: object) -> None:
    v = np.zeros((2, 32), dtype=np.uint8)
    with pytest.raises(ValueError, match="ids"):
        PDQIndex(v, ids)  # type: ignore[arg-type]
    index = PDQIndex()
    with pytest.raises(ValueError, match="ids"):
        index.add(v, ids)  # type: ignore[arg-type]
    assert len(index) == 0


@pytest.mark.parametrize("ids", [[1.5], ["1"], [[1]], [2**64], 3])
def test_bad_ids_to_remove_raise_value_error(ids: object) -> None:
    index = PDQIndex(np.zeros((1, 32), dtype=np.uint8), [1])
    with pytest.raises(ValueError, match="ids"):
        index.remove(ids)  # type: ignore[arg-type]
    assert len(index) == 1


@pytest.mark.parametrize(
    "vector",
    [
        np.zeros((1, 32), dtype=np.uint8),
        np.zeros(31, dtype=np.uint8),
        np.zeros(32, dtype=np.int64),
        [0] * 32,
        bytes(32),
    ],
    ids=["2-d", "31-bytes", "int64", "list", "bytes"],
)
def test_a_bad_query_vector_raises_value_error(vector: object) -> None:
    index = PDQIndex(np.zeros((1, 32), dtype=np.uint8), [1])
    with pytest.raises(ValueError, match="vector"):
        index.query(vector)  # type: ignore[arg-type]


@pytest.mark.parametrize("radius", [-1, 257, 31.0, "31", True, None])
def test_a_bad_radius_raises_value_error(radius: object) -> None:
    index = PDQIndex(np.zeros((1, 32), dtype=np.uint8), [1])
    with pytest.raises(ValueError, match="radius"):
        index.query(np.zeros(32, dtype=np.uint8), radius)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="radius"):
        index.query_many(np.zeros((1, 32), dtype=np.uint8), radius)  # type: ignore[arg-type]


def test_a_numpy_integer_radius_is_accepted() -> None:
    index = PDQIndex(np.zeros((1, 32), dtype=np.uint8), [1])
    assert index.query(np.zeros(32, dtype=np.uint8), np.int64(0)) == [(1, 0)]  # type: ignore[arg-type]


def test_the_index_does_not_alias_the_callers_arrays() -> None:
    v = np.zeros((1, 32), dtype=np.uint8)
    index = PDQIndex(v, [1])
    v[:] = 255
    assert index.query(np.zeros(32, dtype=np.uint8), 0) == [(1, 0)]


@pytest.mark.parametrize("mmap", [True, False])
def test_a_saved_index_loads_with_the_same_answers(
    planted: tuple[Vectors, list[int], Vectors], tmp_path: Path, mmap: bool
) -> None:
    vectors, ids, queries = planted
    index = PDQIndex(vectors, ids)
    index.save(tmp_path / "index")
    loaded = PDQIndex.load(tmp_path / "index", mmap=mmap)
    assert len(loaded) == len(index)
    for radius in (0, 31, 64):
        assert loaded.query_many(queries, radius) == index.query_many(queries, radius)
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


def test_a_saved_index_with_64_bit_positions_answers_the_same(
    planted: tuple[Vectors, list[int], Vectors], tmp_path: Path
) -> None:
    """Above 134M hashes the tables' positions are int64: the same files, wider."""
    vectors, ids, queries = planted
    index = PDQIndex(vectors, ids)
    index.save(tmp_path / "index")
    for name in ("rows", "offsets"):
        path = tmp_path / "index" / f"{name}.npy"
        np.save(path, np.load(path).astype(np.int64))
    loaded = PDQIndex.load(tmp_path / "index")
    for radius in (0, 31):
        assert loaded.query_many(queries, radius) == index.query_many(queries, radius)
        assert [loaded.query(q, radius) for q in queries] == index.query_many(queries, radius)


def test_saving_folds_in_pending_adds_and_removals(tmp_path: Path) -> None:
    rng = np.random.default_rng(17)
    q = random_vectors(rng, 1)[0]
    index = PDQIndex(np.array([at_distance(rng, q, d) for d in range(5)]), range(5))
    index.add(np.array([at_distance(rng, q, 9)]), [9])
    index.remove([0, 3])
    index.save(tmp_path / "index")
    expected = [(1, 1), (2, 2), (4, 4), (9, 9)]
    assert index.query(q) == expected
    assert PDQIndex.load(tmp_path / "index").query(q) == expected


def test_changing_a_loaded_index_leaves_its_files_alone(tmp_path: Path) -> None:
    rng = np.random.default_rng(18)
    vectors = random_vectors(rng, 3000)
    PDQIndex(vectors, range(3000)).save(tmp_path / "index")
    before = {p.name: p.read_bytes() for p in (tmp_path / "index").iterdir()}
    loaded = PDQIndex.load(tmp_path / "index")
    loaded.remove(range(2500))  # enough to rebuild the tables
    loaded.add(vectors[:1], [0])
    loaded.remove([2600])
    assert len(loaded) == 500
    assert loaded.query(vectors[0], 0) == [(0, 0)]
    assert loaded.query(vectors[2600], 0) == []
    assert {p.name: p.read_bytes() for p in (tmp_path / "index").iterdir()} == before
    assert PDQIndex.load(tmp_path / "index").query(vectors[2600], 0) == [(2600, 0)]


def test_an_empty_index_saves_and_loads(tmp_path: Path) -> None:
    PDQIndex().save(tmp_path / "index")
    loaded = PDQIndex.load(tmp_path / "index")
    assert len(loaded) == 0
    assert loaded.query(np.zeros(32, dtype=np.uint8)) == []


def test_saving_over_an_existing_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "index").mkdir()
    with pytest.raises(FileExistsError):
        PDQIndex().save(tmp_path / "index")
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


def test_loading_what_is_not_a_saved_index_fails(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        PDQIndex.load(tmp_path / "nothing")
    vectors = random_vectors(np.random.default_rng(19), 100)
    PDQIndex(vectors, range(100)).save(tmp_path / "index")
    (tmp_path / "index" / "FORMAT").write_text("something else\n")
    with pytest.raises(ValueError, match="not a PDQ index"):
        PDQIndex.load(tmp_path / "index")


@pytest.mark.parametrize(
    ("name", "replace"),
    [
        ("rows", lambda a: a[:-1]),
        ("rows", lambda a: a.astype(np.int16)),
        ("offsets", lambda a: a[::-1].copy()),
        ("offsets", lambda a: a[:-1]),
        ("partner", lambda a: a[:-1]),
        ("ids", lambda a: a.astype(np.float64)),
        ("vectors", lambda a: a[:, :31].copy()),
    ],
)
def test_loading_tables_that_do_not_fit_fails(
    tmp_path: Path, name: str, replace: Callable[[npt.NDArray[Any]], npt.NDArray[Any]]
) -> None:
    vectors = random_vectors(np.random.default_rng(20), 100)
    PDQIndex(vectors, range(100)).save(tmp_path / "index")
    path = tmp_path / "index" / f"{name}.npy"
    np.save(path, replace(np.load(path)))
    with pytest.raises(ValueError, match="not a PDQ index"):
        PDQIndex.load(tmp_path / "index")


def test_vectors_from_hex_reads_hex_in_byte_order() -> None:
    values = ["00" * 31 + "ff", "0123456789ABCDEF" * 4]
    vectors = vectors_from_hex(values)
    assert vectors.dtype == np.uint8 and vectors.shape == (2, 32)
    assert [bytes(v).hex() for v in vectors] == [values[0], values[1].lower()]
    assert vectors_from_hex([]).shape == (0, 32)


@pytest.mark.parametrize(
    "value", ["00" * 31, "00" * 33, "zz" * 32, " " + "0" * 63, "0" * 62 + " 0", 12]
)
def test_vectors_from_hex_names_the_bad_value(value: object) -> None:
    with pytest.raises(ValueError, match=r"PDQ hash 1 is not 64 hex digits"):
        vectors_from_hex(["ab" * 32, value, "cd" * 32])  # type: ignore[list-item]


def test_it_imports_without_django() -> None:
    code = (
        "import sys, hashbank.pdq_index\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'django'], 'django imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# A random sequence of adds and removes, each followed by a query, against a dict model.
_op = st.tuples(st.sampled_from(["add", "remove"]), st.integers(0, 60), st.integers(1, 40))


@settings(database=None, max_examples=60, deadline=None)
@given(st.lists(_op, max_size=12), st.integers(0, 2**32 - 1))
def test_it_matches_a_model_under_any_sequence_of_changes(
    ops: list[tuple[str, int, int]], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    q = random_vectors(rng, 1)[0]
    model: dict[int, Vectors] = {}
    index = PDQIndex()
    for op, first, count in ops:
        ids = [i for i in range(first, first + count)]
        if op == "add":
            ids = [i for i in ids if i not in model]
            new = [at_distance(rng, q, int(rng.integers(25, 40))) for _ in ids]
            index.add(np.array(new, dtype=np.uint8).reshape(-1, 32), ids)
            model.update(zip(ids, new, strict=True))
        else:
            assert index.remove(ids) == len([i for i in ids if i in model])
            for i in ids:
                model.pop(i, None)
        held = np.array(list(model.values()), dtype=np.uint8).reshape(-1, 32)
        assert len(index) == len(model)
        assert index.query(q) == brute_force(held, list(model), q, 31)
