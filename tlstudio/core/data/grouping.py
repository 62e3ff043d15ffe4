"""Which files belong together (one speaker, one session, one animal, one burst, one copy of a photo), so
that a group never straddles training and validation: a score measured on files whose source the model has
already heard or seen is a score, not a promise.

Rules, all combined (a group is the union of everything that ties files together):
- `group_by`: "none" (each file alone), "folder" (sub-folders inside a class folder), "auto" (a recurring
  token in the file names, found by `find_name_token`), or a regular expression whose first group (or whole
  match) is the key;
- byte-identical files and near-identical images (equal or nearly equal perceptual hashes) always share a group.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

GROUP_MODES = ("auto", "none", "folder")
_SEPARATORS = re.compile(r"[\s_\-.,;+]+")
NEAR_DUPLICATE_BITS = 4  # perceptual hashes this close (of 64 bits) are the same photo, resized or re-saved


@dataclass(frozen=True)
class NameToken:
    """The recurring token that `auto` grouping found: its position in the file name and an example."""

    position: int
    groups: int
    example: str

    def describe(self) -> str:
        return f"token {self.position + 1} of the file names (e.g. '{self.example}'), {self.groups} groups"


def name_tokens(path: str) -> list[str]:
    return [token for token in _SEPARATORS.split(Path(path).stem) if token]


def find_name_token(paths: Sequence[str], labels: Sequence[int]) -> NameToken | None:
    """A token position whose values recur across many files and are not the class label itself.

    A good source key covers nearly every file, has between 2 and n/2 values, most of its values recur,
    it is not a one-letter take marker or the label in disguise, and (preferred) it has letters in it:
    pure numbers are usually counters, and one that restarts in every class folder is refused. Among the
    candidates the coarsest (fewest groups) wins, because a coarser grouping can only leak less.
    """
    n = len(paths)
    if n < 4:
        return None
    tokens = [name_tokens(path) for path in paths]
    width = max((len(t) for t in tokens), default=0)
    candidates: list[tuple[tuple[int, int], NameToken]] = []
    for position in range(width):
        values = [t[position].lower() if len(t) > position else None for t in tokens]
        present = [(v, label) for v, label in zip(values, labels, strict=True) if v is not None]
        if len(present) < 0.9 * n:
            continue
        counts = Counter(v for v, _ in present)
        groups = len(counts)
        if not 2 <= groups <= n / 2:
            continue
        if sum(c for c in counts.values() if c >= 2) < 0.5 * len(present):
            continue  # mostly unique: an id per file, not a source
        if all(len(v) <= 1 for v in counts):
            continue  # "A"/"B" take markers
        if _names_the_class(present):
            continue
        numeric = all(v.isdigit() for v in counts)
        if not numeric and any(v.isdigit() for v in counts):
            continue  # numbers and words at one position: names of different shapes, the tokens do not line up
        if numeric and sum(c for c in Counter(present).values() if c >= 2) < 0.5 * len(present):
            continue  # a number that restarts in each class folder: a counter, not a source
        example = next(v for v in values if v is not None)
        candidates.append(((int(numeric), groups), NameToken(position, groups, example)))
    if not candidates:
        return None
    return min(candidates, key=lambda item: item[0])[1]


def _names_the_class(present: list[tuple[str, int]]) -> bool:
    """The label written into the name ("cat_001", "3_jackson_0"): in most classes one value covers most
    files. A source (speaker, animal, session) splits each class into several values instead."""
    by_class: dict[int, Counter[str]] = defaultdict(Counter)
    for value, label in present:
        by_class[label][value] += 1
    shares = sorted(max(c.values()) / sum(c.values()) for c in by_class.values())
    return shares[len(shares) // 2] >= 0.5


def folder_key(path: str, class_dir: str) -> str:
    """The first sub-folder below the class folder; files directly inside it are their own group."""
    relative = Path(path).relative_to(class_dir)
    return relative.parts[0] if len(relative.parts) > 1 else f"file:{relative}"


def regex_key(pattern: re.Pattern[str], path: str) -> str:
    match = pattern.search(Path(path).name)
    if not match:
        return f"file:{path}"
    return match.group(1) if match.groups() else match.group(0)


def compile_group_regex(text: str) -> re.Pattern[str]:
    from tlstudio.core.errors import ConfigError

    try:
        return re.compile(text)
    except re.error as exc:
        raise ConfigError(f"--group-by '{text}' is not a valid regular expression ({exc}).",
                          "Use auto, none, folder, or a pattern such as '^([a-z]+)_' whose group names the source.") \
            from exc


class _UnionFind:
    def __init__(self, items: Iterable[str]) -> None:
        self.parent = {item: item for item in items}

    def find(self, item: str) -> str:
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra


def content_digest(path: str) -> str | None:
    try:
        digest = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None


def duplicate_links(paths: Sequence[str], sizes: Sequence[int], perceptual: Sequence[int | None] | None,
                    digest: Callable[[str], str | None] = content_digest) -> list[tuple[int, int]]:
    """Pairs (i, j) of files that are the same content: equal bytes, or perceptual hashes within
    NEAR_DUPLICATE_BITS. Bytes are hashed only for files whose size collides with another's."""
    links: list[tuple[int, int]] = []
    by_size: dict[int, list[int]] = defaultdict(list)
    for index, size in enumerate(sizes):
        if size > 0:
            by_size[size].append(index)
    for members in by_size.values():
        if len(members) < 2:
            continue
        by_digest: dict[str, list[int]] = defaultdict(list)
        for index in members:
            key = digest(paths[index])
            if key:
                by_digest[key].append(index)
        for same in by_digest.values():
            links.extend((same[0], other) for other in same[1:])
    if perceptual:
        links.extend(_near_hash_pairs(perceptual))
    return links


def _near_hash_pairs(hashes: Sequence[int | None]) -> list[tuple[int, int]]:
    """Pigeonhole: two 64-bit hashes within 4 bits share at least one of five 13-bit chunks exactly."""
    pairs: set[tuple[int, int]] = set()
    chunks = 5
    for chunk in range(chunks):
        buckets: dict[int, list[int]] = defaultdict(list)
        shift = chunk * 13
        for index, value in enumerate(hashes):
            if value is not None:
                buckets[(value >> shift) & 0x1FFF].append(index)
        for members in buckets.values():
            if len(members) < 2 or len(members) > 200:  # a huge bucket is a blank/uniform image, not a copy
                continue
            for a_pos, a in enumerate(members):
                for b in members[a_pos + 1 :]:
                    if bin(hashes[a] ^ hashes[b]).count("1") <= NEAR_DUPLICATE_BITS:  # type: ignore[operator]
                        pairs.add((a, b))
    return sorted(pairs)


def merge_groups(keys: Sequence[str], links: Iterable[tuple[int, int]]) -> list[str]:
    """Each file's final group: its own key, merged with the keys of every file it is linked to."""
    finder = _UnionFind(keys)
    for a, b in links:
        finder.union(keys[a], keys[b])
    return [finder.find(key) for key in keys]
