"""Fault injection for exports and image input (issue 11, items 6-8):
file modes of an export, racing exports, leftovers of killed exports,
re-run jobs, decompression bombs, empty batches and corrupt JPEGs."""
import json
import os
import socket
import stat
import struct
import subprocess
import sys
import textwrap
import time
import zlib

import pytest
import tensorflow as tf

import conftest as fx
from keras_googlenet import cli
from keras_googlenet.data import pipeline as data
from keras_googlenet.serving import export
from keras_googlenet.data import preprocessing
from keras_googlenet.data import sources


@pytest.fixture(scope="module")
def model():
    return fx.small_model()


@pytest.fixture(scope="module")
def serving(model, tmp_path_factory):
    """An in-memory serving module (no SavedModel round trip: fast)."""
    path = tmp_path_factory.mktemp("names") / "names.txt"
    path.write_text("\n".join(map(str, range(fx.CLASSES))) + "\n")
    return export.GoogLeNetServing(model, str(path), fx.IMAGE_SIZE, "caffe")


def _modes(root):
    return {os.path.relpath(os.path.join(d, n), root): stat.S_IMODE(os.stat(os.path.join(d, n)).st_mode)
            for d, dirs, files in os.walk(root) for n in dirs + files}


# ---------------------------------------------------------------------------
# Item 6: modes.
# ---------------------------------------------------------------------------
def test_export_is_readable_by_other_users(model, tmp_path):
    old = os.umask(0o022)
    try:
        path = export.export_saved_model(model, tmp_path / "base")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o755
    modes = _modes(path)
    assert modes["assets.extra/export_info.json"] == 0o644
    for name, mode in modes.items():
        expected = 0o755 if os.path.isdir(os.path.join(path, name)) else 0o644
        assert mode == expected, (name, oct(mode))


def test_publish_permissions_respects_another_umask(tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f.json").write_text("{}")
    os.chmod(tree / "sub" / "f.json", 0o600)
    os.chmod(tree / "sub", 0o700)
    old = os.umask(0o027)
    try:
        export.publish_permissions(str(tree))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tree / "sub").st_mode) == 0o750
    assert stat.S_IMODE(os.stat(tree / "sub" / "f.json").st_mode) == 0o640


# ---------------------------------------------------------------------------
# Item 7: racing exports, leftovers, re-runs.
# ---------------------------------------------------------------------------
def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _temp_name(pid, suffix):
    return f"{export.TEMP_PREFIX}{socket.gethostname()}-pid{pid}-{suffix}"


def test_stale_temp_dirs_go_live_ones_stay(tmp_path):
    dead = tmp_path / _temp_name(_dead_pid(), "dead")
    live = tmp_path / _temp_name(os.getpid(), "live")
    old_unowned = tmp_path / f"{export.TEMP_PREFIX}oldformat"
    new_unowned = tmp_path / f"{export.TEMP_PREFIX}newformat"
    for path in (dead, live, old_unowned, new_unowned):
        (path / "variables").mkdir(parents=True)
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old_unowned, (two_days_ago, two_days_ago))
    removed = export.remove_stale_temp_dirs(str(tmp_path))
    assert sorted(removed) == sorted([str(dead), str(old_unowned)])
    assert live.exists() and new_unowned.exists()


def test_racing_export_takes_the_next_free_version(model, tmp_path, monkeypatch):
    """Another export publishes version 1 between this export's look at the
    directory and its rename; a killed export left a temporary directory."""
    base = tmp_path / "base"
    (base / "1").mkdir(parents=True)
    (base / "1" / "saved_model.pb").write_bytes(b"the other export")
    stale = base / _temp_name(_dead_pid(), "killed")
    stale.mkdir()
    real = export.existing_versions
    calls = []

    def stale_view(base_dir):
        calls.append(base_dir)
        return [] if len(calls) == 1 else real(base_dir)  # the first look misses version 1

    monkeypatch.setattr(export, "existing_versions", stale_view)
    path = export.export_saved_model(model, base)
    assert path == str(base / "2")
    assert (base / "1" / "saved_model.pb").read_bytes() == b"the other export"
    assert not stale.exists()
    assert sorted(os.listdir(base)) == ["1", "2"]


def test_concurrent_exports_get_distinct_versions(model, tmp_path):
    import concurrent.futures

    base = tmp_path / "base"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda _: export.export_saved_model(model, base), range(2)))
    assert sorted(paths) == [str(base / "1"), str(base / "2")]
    assert sorted(os.listdir(base)) == ["1", "2"]


