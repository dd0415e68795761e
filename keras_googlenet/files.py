"""Writing files so that a reader never sees half of one, with the modes
other users (a TF Serving process) can read.

`atomic_write` writes text or bytes beside the destination and renames the
result into place; `atomic_path` does the same for a file that a library
writes itself (`model.save`); `publish_permissions` gives what `mkstemp`
and `mkdtemp` made 0600 / 0700 the modes of freshly created files. Every
writer of the package goes through these. Nothing here imports Keras.
"""
import contextlib
import json
import os
import tempfile


def process_umask():
    """The umask, read without changing it: `os.umask` sets it for every
    thread of the process, and a concurrent writer would use the wrong one."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc (macOS): the only way left
    os.umask(mask)
    return mask


def publish_permissions(path):
    """Gives `path` (a file, or a tree) the modes of freshly created files:
    directories 0777 and files 0666, minus the process umask (0755 / 0644
    under 022)."""
    mask = process_umask()
    if not os.path.isdir(path):
        os.chmod(path, 0o666 & ~mask)
        return
    for root, _, names in os.walk(path):
        os.chmod(root, 0o777 & ~mask)
        for name in names:
            os.chmod(os.path.join(root, name), 0o666 & ~mask)


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """A temporary path beside `path` to write to; when the block ends
    without an error it is made readable (`publish_permissions`) and
    renamed to `path`, else removed. `suffix` keeps an extension that the
    writer checks (".keras", ".weights.h5")."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        publish_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def atomic_write(path, data):
    """Writes `data` (str: UTF-8 text; bytes) to `path` atomically, synced
    to disk before the rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "w" if isinstance(data, str) else "wb",
                  **({"encoding": "utf-8"} if isinstance(data, str) else {})) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return path


def write_json(path, obj):
    """`atomic_write` of `obj` as indented, key-sorted JSON."""
    return atomic_write(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
