"""Reads a PyTorch state dict (`.pth`) into numpy arrays, running nothing.

With torch installed, `torch.load(weights_only=True)`; otherwise a small
pure-Python reader of both `torch.save` formats. A pickle is a program: every
pickle of the file goes through one restricted unpickler that resolves only
tensors, storages and OrderedDict, and every tensor view is checked against
its storage before it is built.

Sizes are checked before anything is materialised: the pickle is read first
(names, shapes, views and declared storage sizes, no storage bytes), then
the names and shapes against what the caller expects, then every storage's
declared size (a zip member's uncompressed size from the zip directory, or
the legacy format's element count) against the largest GoogLeNet tensor and
against what its views use. Only then is each storage read, once, and every
tensor is a view of that one buffer (a copy only for a non-contiguous view).
"""
import collections
import contextlib
import importlib.util
import os
import pickle
import zipfile

import numpy as np

from keras_googlenet.weights.common import WeightsMismatchError

# The largest tensor of any GoogLeNet variant: the auxiliary fc1, 1024 x (128 * 4 * 4)
# (torchvision's fc and Caffe's classifier are 1000 x 1024; the largest conv 663,552).
LARGEST_GOOGLENET_TENSOR = 1024 * 2048
# A storage larger than twice that belongs to no GoogLeNet: refused unread.
MAX_STORAGE_ELEMENTS = 2 * LARGEST_GOOGLENET_TENSOR
# All storages of a file: 2.5x the 13.0M elements of torchvision's googlenet with aux heads.
MAX_TOTAL_ELEMENTS = 32 * 2 ** 20
# Elements a storage may hold beyond what its tensors reach (torch.save writes none).
STORAGE_SLACK_ELEMENTS = 4096
# A zip's data.pkl holds names and views, no data: torchvision's googlenet's is 52 KB.
MAX_PICKLE_BYTES = 16 * 2 ** 20
_CHUNK_BYTES = 4 * 2 ** 20  # storages are read in chunks of this, into their one buffer


def read_state_dict(path, use_torch=None, expected=None, optional=()):
    """Reads a PyTorch state dict (`.pth`) into `{name: numpy array}`.

    Nothing in the file runs: with torch (`use_torch=None` uses it when it
    is installed) through `torch.load(weights_only=True)`, otherwise through
    a small pure-Python reader of the two `torch.save` formats (zip, and the
    legacy pickle format of 2019 files such as googlenet-1378be20.pth) whose
    unpickler accepts only tensors, storages and plain containers.

    Either way the file's pickle is first read without its storages, and the
    tensors' names and shapes (against `expected`) and the storages' declared
    sizes are checked before any storage byte is read: no storage may exceed
    `MAX_STORAGE_ELEMENTS` (twice the largest GoogLeNet tensor), nor what its
    tensors reach by more than `STORAGE_SLACK_ELEMENTS`, nor all of them
    `MAX_TOTAL_ELEMENTS`. Without torch each storage is then read once and
    every tensor is a view of it (copied only when not contiguous), so that
    tensors sharing a storage share memory, as they do in torch.

    Args:
        path: the `.pth` file.
        use_torch: read with torch (True), without (False) or whichever is
            installed (None).
        expected: optionally `{name: shape}`, the state dict the caller
            needs (a `None` in a shape matches any size). A tensor not named
            there, of another shape, or a name missing from the file (unless
            in `optional`) is refused, naming the tensor.
        optional: names of `expected` that the file may lack.

    Raises:
        NotAStateDictError: the file holds anything else, is damaged, or
            declares storages no GoogLeNet state dict has.
        WeightsMismatchError: its names or shapes are not `expected`.
    """
    path = os.fspath(path)
    if use_torch is None:
        use_torch = importlib.util.find_spec("torch") is not None
    try:
        with _TorchSaveFile(path) as saved:
            _check_names_and_shapes(path, saved.shapes(), expected, optional)
            saved.check_sizes()
            if not use_torch:
                return saved.read()
    except NotAStateDictError as e:
        raise NotAStateDictError(f"{path} is not a plain PyTorch state dict: {e}") from None
    except WeightsMismatchError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, OSError,
            AttributeError, IndexError, zipfile.BadZipFile, StopIteration) as e:
        raise NotAStateDictError(f"{path} is not a plain PyTorch state dict: {e}") from None
    import torch

    # Not mmap=True: it refuses deflated zip members and legacy files, and the
    # checks above already bound what torch.load allocates (each storage once).
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NotAStateDictError(
            f"{path} is not a plain PyTorch state dict: {first_line}") from None
    if not isinstance(state, dict):
        raise NotAStateDictError(f"{path} is not a plain PyTorch state dict: it "
                                 f"holds a {type(state).__name__}")
    state = {k: v for k, v in state.items() if hasattr(v, "detach")}
    _check_names_and_shapes(path, {k: tuple(v.shape) for k, v in state.items()}, expected,
                            optional)
    return {k: v.detach().cpu().numpy() for k, v in state.items()}


