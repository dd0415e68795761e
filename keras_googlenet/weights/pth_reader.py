"""Reads a PyTorch state dict (`.pth`) into numpy arrays, running nothing.

With torch installed, `torch.load(weights_only=True)`; otherwise a small
pure-Python reader of both `torch.save` formats. A pickle is a program: every
pickle of the file goes through one restricted unpickler that resolves only
tensors, storages and OrderedDict, and every tensor view is checked against
its storage before it is built.
"""
import collections
import importlib.util
import os
import pickle
import zipfile

import numpy as np

from keras_googlenet.weights.common import WeightsMismatchError

def read_state_dict(path, use_torch=None):
    """Reads a PyTorch state dict (`.pth`) into `{name: numpy array}`.

    Nothing in the file runs: with torch (`use_torch=None` uses it when it
    is installed) through `torch.load(weights_only=True)`, otherwise through
    a small pure-Python reader of the two `torch.save` formats (zip, and the
    legacy pickle format of 2019 files such as googlenet-1378be20.pth) whose
    unpickler accepts only tensors, storages and plain containers.

    Raises:
        NotAStateDictError: the file holds anything else, or is damaged.
    """
    if use_torch is None:
        use_torch = importlib.util.find_spec("torch") is not None
    if not use_torch:
        return _read_state_dict_without_torch(path)
    import torch

    try:
        state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NotAStateDictError(
            f"{os.fspath(path)} is not a plain PyTorch state dict: {first_line}") from None
    if not isinstance(state, dict):
        raise NotAStateDictError(f"{os.fspath(path)} is not a plain PyTorch state dict: it "
                                 f"holds a {type(state).__name__}")
    return {k: v.detach().cpu().numpy() for k, v in state.items() if hasattr(v, "detach")}


_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class NotAStateDictError(WeightsMismatchError):
    """A .pth file that is not a plain state dict of tensors (or is damaged)."""


class _StorageType:
    def __init__(self, name):
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _LazyStorage:
    """A legacy-format storage: its bytes follow the pickle that uses it."""

    def __init__(self, dtype, view=None):
        self.dtype = dtype
        self.view = view
        self._data = None

    @property
    def data(self):
        if self.view is not None:
            root, offset, size = self.view
            return root.data[offset:offset + size]
        if self._data is None:
            raise NotAStateDictError("a tensor uses a storage that the file does not contain")
        return self._data

    @data.setter
    def data(self, value):
        self._data = value


class _LazyTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = storage, offset, size, stride

    def resolve(self):
        storage, offset, size, stride = self.args
        return _rebuild_tensor(storage.data, offset, size, stride)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_view(length, offset, size, stride):
    """Refuses a (offset, size, stride) view that leaves a storage of `length`.

    `as_strided` trusts its arguments: unchecked, a crafted file reads heap
    memory beyond the storage or crashes the process. Python integers do not
    overflow, so the arithmetic below is exact.
    """
    size, stride = tuple(size), tuple(stride)
    if not (_is_int(offset) and all(map(_is_int, size + stride)) and len(size) == len(stride)):
        raise NotAStateDictError(f"malformed tensor view: offset {offset!r}, size {size!r}, "
                                 f"stride {stride!r}")
    if offset < 0 or min(size + stride, default=0) < 0:
        raise NotAStateDictError(f"negative tensor view: offset {offset}, size {size}, "
                                 f"stride {stride}")
    numel = int(np.prod(size, dtype=object)) if size else 1
    if numel == 0:
        return 0
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    # A parameter never overlaps itself, so it has at most `length` elements.
    if last >= length or numel > length:
        raise NotAStateDictError(
            f"a tensor of size {size} (stride {stride}, offset {offset}) does not fit "
            f"its storage of {length} elements")
    return numel


def _rebuild_tensor(storage, offset, size, stride, *args):
    if isinstance(storage, _LazyStorage):
        return _LazyTensor(storage, offset, size, stride)
    if not isinstance(storage, np.ndarray):
        raise NotAStateDictError(f"a tensor is built on {type(storage).__name__}, not a storage")
    if _check_view(len(storage), offset, size, stride) == 0:
        return np.zeros(tuple(size), storage.dtype)
    if not size:
        return storage[offset:offset + 1].reshape(()).copy()
    itemsize = storage.dtype.itemsize
    return np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)
    ).copy()


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles plain data, tensors and OrderedDicts; refuses any other global."""

    def __init__(self, file, load_storage=None):
        super().__init__(file)
        self._load_storage = load_storage

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a state dict "
                                     "never needs (refused: unpickling it could run code)")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel[, view_metadata]);
        # legacy files may store a view (view_key, offset, size) of a storage.
        if (self._load_storage is None or not isinstance(pid, tuple) or len(pid) < 5
                or pid[0] != "storage" or not isinstance(pid[1], _StorageType)
                or not _is_int(pid[4])):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        storage = self._load_storage(pid[1].dtype, str(pid[2]), pid[4])
        view = pid[5] if len(pid) > 5 else None
        if view is None:
            return storage
        if not (isinstance(view, tuple) and len(view) == 3
                and _is_int(view[1]) and _is_int(view[2])):
            raise pickle.UnpicklingError(f"malformed storage view {view!r:.80}")
        _, offset, size = view
        if isinstance(storage, _LazyStorage):
            return _LazyStorage(storage.dtype, view=(storage, offset, size))
        _check_view(len(storage), offset, (size,), (1,))
        return storage[offset:offset + size]


def _read_state_dict_without_torch(path):
    path = os.fspath(path)
    try:
        state = _read_torch_save(path)
        if not isinstance(state, dict):
            raise NotAStateDictError(f"it holds a {type(state).__name__}, not a dict")
        state = {k: (v.resolve() if isinstance(v, _LazyTensor) else v)
                 for k, v in state.items()}
    except NotAStateDictError as e:
        raise NotAStateDictError(f"{path} is not a plain PyTorch state dict: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError,
            AttributeError, IndexError, zipfile.BadZipFile, StopIteration) as e:
        raise NotAStateDictError(f"{path} is not a plain PyTorch state dict: {e}") from None
    return state


def _read_torch_save(path):
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            pkl = next(n for n in archive.namelist() if n.endswith("data.pkl"))
            prefix = pkl[: -len("data.pkl")]

            def load_storage(dtype, key, numel):
                data = np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype=dtype)
                if len(data) < numel:
                    raise NotAStateDictError(f"storage {key} is truncated")
                return data

            with archive.open(pkl) as f:
                return _StateDictUnpickler(f, load_storage).load()
    with open(path, "rb") as f:  # legacy format: consecutive pickles
        if _StateDictUnpickler(f).load() != _LEGACY_MAGIC:
            raise NotAStateDictError("it is not a torch.save file")
        _StateDictUnpickler(f).load()  # protocol version
        _StateDictUnpickler(f).load()  # sys info
        storages = {}

        def load_storage(dtype, key, numel):
            return storages.setdefault(key, _LazyStorage(dtype))

        state = _StateDictUnpickler(f, load_storage).load()
        for key in _StateDictUnpickler(f).load():
            storage = storages[str(key)]
            numel = int(np.frombuffer(f.read(8), dtype="<i8")[0])
            nbytes = numel * storage.dtype.itemsize
            data = f.read(nbytes)
            if numel < 0 or len(data) != nbytes:
                raise NotAStateDictError(f"storage {key} is truncated")
            storage.data = np.frombuffer(data, dtype=storage.dtype)
    return state
