"""SHA-256 Merkle tree of RFC 9162 (as RFC 6962): roots, inclusion and consistency proofs, checks."""

from collections.abc import Iterable, Sequence
from hashlib import sha256

HASH_SIZE = 32
EMPTY_ROOT: bytes = sha256(b"").digest()

_BATCH = 1 << 14


def leaf_hash(leaf_input: bytes) -> bytes:
    return sha256(b"\x00" + leaf_input).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_hash(value: object) -> bool:
    return isinstance(value, (bytes, bytearray, memoryview)) and len(value) == HASH_SIZE


class MerkleTree:
    """Append-only in-memory tree over leaf hashes; keeps every complete subtree hash per level so that
    root(n), inclusion and consistency proofs for any size n <= self.size cost O(log n) hashes."""

    def __init__(self, leaf_hashes: Iterable[bytes] = (), *, indexed: bool = False) -> None:
        # _levels[k] concatenates the hashes of the complete subtrees of 2**k leaves aligned on
        # multiples of 2**k, in order: it holds size >> k of them.
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0
        # indexed: where each leaf hash is (index_of), at ~130 bytes per leaf; the sequencer's lookup of refs.
        self._index: dict[bytes, int] | None = {} if indexed else None
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        if (type(leaf_hash) is not bytes or len(leaf_hash) != HASH_SIZE) and not _is_hash(leaf_hash):
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes")
        levels = self._levels
        levels[0] += leaf_hash
        if self._index is not None:
            self._index.setdefault(bytes(leaf_hash), self._size)
        self._size += 1
        n, k = self._size, 0
        # Each trailing zero bit of the new size is a subtree that this leaf just completed.
        while not n & 1:
            parent = sha256(b"\x01" + levels[k][-2 * HASH_SIZE:]).digest()
            k += 1
            n >>= 1
            if k == len(levels):
                levels.append(bytearray())
            levels[k] += parent

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        hashes = list(leaf_hashes)
        # Validate everything first so that a bad item leaves the tree unchanged.
        for h in hashes:
            if not _is_hash(h):
                raise ValueError(f"leaf hash must be {HASH_SIZE} bytes")
        # Bounded batches keep the temporary copies small (and cache-friendly) for huge inputs.
        for i in range(0, len(hashes), _BATCH):
            self._extend(hashes[i:i + _BATCH])

    def _extend(self, hashes: list[bytes]) -> None:
        levels = self._levels
        old, new = self._size, self._size + len(hashes)
        levels[0] += b"".join(hashes)
        if self._index is not None:
            index = self._index
            for i, h in enumerate(hashes, old):
                index.setdefault(bytes(h), i)
        # Level by level, hash in one go the pairs that became complete: far faster than
        # carrying up leaf by leaf as append() does.
        step = 2 * HASH_SIZE
        k = 0
        while new >> (k + 1) > old >> (k + 1):
            pairs = bytes(levels[k][(old >> (k + 1)) * step:(new >> (k + 1)) * step])
            parents = b"".join([sha256(b"\x01" + pairs[i:i + step]).digest()
                                for i in range(0, len(pairs), step)])
            k += 1
            if k == len(levels):
                levels.append(bytearray())
            levels[k] += parents
        self._size = new

    def truncate(self, size: int) -> None:
        """Drop leaves from `size` on: undoes appends whose transaction was rolled back."""
        self._check_size(size)
        if self._index is not None:
            for i in range(size, self._size):
                h = self.leaf(i)
                if self._index.get(h) == i:
                    del self._index[h]
        for k, level in enumerate(self._levels):
            del level[(size >> k) * HASH_SIZE:]
        self._size = size

    def index_of(self, leaf_hash: bytes) -> int | None:
        """The index of the first leaf with this hash, or None (a tree made with indexed=True)."""
        if self._index is None:
            raise RuntimeError("this tree keeps no index of its leaves")
        return self._index.get(leaf_hash)

    def leaf(self, index: int) -> bytes:
        if not 0 <= index < self._size:
            raise ValueError(f"leaf index {index} out of range for tree of size {self._size}")
        return bytes(self._levels[0][index * HASH_SIZE:(index + 1) * HASH_SIZE])

    def root(self, size: int | None = None) -> bytes:
        if size is None:
            size = self._size
        self._check_size(size)
        return self._hash(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} out of range for tree size {size}")
        proof = []
        a, b = 0, size
        while b - a > 1:
            k = _split(b - a)
            if index < a + k:
                proof.append(self._hash(a + k, b))
                b = a + k
            else:
                proof.append(self._hash(a, a + k))
                a += k
        proof.reverse()
        return proof

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        self._check_size(second)
        if not 0 < first <= second:
            raise ValueError(f"consistency proof needs 0 < first <= second, got {first}, {second}")
        # SUBPROOF(m, D[a:b], flag) walked down iteratively; flag turns False once we descend
        # right, because the verifier then does not know the hash of the subtree where m ends.
        proof = []
        a, b, known = 0, second, True
        while first != b:
            k = _split(b - a)
            if first <= a + k:
                proof.append(self._hash(a + k, b))
                b = a + k
            else:
                proof.append(self._hash(a, a + k))
                a += k
                known = False
        if not known:
            proof.append(self._hash(a, b))
        proof.reverse()
        return proof

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self._size:
            raise ValueError(f"tree size {size} out of range for tree of size {self._size}")

    def _hash(self, a: int, b: int) -> bytes:
        """MTH(D[a:b]) for a range met in RFC 9162's recursion (a is a multiple of the split)."""
        n = b - a
        if not n & (n - 1):
            # A power-of-two range in that recursion is always a complete aligned subtree.
            k = n.bit_length() - 1
            offset = (a >> k) * HASH_SIZE
            return bytes(self._levels[k][offset:offset + HASH_SIZE])
        k = _split(n)
        return node_hash(self._hash(a, a + k), self._hash(a + k, b))


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    return MerkleTree(hashes).root()


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes],
                     root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if not (isinstance(index, int) and isinstance(size, int) and 0 <= index < size):
        return False
    if not isinstance(proof, Sequence):
        return False
    if not (_is_hash(leaf_hash) and _is_hash(root) and all(_is_hash(p) for p in proof)):
        return False
    fn, sn, r = index, size - 1, bytes(leaf_hash)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2, defined for 0 < first <= second."""
    if not (isinstance(first, int) and isinstance(second, int) and 0 < first <= second):
        return False
    if not isinstance(proof, Sequence):
        return False
    if not (_is_hash(first_root) and _is_hash(second_root) and all(_is_hash(p) for p in proof)):
        return False
    # The RFC algorithm rejects every empty path, yet PROOF(m, D[m]) is empty: equal sizes
    # are consistent exactly when the roots match.
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False
    path = list(proof)
    if not first & (first - 1):
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = bytes(path[0])
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root