def _shape_str(shape):
    parts = ["any" if n is None else str(n) for n in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def _check_names_and_shapes(path, shapes, expected, optional=()):
    """Refuses, naming the tensor, a name of `shapes` ({name: shape or None
    for a non-tensor}) not in `expected`, a wrong shape, or a missing name."""
    if expected is None:
        return
    for name, shape in shapes.items():
        if name not in expected:
            raise WeightsMismatchError(
                f"{path} has an unexpected tensor {name!r}"
                + (f" (shape {_shape_str(shape)})" if shape is not None else "")
                + ": it is not a state dict of this model.")
        want = tuple(expected[name])
        if shape is None:
            raise WeightsMismatchError(f"{name!r} in {path} is not a tensor; expected one "
                                       f"of shape {_shape_str(want)}.")
        if len(shape) != len(want) or any(w is not None and w != n
                                          for n, w in zip(shape, want)):
            raise WeightsMismatchError(f"The tensor {name!r} in {path} has shape "
                                       f"{_shape_str(shape)}, expected {_shape_str(want)}.")
    optional = set(optional)
    for name, want in expected.items():
        if name not in shapes and name not in optional:
            raise WeightsMismatchError(f"{path} is missing tensor {name!r} "
                                       f"(shape {_shape_str(tuple(want))}).")


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


class _Storage:
    """A storage as the pickle declares it (key, dtype, element count); its
    bytes are read later, once, into `data`, after every size check."""

    def __init__(self, key, dtype, numel):
        self.key, self.dtype, self.numel = key, dtype, numel
        self.reach = 0  # elements its tensors use: the largest last index + 1
        self.data = None


class _StorageView:
    """A legacy-format view (offset, size) of a storage, checked to fit it."""

    def __init__(self, root, offset, numel):
        _check_view(root.numel, offset, (numel,), (1,))
        self.root, self.offset, self.numel = root, offset, numel


class _Tensor:
    """A tensor as the pickle declares it: a checked view of a `_Storage`."""

    def __init__(self, storage, offset, size, stride):
        numel, reach = _check_view(storage.numel, offset, size, stride)
        if isinstance(storage, _StorageView):  # a view of a view: of the root
            reach += storage.offset if reach else 0
            storage, offset = storage.root, storage.offset + offset
        self.storage, self.offset = storage, offset
        self.shape, self.stride, self.numel = tuple(size), tuple(stride), numel
        storage.reach = max(storage.reach, reach)

    def materialise(self):
        """A view of the storage's one buffer (a copy if not contiguous)."""
        data = self.storage.data
        if self.numel == 0:
            return np.zeros(self.shape, data.dtype)
        itemsize = data.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.shape,
            strides=tuple(s * itemsize for s in self.stride), writeable=False)
        if view.flags.c_contiguous:
            return data[self.offset:self.offset + self.numel].reshape(self.shape)
        return view.copy()


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_view(length, offset, size, stride):
    """Refuses a (offset, size, stride) view that leaves a storage of `length`.

    `as_strided` trusts its arguments: unchecked, a crafted file reads heap
    memory beyond the storage or crashes the process. Python integers do not
    overflow, so the arithmetic below is exact.

    Returns:
        `(numel, reach)`: the view's element count and the storage elements
        it reaches (its last index + 1; 0 when empty).
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
        return 0, 0
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    # A parameter never overlaps itself, so it has at most `length` elements.
    if last >= length or numel > length:
        raise NotAStateDictError(
            f"a tensor of size {size} (stride {stride}, offset {offset}) does not fit "
            f"its storage of {length} elements")
    return numel, last + 1


def _rebuild_tensor(storage, offset, size, stride, *args):
    if not isinstance(storage, (_Storage, _StorageView)):
        raise NotAStateDictError(f"a tensor is built on {type(storage).__name__}, not a storage")
    return _Tensor(storage, offset, size, stride)


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles plain data, tensors and OrderedDicts; refuses any other global."""

    def __init__(self, file, storages=None):
        super().__init__(file)
        self._storages = storages  # key -> _Storage, shared by the file's pickles
        self.tensors = 0  # tensors built, nested ones included

    def _rebuild_tensor(self, *args):
        self.tensors += 1
        return _rebuild_tensor(*args)

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return self._rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a state dict "
                                     "never needs (refused: unpickling it could run code)")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel[, view_metadata]);
        # legacy files may store a view (view_key, offset, size) of a storage.
        # Every use of a storage repeats its id: one _Storage per key, never
        # one read per use.
        if (self._storages is None or not isinstance(pid, tuple) or len(pid) < 5
                or pid[0] != "storage" or not isinstance(pid[1], _StorageType)
                or not _is_int(pid[4]) or pid[4] < 0):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        dtype, key, numel = pid[1].dtype, str(pid[2]), pid[4]
        storage = self._storages.setdefault(key, _Storage(key, dtype, numel))
        if (storage.dtype, storage.numel) != (dtype, numel):
            raise NotAStateDictError(f"storage {key!r} is declared twice, as {storage.numel} "
                                     f"{storage.dtype} and as {numel} {dtype}")
        view = pid[5] if len(pid) > 5 else None
        if view is None:
            return storage
        if not (isinstance(view, tuple) and len(view) == 3
                and _is_int(view[1]) and _is_int(view[2])):
            raise pickle.UnpicklingError(f"malformed storage view {view!r:.80}")
        return _StorageView(storage, view[1], view[2])


