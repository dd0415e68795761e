"""Hostile .pth files: nothing in them runs, no view reads outside its storage,
and no small file makes the reader allocate more than GoogLeNet's tensors.

The files are made here, without torch: a pickler writes stand-ins under the
same global names (`torch._utils._rebuild_tensor_v2`, `torch.FloatStorage`)
and persistent ids that `torch.save` writes.
"""
import io
import os
import pickle
import re
import subprocess
import sys
import types
import zipfile

import numpy as np
import pytest

from keras_googlenet import weights as W

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _payload(marker):
    """An object whose unpickling runs a shell command that creates `marker`."""

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    return Payload()


def _rebuild_tensor_v2(*args):
    raise AssertionError("only pickled, never called")


class _FloatStorage:
    pass


# Stand-ins pickled under torch's names, with no torch module in sight.
_TORCH_NAMES = {_rebuild_tensor_v2: ("torch._utils", "_rebuild_tensor_v2"),
                _FloatStorage: ("torch", "FloatStorage")}


class _TorchNamePickler(pickle._Pickler):
    """The pure-Python pickler, writing the stand-ins as torch's globals."""

    def save_global(self, obj, name=None):
        if obj in _TORCH_NAMES:
            module, name = _TORCH_NAMES[obj]
            self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
            self.memoize(obj)
            return
        super().save_global(obj, name)

    # The class's dispatch table holds the base save_global for functions.
    dispatch = {**pickle._Pickler.dispatch, types.FunctionType: save_global}


@pytest.fixture
def fake_torch():
    return types.SimpleNamespace(rebuild=_rebuild_tensor_v2, FloatStorage=_FloatStorage)


class _Storage:
    def __init__(self, key, numel):
        self.key, self.numel = key, numel


class _Tensor:
    """Pickles as torch does: _rebuild_tensor_v2(storage, offset, size, stride, ...)."""

    def __init__(self, fake, storage, offset, size, stride):
        self.fake, self.args = fake, (storage, offset, size, stride)

    def __reduce__(self):
        import collections
        return self.fake.rebuild, self.args + (False, collections.OrderedDict())


def _pickler(f, fake):
    pickler = _TorchNamePickler(f, protocol=2)

    def persistent_id(obj):
        if isinstance(obj, _Storage):
            return ("storage", fake.FloatStorage, obj.key, "cpu", obj.numel)
        return None

    pickler.persistent_id = persistent_id
    return pickler


def write_zip(path, fake, state, storages, extra_pickle=None):
    """A zip-format torch.save file; `storages` maps key -> float32 array."""
    buf = io.BytesIO()
    _pickler(buf, fake).dump(state if extra_pickle is None else extra_pickle)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buf.getvalue())
        archive.writestr("archive/version", "3\n")  # what torch.load looks for
        for key, array in storages.items():
            archive.writestr(f"archive/data/{key}", np.asarray(array, np.float32).tobytes())


def write_legacy(path, fake, state, storages, header=None):
    """A legacy-format file: magic, protocol, sys info, state, keys, storages."""
    with open(path, "wb") as f:
        for obj in header or (LEGACY_MAGIC, 1001, {"little_endian": True}):
            pickle.dump(obj, f, protocol=2)
        _pickler(f, fake).dump(state)
        pickle.dump(list(storages), f, protocol=2)
        for array in storages.values():
            array = np.asarray(array, np.float32)
            f.write(np.int64(array.size).tobytes())
            f.write(array.tobytes())


def _readers():
    yield False
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    yield True


@pytest.fixture(params=list(_readers()), ids=lambda t: "torch" if t else "no-torch")
def use_torch(request):
    return request.param


def _write_hostile(kind, path, fake, marker):
    evil = _payload(marker)
    good = {"w": _Tensor(fake, _Storage("0", 4), 0, (4,), (1,))}
    storages = {"0": np.arange(4)}
    if kind == "zip":
        write_zip(path, fake, None, storages, extra_pickle={"w": evil})
    elif kind == "legacy-magic":  # a plain pickle.dump of the payload
        with open(path, "wb") as f:
            pickle.dump(evil, f)
    elif kind == "legacy-protocol":
        write_legacy(path, fake, good, storages, header=(LEGACY_MAGIC, evil, {}))
    elif kind == "legacy-sysinfo":
        write_legacy(path, fake, good, storages, header=(LEGACY_MAGIC, 1001, evil))
    elif kind == "legacy-keys":
        with open(path, "wb") as f:
            for obj in (LEGACY_MAGIC, 1001, {}):
                pickle.dump(obj, f, protocol=2)
            _pickler(f, fake).dump(good)
            pickle.dump(evil, f, protocol=2)
    elif kind == "legacy-state":
        write_legacy(path, fake, {"w": evil}, storages)


