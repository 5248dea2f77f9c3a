"""Tests for the RFC 9162 Merkle tree: published vectors, a naive reference, tampering."""

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusioncell.record.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MerkleTree,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex

# Test vectors of Certificate Transparency's reference implementation (RFC 6962 data), as
# published in transparency-dev/merkle: testonly/constants.go (LeafInputs, NodeHashes,
# RootHashes, EmptyRootHash) and testonly/reference_test.go (TestRefInclusionProof,
# TestRefConsistencyProof); the roots originate in google/certificate-transparency
# cpp/merkletree/merkle_tree_test.cc.
LEAF_INPUTS = [h(x) for x in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]
LEAF_HASHES = [h(x) for x in (  # NodeHashes()[0]
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
)]
ROOTS = [h(x) for x in (  # RootHashes(), indexed by tree size
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]
INCLUSION_PROOFS = [  # (index, size, proof)
    (0, 1, []),
    (0, 2, [h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7")]),
    (1, 2, [h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")]),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (1, 5, [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
    ]),
    (0, 8, [
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ]),
    (5, 8, [
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    ]),
]
CONSISTENCY_PROOFS = [  # (first, second, proof)
    (1, 1, []),
    (1, 8, [
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ]),
    (2, 5, [
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
    ]),
    (6, 8, [
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    ]),
]


def vector_tree(size=8):
    return MerkleTree(leaf_hash(d) for d in LEAF_INPUTS[:size])


# --- Reference: RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1 transcribed literally, over leaf inputs D.

def ref_hash(data):
    return hashlib.sha256(data).digest()


def ref_k(n):
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d):
    n = len(d)
    if n == 0:
        return ref_hash(b"")
    if n == 1:
        return ref_hash(b"\x00" + d[0])
    k = ref_k(n)
    return ref_hash(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m, d):
    n = len(d)
    if n == 1:
        return []
    k = ref_k(n)
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_proof(m, d):
    return ref_subproof(m, d, True)


def ref_subproof(m, d, b):
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = ref_k(n)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


# --- Tampering: every variant must be rejected.

def flip(b, bit=0):
    out = bytearray(b)
    out[bit // 8 % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


def proof_variants(proof):
    for i in range(len(proof)):
        yield proof[:i] + [flip(proof[i], 8 * i + 3)] + proof[i + 1:]
    if proof:
        yield proof[:-1]
        yield proof[1:]
    yield proof + [bytes(HASH_SIZE)]
    yield [bytes(HASH_SIZE)] + proof
    if proof:
        yield proof + [proof[-1]]
    if proof[::-1] != proof:
        yield proof[::-1]


def check_inclusion(tree, leaves, index, size):
    """Proof from the tree equals the reference PATH, verifies, and no tampering verifies."""
    proof = tree.inclusion_proof(index, size)
    assert proof == ref_path(index, leaves[:size])
    root, lh = tree.root(size), tree.leaf(index)
    assert verify_inclusion(lh, index, size, proof, root)
    for bad in proof_variants(proof):
        assert not verify_inclusion(lh, index, size, bad, root)
    assert not verify_inclusion(flip(lh, 200), index, size, proof, root)
    assert not verify_inclusion(lh, index, size, proof, flip(root, 77))
    for wrong in range(-1, size + 2):
        if wrong != index:
            # Only an identical leaf with an identical path may pass at another index.
            legit = (0 <= wrong < size and tree.leaf(wrong) == lh
                     and tree.inclusion_proof(wrong, size) == proof)
            assert verify_inclusion(lh, wrong, size, proof, root) == legit


def check_consistency(tree, leaves, first, second):
    """Proof from the tree equals the reference PROOF, verifies, and no tampering verifies."""
    proof = tree.consistency_proof(first, second)
    assert proof == ref_proof(first, leaves[:second])
    r1, r2 = tree.root(first), tree.root(second)
    assert verify_consistency(first, second, r1, r2, proof)
    for bad in proof_variants(proof):
        assert not verify_consistency(first, second, r1, r2, bad)
    assert not verify_consistency(first, second, flip(r1, 5), r2, proof)
    assert not verify_consistency(first, second, r1, flip(r2, 250), proof)
    if first != second:
        assert not verify_consistency(first, second, r2, r1, proof)


# --- Published vectors.

def test_primitives():
    assert EMPTY_ROOT == ROOTS[0]
    assert [leaf_hash(d) for d in LEAF_INPUTS] == LEAF_HASHES
    # NodeHashes()[1][0] is the parent of the first two leaves.
    assert node_hash(LEAF_HASHES[0], LEAF_HASHES[1]) == ROOTS[2]


@pytest.mark.parametrize("size", range(9))
def test_vector_roots(size):
    assert vector_tree(size).root() == ROOTS[size]
    assert vector_tree().root(size) == ROOTS[size]
    assert root_from_leaf_hashes(LEAF_HASHES[:size]) == ROOTS[size]


def test_vector_roots_one_at_a_time():
    tree = MerkleTree()
    assert tree.root() == ROOTS[0]
    for i, d in enumerate(LEAF_INPUTS):
        tree.append(leaf_hash(d))
        assert tree.size == i + 1
        assert [tree.root(s) for s in range(i + 2)] == ROOTS[:i + 2]


@pytest.mark.parametrize("index,size,proof", INCLUSION_PROOFS)
def test_vector_inclusion(index, size, proof):
    assert vector_tree().inclusion_proof(index, size) == proof
    assert verify_inclusion(LEAF_HASHES[index], index, size, proof, ROOTS[size])
    assert ref_path(index, LEAF_INPUTS[:size]) == proof


@pytest.mark.parametrize("first,second,proof", CONSISTENCY_PROOFS)
def test_vector_consistency(first, second, proof):
    assert vector_tree().consistency_proof(first, second) == proof
    assert verify_consistency(first, second, ROOTS[first], ROOTS[second], proof)
    assert ref_proof(first, LEAF_INPUTS[:second]) == proof


# --- Reference comparison.

def test_exhaustive_small():
    leaves = [i.to_bytes(2, "big") for i in range(32)]
    tree = MerkleTree(leaf_hash(d) for d in leaves)
    for n in range(33):
        assert tree.root(n) == ref_mth(leaves[:n])
        for index in range(n):
            check_inclusion(tree, leaves, index, n)
        for m in range(1, n + 1):
            check_consistency(tree, leaves, m, n)


# Draw the size first: plain st.lists() rarely goes past a dozen items, which would leave the
# deeper, irregular trees untested.
leaf_lists = st.integers(0, 70).flatmap(
    lambda n: st.lists(st.binary(max_size=12), min_size=n, max_size=n))


@settings(max_examples=30, deadline=None)
@given(leaves=leaf_lists, data=st.data())
def test_matches_reference(leaves, data):
    n = len(leaves)
    hashes = [leaf_hash(d) for d in leaves]
    # Build through a random mix of append and extend: the result must not depend on it.
    tree = MerkleTree()
    i = 0
    while i < n:
        j = data.draw(st.integers(i + 1, n), label="chunk end")
        if j == i + 1 and data.draw(st.booleans(), label="append"):
            tree.append(hashes[i])
        else:
            tree.extend(hashes[i:j])
        i = j
    assert tree.size == n
    assert tree.root() == ref_mth(leaves) == root_from_leaf_hashes(hashes)
    assert [tree.leaf(i) for i in range(n)] == hashes
    for index in range(n):
        check_inclusion(tree, leaves, index, n)
    for m in range(1, n + 1):
        check_consistency(tree, leaves, m, n)


@settings(max_examples=40, deadline=None)
@given(leaves=leaf_lists.filter(bool), data=st.data())
def test_prefix_roots_and_proofs(leaves, data):
    tree = MerkleTree(leaf_hash(d) for d in leaves)
    size = data.draw(st.integers(0, len(leaves)), label="size")
    prefix = MerkleTree(tree.leaf(i) for i in range(size))
    assert tree.root(size) == prefix.root() == ref_mth(leaves[:size])
    if size:
        index = data.draw(st.integers(0, size - 1), label="index")
        first = data.draw(st.integers(1, size), label="first")
        assert tree.inclusion_proof(index, size) == prefix.inclusion_proof(index, size)
        assert tree.consistency_proof(first, size) == prefix.consistency_proof(first, size)
        check_inclusion(tree, leaves, index, size)
        check_consistency(tree, leaves, first, size)


# --- Arguments.

def test_invalid_tree_arguments():
    tree = vector_tree(5)
    bad_calls = [
        lambda: tree.leaf(5), lambda: tree.leaf(-1),
        lambda: tree.root(6), lambda: tree.root(-1),
        lambda: tree.inclusion_proof(5, 5), lambda: tree.inclusion_proof(0, 0),
        lambda: tree.inclusion_proof(0, 6), lambda: tree.inclusion_proof(-1, 3),
        lambda: tree.consistency_proof(0, 3), lambda: tree.consistency_proof(4, 3),
        lambda: tree.consistency_proof(3, 6), lambda: tree.consistency_proof(-1, 3),
        lambda: tree.append(b"\x00" * 31), lambda: tree.append("x" * 32),
        lambda: tree.extend([LEAF_HASHES[0], b"short"]),
        lambda: MerkleTree([b"\x00" * 33]),
    ]
    for call in bad_calls:
        with pytest.raises(ValueError):
            call()
    # A rejected batch leaves the tree untouched.
    assert tree.size == 5 and tree.root() == ROOTS[5]


def test_verification_rejects_bad_arguments():
    tree = vector_tree()
    proof = tree.inclusion_proof(2, 8)
    lh = LEAF_HASHES[2]
    assert not verify_inclusion(lh, 2, 0, [], EMPTY_ROOT)
    assert not verify_inclusion(lh, 8, 8, proof, ROOTS[8])
    assert not verify_inclusion(lh, -1, 8, proof, ROOTS[8])
    assert not verify_inclusion(lh[:31], 2, 8, proof, ROOTS[8])
    assert not verify_inclusion(lh, 2, 8, proof, ROOTS[8] + b"\x00")
    assert not verify_inclusion(lh, 2, 8, [proof[0][:31]] + proof[1:], ROOTS[8])
    assert not verify_inclusion(lh, 2, 8, [None] + proof[1:], ROOTS[8])
    assert not verify_inclusion(lh, 2, 8, None, ROOTS[8])
    assert not verify_inclusion(lh, "2", 8, proof, ROOTS[8])
    assert not verify_inclusion(lh, 2, 4, proof, ROOTS[8])
    # As in RFC 9162, a path does not encode the sizes of its right siblings: leaf 2 has the same
    # path shape for sizes 5..8, so the size must come from the same signed tree head as the root.
    assert verify_inclusion(lh, 2, 7, proof, ROOTS[8])

    cproof = tree.consistency_proof(3, 8)
    assert verify_consistency(3, 8, ROOTS[3], ROOTS[8], cproof)
    assert not verify_consistency(0, 8, EMPTY_ROOT, ROOTS[8], [])
    assert not verify_consistency(0, 8, ROOTS[3], ROOTS[8], cproof)
    assert not verify_consistency(8, 3, ROOTS[8], ROOTS[3], cproof)
    assert not verify_consistency(3, 8, ROOTS[3], ROOTS[8], [])
    assert not verify_consistency(3, 8, ROOTS[3][:16], ROOTS[8], cproof)
    assert not verify_consistency(3, 8, ROOTS[3], ROOTS[8], cproof[:-1] + [b"x"])
    assert not verify_consistency(3, 8, ROOTS[3], ROOTS[8], None)
    assert not verify_consistency(3, None, ROOTS[3], ROOTS[8], cproof)
    assert not verify_consistency(3, 3, ROOTS[3], ROOTS[4], [])
    assert not verify_consistency(3, 3, ROOTS[3], ROOTS[3], [ROOTS[3]])
    assert verify_consistency(3, 3, ROOTS[3], ROOTS[3], [])


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=80), st.data())
def test_truncate_equals_a_tree_built_to_that_size(n, data):
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    cut = data.draw(st.integers(min_value=0, max_value=n))
    tree = MerkleTree(leaves)
    tree.truncate(cut)
    assert tree.size == cut
    assert tree.root() == MerkleTree(leaves[:cut]).root()
    # Appending again after a truncation gives the same tree as never having appended the dropped leaves.
    tree.extend(leaves[cut:])
    assert tree.root() == MerkleTree(leaves).root()


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 30), max_size=60), st.data())
def test_an_indexed_tree_finds_the_first_leaf_of_each_hash_through_appends_and_truncations(values, data):
    leaves = [leaf_hash(v.to_bytes(1, "big")) for v in values]  # repeats on purpose
    by_extend, by_append = MerkleTree(indexed=True), MerkleTree(indexed=True)
    by_extend.extend(leaves)
    for h in leaves:
        by_append.append(bytearray(h))  # any bytes-like leaf is indexed by its bytes
    cut = data.draw(st.integers(0, len(leaves)))
    by_extend.truncate(cut)
    by_append.truncate(cut)
    for v in range(31):
        h = leaf_hash(v.to_bytes(1, "big"))
        expected = leaves.index(h) if h in leaves[:cut] else None
        assert by_extend.index_of(h) == by_append.index_of(h) == expected
    with pytest.raises(RuntimeError):
        MerkleTree(leaves).index_of(leaf_hash(b""))  # a tree made without an index says so