class _TorchSaveFile:
    """An open `torch.save` file whose pickle is read, but no storage yet.

    `shapes()` and `check_sizes()` look at what the pickle and the zip
    directory declare; `read()` then reads every storage once.
    """

    def __init__(self, path):
        self.path = path
        self.storages = {}
        self._stack = contextlib.ExitStack()

    def __enter__(self):
        try:
            if zipfile.is_zipfile(self.path):
                self._open_zip()
            else:
                self._open_legacy()
            if not isinstance(self.state, dict):
                raise NotAStateDictError(f"it holds a {type(self.state).__name__}, not a dict")
            tensors = [v for v in self.state.values() if isinstance(v, _Tensor)]
            if len(tensors) != self._unpickler_tensors:
                raise NotAStateDictError("a tensor is nested inside a value (a state dict "
                                         "is flat)")
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc):
        self._stack.close()

    def _load(self, f):
        unpickler = _StateDictUnpickler(f, self.storages)
        return unpickler.load(), unpickler.tensors

    def _open_zip(self):
        self._archive = archive = self._stack.enter_context(zipfile.ZipFile(self.path))
        pkl = next(n for n in archive.namelist() if n.endswith("data.pkl"))
        self._prefix = pkl[: -len("data.pkl")]
        size = archive.getinfo(pkl).file_size
        if size > MAX_PICKLE_BYTES:
            raise NotAStateDictError(f"its {pkl} is {size} bytes uncompressed, more than a "
                                     f"state dict's pickle ({MAX_PICKLE_BYTES} at most)")
        with archive.open(pkl) as f:
            self.state, self._unpickler_tensors = self._load(f)

    def _open_legacy(self):  # consecutive pickles, then the storages' bytes
        self._file = f = self._stack.enter_context(open(self.path, "rb"))
        if _StateDictUnpickler(f).load() != _LEGACY_MAGIC:
            raise NotAStateDictError("it is not a torch.save file")
        _StateDictUnpickler(f).load()  # protocol version
        _StateDictUnpickler(f).load()  # sys info
        self.state, self._unpickler_tensors = self._load(f)
        keys = _StateDictUnpickler(f).load()
        if not isinstance(keys, list):
            raise NotAStateDictError("its list of storages is not a list")
        self._keys = [str(key) for key in keys]

    def shapes(self):
        """`{name: shape}` (None for a value that is not a tensor)."""
        return {k: v.shape if isinstance(v, _Tensor) else None for k, v in self.state.items()}

    def check_sizes(self):
        """Refuses storages larger than GoogLeNet's tensors or than their
        views need, from their declared sizes (nothing decompressed)."""
        if not hasattr(self, "_archive") and sorted(self._keys) != sorted(self.storages):
            raise NotAStateDictError(
                f"its storages {sorted(self._keys)[:5]} are not the ones its tensors use "
                f"({sorted(self.storages)[:5]})")
        total = 0
        for key, storage in self.storages.items():
            declared = storage.numel
            if hasattr(self, "_archive"):
                name = f"{self._prefix}data/{key}"
                try:
                    member = self._archive.getinfo(name)
                except KeyError:
                    raise NotAStateDictError(f"storage {key!r} is not in the file") from None
                itemsize = storage.dtype.itemsize
                if member.file_size != declared * itemsize:
                    raise NotAStateDictError(
                        f"storage {key!r} holds {member.file_size} bytes, its pickle declares "
                        f"{declared} elements of {itemsize} bytes")
            if declared > MAX_STORAGE_ELEMENTS:
                raise NotAStateDictError(
                    f"storage {key!r} holds {declared} elements, more than any GoogLeNet "
                    f"tensor ({MAX_STORAGE_ELEMENTS} at most; the largest has "
                    f"{LARGEST_GOOGLENET_TENSOR})")
            if declared - storage.reach > STORAGE_SLACK_ELEMENTS:
                raise NotAStateDictError(
                    f"storage {key!r} holds {declared} elements, but its tensors use "
                    f"{storage.reach}")
            total += declared
        if total > MAX_TOTAL_ELEMENTS:
            raise NotAStateDictError(
                f"its storages hold {total} elements, more than a GoogLeNet state dict "
                f"({MAX_TOTAL_ELEMENTS} at most)")

    def read(self):
        """Reads every storage once; `{name: array}` (values that are not
        tensors as unpickled)."""
        if hasattr(self, "_archive"):
            for key, storage in self.storages.items():
                with self._archive.open(f"{self._prefix}data/{key}") as f:
                    storage.data = _read_storage(f, storage)
        else:
            for key in self._keys:
                storage = self.storages[key]
                header = self._file.read(8)
                numel = int(np.frombuffer(header, dtype="<i8")[0]) if len(header) == 8 else -1
                if numel != storage.numel:
                    raise NotAStateDictError(
                        f"storage {key!r} is truncated" if numel < 0 else
                        f"storage {key!r} holds {numel} elements, its pickle declares "
                        f"{storage.numel}")
                storage.data = _read_storage(self._file, storage)
        return {k: v.materialise() if isinstance(v, _Tensor) else v
                for k, v in self.state.items()}


def _read_storage(f, storage):
    """The storage's bytes from `f`, into one buffer, in bounded chunks."""
    data = np.empty(storage.numel, storage.dtype)
    raw = memoryview(data.view(np.uint8))
    done = 0
    while done < len(raw):
        n = f.readinto(raw[done:done + _CHUNK_BYTES])
        if not n:
            raise NotAStateDictError(f"storage {storage.key!r} is truncated")
        done += n
    if isinstance(f, zipfile.ZipExtFile) and f.read(1):  # also checks the CRC
        raise NotAStateDictError(f"storage {storage.key!r} is longer than declared")
    return data