HOSTILE = ["zip", "legacy-magic", "legacy-protocol", "legacy-sysinfo", "legacy-keys",
           "legacy-state"]


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_pickle_never_runs(kind, tmp_path, fake_torch, use_torch):
    marker = tmp_path / "pwned"
    path = str(tmp_path / "googlenet-x.pth")
    _write_hostile(kind, path, fake_torch, marker)
    with pytest.raises(W.NotAStateDictError, match="not a plain PyTorch state dict"):
        W.read_state_dict(path, use_torch=use_torch)
    assert not marker.exists()
    # Control: plain pickle.load of the same file does run the payload, so the
    # test would catch a reader that unpickles without restrictions.
    if kind == "legacy-magic":
        with open(path, "rb") as f:
            pickle.load(f)
        assert marker.exists()


def test_hostile_file_through_googlenet_and_the_converter_command(tmp_path, fake_torch):
    marker = tmp_path / "pwned"
    path = str(tmp_path / "googlenet-x.pth")
    _write_hostile("legacy-protocol", path, fake_torch, marker)
    # A fresh process: whatever reader the user's install picks.
    code = (
        "import sys, keras_googlenet as kg\n"
        "from keras_googlenet import cli, weights as W\n"
        "try:\n"
        f"    kg.GoogLeNet(weights={path!r}, classes=10, input_shape=(32, 32, 3))\n"
        "except W.NotAStateDictError as e:\n"
        "    print('REFUSED', e)\n"
        f"sys.exit(cli.main(['weights', 'convert', {path!r}, "
        f"{str(tmp_path / 'out.weights.h5')!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert "REFUSED" in proc.stdout and "not a plain PyTorch state dict" in proc.stdout
    assert proc.returncode != 0
    assert "not a plain PyTorch state dict" in proc.stderr
    assert not marker.exists()


@pytest.mark.parametrize("writer", [write_zip, write_legacy], ids=["zip", "legacy"])
@pytest.mark.parametrize("offset,size,stride", [
    (0, (64,), (1,)),            # 1-float storage, 64 elements: heap bytes
    (0, (2 ** 40,), (1,)),       # huge size
    (0, (2,), (2 ** 62,)),       # huge stride: SIGSEGV unchecked
    (3, (1,), (1,)),             # offset past the end
    (0, (-1,), (1,)),            # negative size
    (0, (1000000, 1000000), (0, 0)),  # self-overlapping, 10^12 elements
])
def test_views_outside_the_storage_are_refused(writer, offset, size, stride, tmp_path,
                                               fake_torch):
    path = str(tmp_path / "crafted.pth")
    state = {"w": _Tensor(fake_torch, _Storage("0", 1), offset, size, stride)}
    writer(path, fake_torch, state, {"0": [1.0]})
    with pytest.raises(W.NotAStateDictError, match="not a plain PyTorch state dict"):
        W.read_state_dict(path, use_torch=False)


@pytest.mark.parametrize("writer", [write_zip, write_legacy], ids=["zip", "legacy"])
def test_crafted_reader_reads_valid_views(writer, tmp_path, fake_torch):
    """The same writer with valid views reads back exactly (the checks are not
    simply refusing everything)."""
    path = str(tmp_path / "ok.pth")
    data = np.arange(12, dtype=np.float32)
    state = {"a": _Tensor(fake_torch, _Storage("0", 12), 0, (3, 4), (4, 1)),
             "t": _Tensor(fake_torch, _Storage("0", 12), 1, (4, 2), (1, 4)),
             "e": _Tensor(fake_torch, _Storage("0", 12), 0, (0, 5), (5, 1)),
             "s": _Tensor(fake_torch, _Storage("0", 12), 11, (), ())}
    writer(path, fake_torch, state, {"0": data})
    read = W.read_state_dict(path, use_torch=False)
    np.testing.assert_array_equal(read["a"], data.reshape(3, 4))
    np.testing.assert_array_equal(read["t"], data[1:9].reshape(2, 4).T)
    assert read["e"].shape == (0, 5)
    assert read["s"] == 11.0


def test_truncated_storage_is_refused(tmp_path, fake_torch):
    path = str(tmp_path / "short.pth")
    write_legacy(path, fake_torch, {"w": _Tensor(fake_torch, _Storage("0", 8), 0, (8,), (1,))},
                 {"0": np.zeros(8)})
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 4)
    with pytest.raises(W.NotAStateDictError, match="truncated"):
        W.read_state_dict(path, use_torch=False)