def test_rerun_of_a_finished_job_writes_no_new_version(tmp_path):
    out, base = tmp_path / "run", tmp_path / "export"
    argv = ["train", "--output-dir", str(out), "--export-dir", str(base), "--image-size", "65",
            "--batch-size", "4", "--steps-per-epoch", "1", "--epochs", "1", "--val-split", "",
            "--verbose", "0"]
    assert cli.main(argv) == 0
    assert cli.main(argv) == 0
    assert os.listdir(base) == ["1"]
    results = json.loads((out / "results.json").read_text())
    assert results["export_path"] == str(base / "1")
    assert stat.S_IMODE(os.stat(out / "results.json").st_mode) == 0o666 & ~_current_umask()


def _current_umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------
# Item 8: image size from the header, empty batches, corrupt JPEGs.
# ---------------------------------------------------------------------------
def png_bomb(width=23000, height=23000):
    """A valid PNG header declaring width x height, with a tiny zlib body."""

    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))

    body = zlib.compress(b"\x00" * (width + 1) * 64, 9)  # 64 rows of zeros
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body)
            + chunk(b"IEND", b""))


def _mid_corrupt_jpeg():
    """A JPEG with a marker (FF 01) written into the middle of its compressed
    data, where libjpeg says "Corrupt JPEG data"."""
    good = bytearray(fx.jpeg(120, 120, seed=3))
    middle = len(good) // 2
    good[middle:middle + 2] = b"\xff\x01"
    return bytes(good)


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "BMP", "WEBP"])
def test_header_sizes_of_every_format(fmt):
    from keras_googlenet.data import image_header

    encoded = fx.encode(fx.random_array(70, 50, seed=1), fmt)
    height, width, _, intact = image_header.read_header(tf.constant(encoded))
    assert (int(height), int(width), bool(intact)) == (70, 50, True)


def test_signature_refuses_a_png_bomb_before_decoding(serving):
    bomb = png_bomb()
    assert len(bomb) < 100_000
    started = time.time()
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"image at batch index 1 is too large: 23000x23000 pixels "
                             r"\(PNG header\), more than max_pixels=67108864"):
        serving.serve_bytes(tf.constant([fx.jpeg(), bomb]))
    assert time.time() - started < 5


def test_data_source_refuses_a_png_bomb_before_decoding(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    (tmp_path / "a" / "bomb.png").write_bytes(png_bomb())
    (tmp_path / "b" / "ok.jpg").write_bytes(fx.jpeg())
    source = sources.folder_source(str(tmp_path), on_error="raise", validate="none")
    started = time.time()
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"image is too large: 23000x23000 pixels \(PNG header\)"):
        for _ in data.build_dataset(source, training=False, image_size=32, batch_size=2):
            pass
    assert time.time() - started < 5


def test_decode_image_refuses_a_png_bomb():
    with pytest.raises(tf.errors.InvalidArgumentError, match="23000x23000 pixels"):
        preprocessing.decode_image(tf.constant(png_bomb()))


def test_empty_batch_returns_empty_outputs(serving):
    outputs = serving.serve_bytes(tf.constant([], tf.string))
    assert outputs["probabilities"].shape == (0, fx.CLASSES)
    assert outputs["labels"].shape == (0, 5)


def test_mid_corrupt_jpeg_is_named_by_batch_index(serving):
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"image at batch index 2 is corrupt: damaged JPEG structure"):
        serving.serve_bytes(tf.constant([fx.jpeg(), fx.jpeg(seed=1), _mid_corrupt_jpeg()]))


def test_no_libjpeg_lines_on_stderr(tmp_path):
    """libjpeg writes to fd 2 from C; only a subprocess sees all of it."""
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(_mid_corrupt_jpeg())
    script = textwrap.dedent(f"""
        import tensorflow as tf
        from keras_googlenet.data import preprocessing
        try:
            preprocessing.decode_image(tf.io.read_file({str(corrupt)!r}))
        except tf.errors.InvalidArgumentError as error:
            print("refused:", "corrupt" in error.message)
    """)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=root, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
                                             PYTHONPATH=root), timeout=120)
    assert "refused: True" in proc.stdout, proc.stderr
    assert "Corrupt JPEG data" not in proc.stderr
    assert "premature end" not in proc.stderr
