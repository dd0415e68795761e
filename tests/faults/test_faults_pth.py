"""Hostile .pth files: nothing in them runs, no view reads outside its storage.

The files are made here, without torch: a pickler writes stand-ins under the
same global names (`torch._utils._rebuild_tensor_v2`, `torch.FloatStorage`)
and persistent ids that `torch.save` writes.
"""
import io
import os
import pickle
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