# ---------------------------------------------------------------------------
# Size bombs: nothing is materialised before the sizes are checked.
# ---------------------------------------------------------------------------
BOMB_BYTES = 160 * 2 ** 20  # one storage of 160 MiB of zeros: about 156 KiB deflated
# Real torchvision googlenet keys and shapes (the bomb's views are named like them).
BOMB_KEYS = {
    "conv1.conv.weight": (64, 3, 7, 7), "conv2.conv.weight": (64, 64, 1, 1),
    "conv3.conv.weight": (192, 64, 3, 3), "inception3a.branch1.conv.weight": (64, 192, 1, 1),
    "inception4e.branch2.1.conv.weight": (320, 160, 3, 3),
    "inception5b.branch2.1.conv.weight": (384, 192, 3, 3),
    "aux1.fc1.weight": (1024, 2048), "aux2.fc1.weight": (1024, 2048),
    "aux1.fc2.weight": (1000, 1024), "fc.weight": (1000, 1024),
}


def _contiguous(shape):
    strides, step = [], 1
    for n in reversed(shape):
        strides.insert(0, step)
        step *= n
    return tuple(strides)


def write_zip_bomb(path, fake, views, storage_bytes=BOMB_BYTES):
    """The issue's bomb: a zip-format .pth whose one storage (zeros, deflated)
    is the storage of every tensor of `views` ({name: (size, stride)})."""
    storage = _Storage("0", storage_bytes // 4)
    state = {name: _Tensor(fake, storage, 0, size, stride)
             for name, (size, stride) in views.items()}
    buf = io.BytesIO()
    _pickler(buf, fake).dump(state)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", buf.getvalue())
        archive.writestr("archive/version", "3\n")
        with archive.open("archive/data/0", "w") as f:  # streamed: no 160 MiB here
            chunk = bytes(1 << 20)
            for _ in range(storage_bytes >> 20):
                f.write(chunk)


_BOMB_VIEWS = {
    # The file: every view is the whole 160 MiB storage.
    "whole-storage": {name: ((BOMB_BYTES // 4,), (1,)) for name in BOMB_KEYS},
    # Views of the right names and shapes, on a storage far larger than they need.
    "real-shapes": {name: (shape, _contiguous(shape)) for name, shape in BOMB_KEYS.items()},
}


def _measure_in_subprocess(call, use_torch):
    """Runs `call` (a statement using W) in a fresh process; its outcome, time
    and peak resident memory before and after (KiB).

    The peak is the process's own high-water mark (VmHWM), reset just before
    the call; `ru_maxrss` would not do: Linux carries the parent's (pytest's,
    with TensorFlow loaded) peak over into the child.
    """
    import helpers as fx

    code = (
        "import json, time\n"
        + ("import torch\n" if use_torch else "")
        + "from keras_googlenet import weights as W\n"
        "def peak():\n"
        "    with open('/proc/self/status') as f:\n"
        "        return int(next(l for l in f if l.startswith('VmHWM')).split()[1])\n"
        "with open('/proc/self/clear_refs', 'w') as f:\n"
        "    f.write('5')  # resets VmHWM to the current resident size\n"
        "before = peak()\n"
        "start = time.perf_counter()\n"
        "try:\n"
        f"    {call}\n"
        "    outcome = 'read'\n"
        "except W.WeightsMismatchError as e:\n"
        "    outcome = type(e).__name__ + ': ' + str(e)\n"
        "seconds = time.perf_counter() - start\n"
        "after = peak()\n"
        "print('RESULT ' + json.dumps(dict(outcome=outcome, seconds=seconds, "
        "before_kib=before, after_kib=after)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=fx.ROOT, env={**os.environ, "PYTHONPATH": fx.ROOT}, timeout=600)
    result = fx.result_of(proc)
    print(call, "->", result)
    return result


@pytest.mark.parametrize("via", ["read_state_dict", "convert_torchvision"])
@pytest.mark.parametrize("kind", list(_BOMB_VIEWS))
def test_zip_bomb_is_refused_quickly_in_little_memory(kind, via, tmp_path, fake_torch,
                                                      use_torch):
    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("measures the peak resident memory through Linux's /proc")
    path = str(tmp_path / "googlenet-bomb.pth")
    write_zip_bomb(path, fake_torch, _BOMB_VIEWS[kind])
    assert os.path.getsize(path) < 1 << 20  # a small file ...
    if via == "read_state_dict":
        call = f"W.read_state_dict({path!r}, use_torch={use_torch!r})"
    else:  # the converter passes the variant's expected names and shapes
        call = (f"W.torchvision.read_state_dict = lambda p, **kw: "
                f"W.pth_reader.read_state_dict(p, use_torch={use_torch!r}, **kw); "
                f"W.convert_torchvision({path!r})")
    result = _measure_in_subprocess(call, use_torch)
    outcome = result["outcome"]
    assert outcome != "read"
    if via == "convert_torchvision" and kind == "whole-storage":
        # The expected shapes refuse it first, naming the tensor.
        assert re.search(r"'conv1\.conv\.weight'.*\(41943040,\).*\(64, 3, 7, 7\)", outcome), \
            outcome
    elif via == "convert_torchvision":  # right shapes, but not all of googlenet's tensors
        assert re.search(r"missing tensor '[\w.]+'", outcome), outcome
    else:
        assert outcome.startswith("NotAStateDictError") and "storage" in outcome, outcome
        assert re.search(r"storage '?0'? .*41943040 elements", outcome), outcome
    growth_mib = (result["after_kib"] - result["before_kib"]) / 1024
    assert growth_mib < 200, f"peak RSS grew by {growth_mib:.0f} MiB"
    assert result["seconds"] < 5, result


def test_legacy_storage_declaring_a_huge_size_is_refused_before_reading(tmp_path,
                                                                        fake_torch):
    path = str(tmp_path / "legacy-bomb.pth")
    numel = 2 ** 31  # declared: 8 GiB of float32; the file holds 4 floats
    write_legacy(path, fake_torch,
                 {"w": _Tensor(fake_torch, _Storage("0", numel), 0, (4,), (1,))},
                 {"0": np.zeros(4)})
    with open(path, "r+b") as f:  # the storage's own header claims the same size
        f.seek(-(8 + 16), os.SEEK_END)
        f.write(np.int64(numel).tobytes())
    with pytest.raises(W.NotAStateDictError, match=f"storage '?0'? .*{numel} elements"):
        W.read_state_dict(path, use_torch=False)


@pytest.mark.parametrize("writer", [write_zip, write_legacy], ids=["zip", "legacy"])
def test_storage_far_larger_than_its_views_is_refused(writer, tmp_path, fake_torch):
    path = str(tmp_path / "padded.pth")
    state = {"w": _Tensor(fake_torch, _Storage("0", 100000), 0, (2, 2), (2, 1))}
    writer(path, fake_torch, state, {"0": np.zeros(100000)})
    with pytest.raises(W.NotAStateDictError,
                       match="storage '?0'? .*100000 elements.*(use|need)s? 4"):
        W.read_state_dict(path, use_torch=False)


def test_oversized_pickle_is_refused_before_unpickling(tmp_path, fake_torch):
    path = str(tmp_path / "big-pickle.pth")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": "x" * (32 << 20)}))
    with pytest.raises(W.NotAStateDictError, match="data.pkl"):
        W.read_state_dict(path, use_torch=False)


@pytest.mark.parametrize("writer", [write_zip, write_legacy], ids=["zip", "legacy"])
def test_expected_names_and_shapes_are_checked_before_any_storage(writer, tmp_path,
                                                                  fake_torch, use_torch):
    """No storage in the file at all: the name/shape error comes first."""
    path = str(tmp_path / "shapes.pth")
    state = {"a": _Tensor(fake_torch, _Storage("0", 6), 0, (2, 3), (3, 1)),
             "b": _Tensor(fake_torch, _Storage("1", 4), 0, (4,), (1,))}
    writer(path, fake_torch, state, {})
    expected = {"a": (3, 2), "b": (4,)}
    with pytest.raises(W.WeightsMismatchError, match=r"'a'.*\(2, 3\).*expected \(3, 2\)"):
        W.read_state_dict(path, use_torch=use_torch, expected=expected)
    with pytest.raises(W.WeightsMismatchError, match=r"unexpected tensor 'b'"):
        W.read_state_dict(path, use_torch=use_torch, expected={"a": (2, 3)})
    with pytest.raises(W.WeightsMismatchError, match=r"missing tensor 'c'"):
        W.read_state_dict(path, use_torch=use_torch,
                          expected={"a": (2, 3), "b": (4,), "c": (1,)})
    # Optional names may be absent; None matches any size.
    with pytest.raises(W.NotAStateDictError, match="storage"):  # now it reads: none there
        W.read_state_dict(path, use_torch=use_torch,
                          expected={"a": (2, None), "b": (4,), "c": (1,)}, optional={"c"})


def test_converter_refuses_a_wrong_shape_naming_the_tensor(tmp_path, fake_torch):
    """A full torch-free torchvision state dict: it converts; one wrong shape
    is refused, named, before its storages are read."""
    from keras_googlenet.weights import torchvision as tv

    shapes, optional = tv.expected_state_dict()
    shapes = {k: tuple(1000 if n is None else n for n in v) for k, v in shapes.items()}
    rng = np.random.default_rng(0)
    storages, state = {}, {}
    for i, (name, shape) in enumerate(shapes.items()):
        numel = int(np.prod(shape, dtype=np.int64))
        storages[str(i)] = rng.normal(size=numel)
        state[name] = _Tensor(fake_torch, _Storage(str(i), numel), 0, shape, _contiguous(shape))
    path = str(tmp_path / "googlenet-tv.pth")
    write_zip(path, fake_torch, state, storages)
    read = W.read_state_dict(path, use_torch=False, expected=shapes)
    converted = tv.convert_torchvision(read, include_aux=True)
    assert converted["aux1_fc"][0].shape == (2048, 1024)
    np.testing.assert_allclose(converted["conv1_7x7_s2"][0],
                               storages[str(list(shapes).index("conv1.conv.weight"))]
                               .astype(np.float32).reshape(64, 3, 7, 7).transpose(2, 3, 1, 0))
    name = "inception4b.branch2.1.conv.weight"
    i = list(shapes).index(name)
    state[name] = _Tensor(fake_torch, _Storage(str(i), 224 * 112 * 25), 0, (224, 112, 5, 5),
                          (112 * 25, 25, 5, 1))
    write_zip(path, fake_torch, state, {})  # no storage at all
    with pytest.raises(W.WeightsMismatchError,
                       match=r"'inception4b\.branch2\.1\.conv\.weight'.*\(224, 112, 5, 5\).*"
                             r"expected \(224, 112, 3, 3\)"):
        W.read_state_dict(path, use_torch=False, expected=shapes, optional=optional)
    with pytest.raises(W.WeightsMismatchError, match=r"'inception4b\.branch2\.1\.conv\.weight'"):
        tv.convert_torchvision(path)


def test_storage_limit_is_the_largest_googlenet_tensor():
    from keras_googlenet.weights import pth_reader, torchvision as tv

    shapes, _ = tv.expected_state_dict()
    largest = max(int(np.prod(s)) for s in shapes.values() if None not in s)
    assert largest == pth_reader.LARGEST_GOOGLENET_TENSOR == 1024 * 2048  # aux fc1
    assert pth_reader.MAX_STORAGE_ELEMENTS == 2 * largest


@pytest.mark.parametrize("writer", [write_zip, write_legacy], ids=["zip", "legacy"])
def test_a_shared_storage_is_read_once(writer, tmp_path, fake_torch, monkeypatch):
    path = str(tmp_path / "shared.pth")
    data = np.arange(12, dtype=np.float32)
    views = {"a": (0, (3, 4), (4, 1)), "b": (4, (8,), (1,)), "t": (1, (4, 2), (1, 4)),
             "s": (11, (), ())}
    state = {k: _Tensor(fake_torch, _Storage("0", 12), *v) for k, v in views.items()}
    writer(path, fake_torch, state, {"0": data})
    opened = []
    real_open = zipfile.ZipFile.open

    def counting_open(self, name, *args, **kwargs):
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", counting_open)
    read = W.read_state_dict(path, use_torch=False)
    if writer is write_zip:
        assert opened.count("archive/data/0") == 1, opened
    # Contiguous views are views of the one buffer, not copies of it.
    assert np.shares_memory(read["a"], read["b"]) and np.shares_memory(read["a"], read["s"])
    np.testing.assert_array_equal(read["a"], data.reshape(3, 4))
    np.testing.assert_array_equal(read["b"], data[4:])
    np.testing.assert_array_equal(read["t"], data[1:9].reshape(2, 4).T)
    assert read["s"] == 11.0
