"""The numbered versions of a TF Serving base directory.

TF Serving watches `base_dir/<version>/` and serves the highest number.
`write_version` fills a hidden `base_dir/.tmp-export-<host>-pid<pid>-*`
directory and renames it into place: a version appears whole or not at all,
and concurrent exports never clobber each other's. The temporary
directories of killed exports are removed by the next export
(`remove_stale_temp_dirs`).
"""
import errno
import os
import shutil
import socket
import tempfile
import time

from keras_googlenet import files
# Reading the layout is the readers' (inference): written here, read there.
from keras_googlenet.inference.predictors import existing_versions, latest_version_dir  # noqa: F401,E501

# TF Serving only loads children whose names are integers, so a name starting
# with a dot is never picked up half-written.
TEMP_PREFIX = ".tmp-export-"
# A temporary directory whose export is gone: its process is dead (same
# host), or it is older than this (another host, or a name without a pid).
STALE_TEMP_SECONDS = 24 * 3600
# Concurrent exports racing for the next free version retry this often.
_MAX_VERSION_ATTEMPTS = 1000


def check_version(version):
    """Raises a ValueError unless `version` is a positive int or None."""
    if version is not None and (
            isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise ValueError(
            f"`version` must be a positive integer or None. Received: version={version!r}"
        )


def _exists_error(base_dir, version, where=""):
    return FileExistsError(
        f"Version {version} already exists in {base_dir!r}{where}; "
        "versions are never overwritten: pass another `version` or None."
    )


def _temp_owner_alive(name):
    """False when the export that made temporary directory `name` is dead
    (its pid is gone on this host); None when that cannot be told."""
    host, _, rest = name[len(TEMP_PREFIX):].rpartition("-pid")
    pid = rest.split("-", 1)[0]
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        pass
    return True


def remove_stale_temp_dirs(base_dir, max_age=STALE_TEMP_SECONDS):
    """Removes the `.tmp-export-*` directories of killed exports.

    A directory is stale when the process that made it is dead (its name
    holds host and pid), or when it is older than `max_age` seconds and its
    owner cannot be checked (another host). A live export's directory stays.

    Returns:
        The removed paths.
    """
    removed = []
    for name in os.listdir(base_dir):
        path = os.path.join(base_dir, name)
        if not name.startswith(TEMP_PREFIX) or not os.path.isdir(path):
            continue
        alive = _temp_owner_alive(name)
        try:
            old = time.time() - os.path.getmtime(path) > max_age
        except OSError:
            continue  # removed meanwhile by a concurrent export
        if alive is False or (alive is None and old):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _publish(temp_dir, base_dir, version):
    """Renames `temp_dir` to the version directory; returns its path.

    rename(2) is atomic on one filesystem and fails on a non-empty target,
    so a concurrent export never clobbers a version: with `version=None`
    the next free number is taken, retrying after a lost race.
    """
    number = 0
    for _ in range(_MAX_VERSION_ATTEMPTS):
        # Past the last number tried too: a plain file may hold a number.
        number = version or max((existing_versions(base_dir) or [0])[-1], number) + 1
        final_dir = os.path.join(base_dir, str(number))
        try:
            if os.path.exists(final_dir):  # an empty directory would be replaced
                raise FileExistsError(errno.EEXIST, "exists", final_dir)
            os.rename(temp_dir, final_dir)
            return final_dir
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            if version is not None:
                raise _exists_error(base_dir, version, f" ({final_dir})") from None
    raise RuntimeError(f"No free version found in {base_dir!r} after "
                       f"{_MAX_VERSION_ATTEMPTS} attempts (too many concurrent exports?).")


def write_version(base_dir, write, version=None):
    """Publishes a new version of `base_dir` that `write(directory)` fills.

    `write` fills a hidden temporary directory of `base_dir` (named after
    this host and process, so that `remove_stale_temp_dirs` can tell when it
    is stale), which gets the usual modes (`files.publish_permissions`: 0644,
    directories 0755, under umask 022) and is renamed into place. On any
    error, an interrupt included, it is removed and no version appears.

    Args:
        base_dir: the TF Serving model base directory (created if needed).
        write: a function of the directory to fill.
        version: positive int; None picks one more than the highest existing
            version (1 in an empty directory). An existing version is never
            overwritten.

    Returns:
        The path of the new version directory.
    """
    check_version(version)
    base_dir = os.fspath(base_dir)
    os.makedirs(base_dir, exist_ok=True)
    remove_stale_temp_dirs(base_dir)
    if version is not None and os.path.exists(os.path.join(base_dir, str(version))):
        raise _exists_error(base_dir, version)
    temp_dir = tempfile.mkdtemp(
        prefix=f"{TEMP_PREFIX}{socket.gethostname()}-pid{os.getpid()}-", dir=base_dir)
    try:
        write(temp_dir)
        files.publish_permissions(temp_dir)
        return _publish(temp_dir, base_dir, version)
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
