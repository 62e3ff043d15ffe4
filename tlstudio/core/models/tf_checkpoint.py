"""Read a TensorFlow v2 checkpoint (`variables.index` + `variables.data-*`) with numpy only.

Why: pretrained sound models (YAMNet) are published as TensorFlow checkpoints, and TensorFlow has no
wheel for every Python the studio supports. The format is small and stable, so it is read by hand:

- `variables.index` is a LevelDB-style sorted table: data blocks of prefix-compressed keys with restart
  points, a metaindex block, an index block, and a 48-byte footer that ends in a magic number. Every block
  is followed by a 5-byte trailer (compression type, masked crc32c of the block).
- Each value is a protobuf: the empty key holds a `BundleHeaderProto`, every other key a `BundleEntryProto`
  (dtype, shape, shard_id, offset, size, crc32c) that locates the tensor's raw bytes in a data shard.

Both the block checksums and the per-tensor checksums (masked crc32c, as TensorFlow writes them) are
verified; crc32c is computed with numpy over many chunks at once, so a 15 MB checkpoint takes well under
a second.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TABLE_MAGIC = 0xDB4775248B80FB57  # LevelDB/TensorFlow table footer magic (little-endian fixed64)
FOOTER_SIZE = 48  # two block handles padded to 40 bytes, then the 8-byte magic
BLOCK_TRAILER_SIZE = 5  # 1 byte compression type + 4 bytes masked crc32c
_NO_COMPRESSION, _SNAPPY = 0, 1

# tensorflow/core/framework/types.proto -> numpy dtype (little-endian on disk).
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    8: np.dtype("<c8"),  # DT_COMPLEX64
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    17: np.dtype("<u2"),  # DT_UINT16
    18: np.dtype("<c16"),  # DT_COMPLEX128
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}
DT_STRING = 7
DT_BFLOAT16 = 14


class CheckpointError(ValueError):
    """The checkpoint files are not a readable TensorFlow v2 bundle (or are corrupt)."""


# ----------------------------------------------------------------------------- crc32c (Castagnoli)

_CRC_POLY = 0x82F63B78  # reflected Castagnoli polynomial


def _make_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(_CRC_POLY), table >> 1).astype(np.uint32)
    return table


_TABLE = _make_table()
_TABLE_LIST: list[int] = [int(v) for v in _TABLE]
_CHUNK = 1024  # bytes per lane in the vectorised crc
_PARALLEL_FROM = 64 * 1024  # below this a plain loop is faster than numpy's per-call overhead


def _crc_loop(reg: int, data: bytes | memoryview) -> int:
    table = _TABLE_LIST
    for byte in data:
        reg = table[(reg ^ byte) & 0xFF] ^ (reg >> 8)
    return reg


def _zeros_operator(length: int) -> np.ndarray:
    """Tables (4 x 256) of the linear map 'feed `length` zero bytes' on a raw crc register."""
    regs = (np.arange(256, dtype=np.uint32)[None, :] << (8 * np.arange(4, dtype=np.uint32))[:, None]).ravel()
    for _ in range(length):
        regs = _TABLE[regs & 0xFF] ^ (regs >> 8)
    return regs.reshape(4, 256)


_ZEROS_OP: np.ndarray | None = None


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """Standard crc32c (init and final xor 0xFFFFFFFF), as `crc32c::Value` in TensorFlow.

    Large inputs are split into equal lanes whose raw crcs run in lockstep with numpy; the lanes are then
    chained with a precomputed 'shift by one lane' operator (crc is linear over GF(2)).
    """
    global _ZEROS_OP
    view = memoryview(data).cast("B")
    n = len(view)
    if n < _PARALLEL_FROM:
        return _crc_loop(0xFFFFFFFF, view) ^ 0xFFFFFFFF
    if _ZEROS_OP is None:
        _ZEROS_OP = _zeros_operator(_CHUNK)
    pad = (-n) % _CHUNK
    buf = np.zeros(n + pad, dtype=np.uint8)
    buf[pad:] = np.frombuffer(view, dtype=np.uint8)
    # An initial register of all ones equals a zero register with the first 4 message bytes inverted;
    # leading zero bytes leave a zero register unchanged, so the padding is harmless.
    buf[pad : pad + 4] ^= 0xFF
    lanes = np.ascontiguousarray(buf.reshape(-1, _CHUNK).T)  # (_CHUNK, lanes)
    regs = np.zeros(lanes.shape[1], dtype=np.uint32)
    for column in lanes:
        regs = _TABLE[(regs ^ column) & 0xFF] ^ (regs >> 8)
    op0, op1, op2, op3 = (row.tolist() for row in _ZEROS_OP)
    reg = 0
    for lane_crc in regs.tolist():
        reg = op0[reg & 0xFF] ^ op1[(reg >> 8) & 0xFF] ^ op2[(reg >> 16) & 0xFF] ^ op3[reg >> 24] ^ lane_crc
    return reg ^ 0xFFFFFFFF


def mask_crc(crc: int) -> int:
    """TensorFlow/LevelDB store crcs 'masked' so that a crc of data holding crcs stays well-distributed."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


# ----------------------------------------------------------------------------- protobuf wire format


def read_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at `pos`; returns (value, next position)."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise CheckpointError("Truncated varint.")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CheckpointError("Varint longer than 64 bits.")


def iter_fields(buf: bytes | memoryview) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) of a protobuf message; value is int or the raw bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 1:
            value = int.from_bytes(buf[pos : pos + 8], "little")
            pos += 8
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            value = bytes(buf[pos : pos + length])
            pos += length
        elif wire == 5:
            value = int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        else:
            raise CheckpointError(f"Unsupported protobuf wire type {wire}.")
        if pos > len(buf):
            raise CheckpointError("Truncated protobuf message.")
        yield number, wire, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor lives (tensorflow/core/protobuf/tensor_bundle.proto, BundleEntryProto)."""

    dtype: int = 0
    shape: tuple[int, ...] = ()
    shard_id: int = 0
    offset: int = 0
    size: int = 0
    crc32c: int | None = None
    has_slices: bool = False


@dataclass(frozen=True)
class BundleHeader:
    """BundleHeaderProto: shard count, endianness (0 little), format version."""

    num_shards: int = 0
    endianness: int = 0
    version: dict[str, int] = field(default_factory=dict)


def _int(value: int | bytes) -> int:
    if not isinstance(value, int):
        raise CheckpointError("Expected a number in the protobuf, found bytes.")
    return value


def _bytes(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise CheckpointError("Expected a nested message in the protobuf, found a number.")
    return value


def parse_entry(buf: bytes) -> BundleEntry:
    dtype = shard = offset = size = 0
    crc: int | None = None
    shape: list[int] = []
    slices = False
    for number, _, value in iter_fields(buf):
        if number == 1:
            dtype = _int(value)
        elif number == 2:
            shape = _parse_shape(_bytes(value))
        elif number == 3:
            shard = _int(value)
        elif number == 4:
            offset = _signed64(_int(value))
        elif number == 5:
            size = _signed64(_int(value))
        elif number == 6:
            crc = _int(value)
        elif number == 7:
            slices = True
    return BundleEntry(dtype, tuple(shape), shard, offset, size, crc, slices)


def _parse_shape(buf: bytes) -> list[int]:
    """TensorShapeProto: repeated Dim (field 2) with size (field 1); field 3 is unknown_rank."""
    dims: list[int] = []
    for number, _, value in iter_fields(buf):
        if number == 2:
            size = 0
            for dim_number, _, dim_value in iter_fields(_bytes(value)):
                if dim_number == 1:
                    size = _signed64(_int(dim_value))
            dims.append(size)
        elif number == 3 and value:
            raise CheckpointError("A tensor of unknown rank cannot be restored.")
    return dims


def parse_header(buf: bytes) -> BundleHeader:
    num_shards = endianness = 0
    version: dict[str, int] = {}
    for number, _, value in iter_fields(buf):
        if number == 1:
            num_shards = _int(value)
        elif number == 2:
            endianness = _int(value)
        elif number == 3:
            names = {1: "producer", 2: "min_consumer"}
            version = {names[n]: _int(v) for n, _, v in iter_fields(_bytes(value)) if n in names}
    return BundleHeader(num_shards, endianness, version)


# ----------------------------------------------------------------------------- sorted string table


def _block_handle(buf: bytes | memoryview, pos: int) -> tuple[int, int, int]:
    offset, pos = read_varint(buf, pos)
    size, pos = read_varint(buf, pos)
    return offset, size, pos


def _read_block(table: bytes, offset: int, size: int) -> memoryview:
    end = offset + size
    if end + BLOCK_TRAILER_SIZE > len(table):
        raise CheckpointError("A table block points past the end of the index file.")
    kind = table[end]
    if kind == _SNAPPY:
        raise CheckpointError("The index table is snappy-compressed; only uncompressed tables are supported.")
    if kind != _NO_COMPRESSION:
        raise CheckpointError(f"Unknown block compression type {kind}.")
    (stored,) = struct.unpack_from("<I", table, end + 1)
    if mask_crc(crc32c(table[offset : end + 1])) != stored:
        raise CheckpointError(f"Index block at byte {offset} is corrupt (crc32c mismatch).")
    return memoryview(table)[offset:end]


def iter_block(block: memoryview) -> Iterator[tuple[bytes, bytes]]:
    """Yield (key, value) of one block; keys share a prefix with the previous key except at restarts."""
    if len(block) < 4:
        raise CheckpointError("Table block too short.")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 - 4 * num_restarts
    if limit < 0:
        raise CheckpointError("Table block has a bad restart array.")
    pos, key = 0, b""
    while pos < limit:
        shared, pos = read_varint(block, pos)
        unshared, pos = read_varint(block, pos)
        value_len, pos = read_varint(block, pos)
        if shared > len(key) or pos + unshared + value_len > limit:
            raise CheckpointError("Table block entry is corrupt.")
        key = key[:shared] + bytes(block[pos : pos + unshared])
        pos += unshared
        yield key, bytes(block[pos : pos + value_len])
        pos += value_len


def read_table(path: str | Path) -> list[tuple[bytes, bytes]]:
    """All (key, value) pairs of a LevelDB-style table file, in key order."""
    table = Path(path).read_bytes()
    if len(table) < FOOTER_SIZE:
        raise CheckpointError(f"{path} is too small to be a TensorFlow index table.")
    footer = table[-FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, FOOTER_SIZE - 8)
    if magic != TABLE_MAGIC:
        raise CheckpointError(f"{path} is not a TensorFlow index table (bad magic number).")
    _, _, pos = _block_handle(footer, 0)  # metaindex: unused by TensorFlow bundles
    index_offset, index_size, _ = _block_handle(footer, pos)
    pairs: list[tuple[bytes, bytes]] = []
    for _, handle in iter_block(_read_block(table, index_offset, index_size)):
        offset, size, _ = _block_handle(handle, 0)
        pairs.extend(iter_block(_read_block(table, offset, size)))
    return pairs


# ----------------------------------------------------------------------------- bundle


def _string_tensor(raw: bytes, count: int) -> tuple[np.ndarray, int]:
    """DT_STRING layout: varint64 lengths, masked crc32c of the lengths, then the bytes.

    The entry's crc32c covers each length as a little-endian uint32 (uint64 past 4 GiB, as TensorFlow's
    writer does), the stored length checksum, then the string bytes; that crc is returned so the caller can
    verify it like any other tensor.
    """
    pos, lengths = 0, []
    for _ in range(count):
        length, pos = read_varint(raw, pos)
        lengths.append(length)
    length_bytes = b"".join(struct.pack("<I" if n <= 0xFFFFFFFF else "<Q", n) for n in lengths)
    (length_crc,) = struct.unpack_from("<I", raw, pos)
    pos += 4
    if mask_crc(crc32c(length_bytes)) != length_crc:
        raise CheckpointError("String tensor lengths are corrupt (crc32c mismatch).")
    values = []
    for length in lengths:
        values.append(raw[pos : pos + length])
        pos += length
    covered = length_bytes + struct.pack("<I", length_crc) + raw[len(raw) - sum(lengths) :]
    return np.array(values, dtype=object), crc32c(covered)


@dataclass
class Checkpoint:
    """An opened bundle: its header and entries; tensors are read on demand."""

    prefix: Path
    header: BundleHeader
    entries: dict[str, BundleEntry]

    def shard_path(self, shard_id: int) -> Path:
        return Path(f"{self.prefix}.data-{shard_id:05d}-of-{max(self.header.num_shards, 1):05d}")

    def read(self, name: str, verify: bool = True) -> np.ndarray:
        entry = self.entries[name]
        if entry.has_slices:
            raise CheckpointError(f"{name} is stored as slices (partitioned variable); not supported.")
        with open(self.shard_path(entry.shard_id), "rb") as handle:
            handle.seek(entry.offset)
            raw = handle.read(entry.size)
        if len(raw) != entry.size:
            raise CheckpointError(f"{name}: the data shard ends early.")
        count = int(np.prod(entry.shape)) if entry.shape else 1
        if entry.dtype == DT_STRING:
            array, actual = _string_tensor(raw, count)
        else:
            if entry.dtype == DT_BFLOAT16:
                bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
                array = bits.view(np.float32)
            elif entry.dtype in _DTYPES:
                array = np.frombuffer(raw, dtype=_DTYPES[entry.dtype]).copy()
            else:
                raise CheckpointError(f"{name}: unsupported TensorFlow dtype {entry.dtype}.")
            if array.size != count:
                raise CheckpointError(f"{name}: {array.size} values on disk for shape {entry.shape}.")
            actual = crc32c(raw) if verify else 0
        if verify and entry.crc32c is not None and mask_crc(actual) != entry.crc32c:
            raise CheckpointError(f"{name} is corrupt (crc32c mismatch in the data shard).")
        return array.reshape(entry.shape)


def open_checkpoint(prefix: str | Path) -> Checkpoint:
    """Open `<prefix>.index` (e.g. prefix `.../variables/variables`)."""
    prefix = Path(prefix)
    pairs = read_table(f"{prefix}.index")
    header = BundleHeader()
    entries: dict[str, BundleEntry] = {}
    for key, value in pairs:
        if key == b"":
            header = parse_header(value)
        else:
            entries[key.decode("utf-8")] = parse_entry(value)
    if header.endianness != 0:
        raise CheckpointError("Big-endian checkpoints are not supported.")
    return Checkpoint(prefix, header, entries)


def load_checkpoint(prefix: str | Path, verify: bool = True, skip_strings: bool = True) -> dict[str, np.ndarray]:
    """{tensor name: numpy array} of a TensorFlow v2 checkpoint; every tensor's crc32c is checked."""
    checkpoint = open_checkpoint(prefix)
    return {
        name: checkpoint.read(name, verify)
        for name, entry in checkpoint.entries.items()
        if not (skip_strings and entry.dtype == DT_STRING)
    }
