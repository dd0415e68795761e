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

import helpers as fx
from keras_googlenet import cli, files
from keras_googlenet.data import pipeline as data
from keras_googlenet.serving import export, signatures, versions
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
    return signatures.GoogLeNetServing(model, str(path), fx.IMAGE_SIZE, "caffe")


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
        files.publish_permissions(str(tree))
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
    return f"{versions.TEMP_PREFIX}{socket.gethostname()}-pid{pid}-{suffix}"


def test_stale_temp_dirs_go_live_ones_stay(tmp_path):
    dead = tmp_path / _temp_name(_dead_pid(), "dead")
    live = tmp_path / _temp_name(os.getpid(), "live")
    old_unowned = tmp_path / f"{versions.TEMP_PREFIX}oldformat"
    new_unowned = tmp_path / f"{versions.TEMP_PREFIX}newformat"
    for path in (dead, live, old_unowned, new_unowned):
        (path / "variables").mkdir(parents=True)
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old_unowned, (two_days_ago, two_days_ago))
    removed = versions.remove_stale_temp_dirs(str(tmp_path))
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
    real = versions.existing_versions
    calls = []

    def stale_view(base_dir):
        calls.append(base_dir)
        return [] if len(calls) == 1 else real(base_dir)  # the first look misses version 1

    monkeypatch.setattr(versions, "existing_versions", stale_view)
    path = export.export_saved_model(model, base)
    assert path == str(base / "2")
    assert (base / "1" / "saved_model.pb").read_bytes() == b"the other export"
    assert not stale.exists()
    assert sorted(os.listdir(base)) == ["1", "2"]


@pytest.mark.slow
def test_concurrent_exports_get_distinct_versions(model, tmp_path):
    import concurrent.futures

    base = tmp_path / "base"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda _: export.export_saved_model(model, base), range(2)))
    assert sorted(paths) == [str(base / "1"), str(base / "2")]
    assert sorted(os.listdir(base)) == ["1", "2"]


@pytest.mark.slow
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
    # Asked for another destination, the finished job exports there, once.
    other = tmp_path / "other"
    argv[argv.index(str(base))] = str(other)
    assert cli.main(argv) == 0
    assert cli.main(argv) == 0
    assert (os.listdir(base), os.listdir(other)) == (["1"], ["1"])
    assert json.loads((out / "results.json").read_text())["export_path"] == str(other / "1")


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


def _lzw_zeros(count):
    """GIF LZW data (minimum code size 2) for `count` pixels of colour 0.

    Emits strings of 1, 2, 3, ... zeros, each the code the previous one just
    defined, with a clear code before the table fills: 81 MP take ~55 KB.
    """
    codes = []
    remaining = count
    while True:
        size, next_code, longest = 3, 6, 1
        codes.append((4, size))  # clear
        while remaining and next_code < 4095:
            length = min(longest, remaining)
            codes.append((0 if length == 1 else 4 + length, size))
            remaining -= length
            longest += length == longest
            if next_code == 1 << size and size < 12:
                size += 1
            next_code += 1
        if not remaining:
            break
    codes.append((5, size))  # end of information
    value = bits = 0
    out = bytearray()
    for code, width in codes:
        value |= code << bits
        bits += width
        while bits >= 8:
            out.append(value & 0xFF)
            value >>= 8
            bits -= 8
    return bytes(out + (bytes([value]) if bits else b""))


def _sub_blocks(data):
    return b"".join(bytes([len(data[i:i + 255])]) + data[i:i + 255]
                    for i in range(0, len(data), 255)) + b"\x00"


def gif_bomb(screen=(1, 1), frames=((0, 0, 9000, 9000),), before_frames=b""):
    """A valid GIF whose logical screen is `screen` (width, height) and whose
    frames are `frames` (left, top, width, height), all pixels colour 0;
    `before_frames` is written between the header and the first frame."""
    out = b"GIF89a" + struct.pack("<HHBBB", *screen, 0, 0, 0) + before_frames
    for left, top, width, height in frames:
        out += b"!\xf9\x04\x00\x00\x00\x00\x00"  # graphic control extension
        out += b"," + struct.pack("<HHHHB", left, top, width, height, 0x81)  # 4-colour table
        out += bytes(range(12)) + b"\x02" + _sub_blocks(_lzw_zeros(width * height))
    return out + b";"


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


def test_gif_frames_larger_than_their_screen_are_refused():
    from keras_googlenet.data import image_header

    # The screen says 1x1; TensorFlow decodes at the frame's 300x400.
    tall = tf.constant(gif_bomb(screen=(1, 1), frames=((0, 0, 300, 400),)))
    assert [int(v) for v in image_header.read_header(tall)[:2]] == [400, 300]
    assert image_header.header_problem(tall, max_pixels=100 * 100).numpy().decode() == (
        "is too large: 1 frame of 400x300 pixels (GIF frames), more than max_pixels=10000")
    assert image_header.header_problem(tall, max_pixels=400 * 300).numpy() == b""
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"image is too large: 1 frame of 400x300 pixels \(GIF frames\)"):
        image_header.checked(tall, max_pixels=100 * 100)
    # A frame's offset widens the canvas: left 10 + width 30, top 20 + height 40.
    offset = tf.constant(gif_bomb(screen=(1, 1), frames=((10, 20, 30, 40),)))
    assert [int(v) for v in image_header.read_header(offset)[:2]] == [60, 40]
    assert b"1 frame of 60x40 pixels" in image_header.header_problem(offset, 2000).numpy()


def test_gif_bomb_behind_a_one_pixel_screen_is_refused_before_decoding():
    import io
    import resource

    from PIL import Image

    bomb = gif_bomb()
    assert len(bomb) < 100_000
    assert Image.open(io.BytesIO(bomb)).size == (9000, 9000)  # A real 81 MP frame.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.time()
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"image is too large: 1 frame of 9000x9000 pixels \(GIF frames\), "
                             r"more than max_pixels=67108864"):
        preprocessing.decode_image(tf.constant(bomb))
    assert time.time() - started < 5
    # Decoding would take 243 MB for the uint8 frame alone (ru_maxrss is in KiB).
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 100 * 1024


def test_animated_gif_whose_frames_together_exceed_the_limit():
    from PIL import Image

    from keras_googlenet.data import image_header

    frames = [Image.new("RGB", (60, 50), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    animated = tf.constant(fx.encode(frames[0], "GIF", save_all=True, append_images=frames[1:]))
    assert [int(v) for v in image_header.read_header(animated)[:2]] == [50, 60]
    assert image_header.header_problem(animated, max_pixels=3 * 3000 - 1).numpy().decode() == (
        "is too large: 3 frames of 50x60 pixels (GIF frames), more than max_pixels=8999")
    assert image_header.header_problem(animated, max_pixels=3 * 3000).numpy() == b""
    # Each 2000x2000 frame passes alone; 17 of them are 68 MP, over 2**26.
    def frames_of(count):
        return tf.constant(gif_bomb(screen=(2000, 2000), frames=[(0, 0, 2000, 2000)] * count))

    assert image_header.header_problem(frames_of(16)).numpy() == b""
    assert image_header.header_problem(frames_of(17)).numpy().decode() == (
        "is too large: 17 frames of 2000x2000 pixels (GIF frames), more than max_pixels=67108864")


def test_signature_refuses_a_gif_bomb_before_decoding(serving):
    started = time.time()
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"image at batch index 1 is too large: 1 frame of 9000x9000 pixels "
                             r"\(GIF frames\), more than max_pixels=67108864"):
        serving.serve_bytes(tf.constant([fx.jpeg(), gif_bomb()]))
    assert time.time() - started < 5


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_data_source_refuses_a_gif_bomb_before_decoding(tmp_path, on_error):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    (tmp_path / "a" / "bomb.gif").write_bytes(gif_bomb())
    (tmp_path / "b" / "ok.jpg").write_bytes(fx.jpeg())
    # The folder scan reads headers with PIL, which does not count pixels:
    # the bomb is listed and refused by the pipeline's header check.
    source = sources.folder_source(str(tmp_path), on_error=on_error)
    assert source.num_examples == 2 and source.skipped == []
    batches = data.build_dataset(source, training=False, image_size=32, batch_size=2)
    # Timed from the first read: building the pipeline is not decoding.
    started = time.time()
    if on_error == "raise":
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"image is too large: 1 frame of 9000x9000 pixels \(GIF frames\)"):
            for _ in batches:
                pass
    else:  # Dropped at run time, the JPEG kept.
        assert [int(labels.shape[0]) for _, labels in batches] == [1]
    assert time.time() - started < 5


def test_normal_and_damaged_gifs_pass_the_frame_walk():
    import numpy as np
    from PIL import Image

    from keras_googlenet.data import image_header

    def problem(encoded, max_pixels=image_header.DEFAULT_MAX_PIXELS):
        return image_header.header_problem(tf.constant(encoded), max_pixels).numpy().decode()

    still = fx.encode(fx.random_array(224, 224, seed=2), "GIF")
    frames = [Image.new("RGB", (8, 6), c) for c in ((255, 0, 0), (0, 0, 255))]
    animated = fx.encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert problem(still) == problem(animated) == ""
    assert preprocessing.decode_image(tf.constant(still)).shape == (224, 224, 3)
    assert preprocessing.decode_image(tf.constant(animated)).shape == (6, 8, 3)
    # Comment and loop extensions, several sub-blocks per frame: the walk
    # counts the frames TensorFlow decodes.
    rng = np.random.default_rng(0)
    noise = [Image.fromarray(rng.integers(0, 256, (30, 40, 3), np.uint8)) for _ in range(5)]
    noisy = fx.encode(noise[0], "GIF", save_all=True, append_images=noise[1:], loop=0,
                      comment=b"x" * 600)
    assert tf.io.decode_gif(noisy).shape == (5, 30, 40, 3)
    assert problem(noisy, max_pixels=5 * 30 * 40) == ""
    assert "is too large: 5 frames of 30x40 pixels" in problem(noisy, max_pixels=5 * 30 * 40 - 1)
    # Truncated or damaged: the walk stops and never raises. A frame whose
    # descriptor was read still counts (giflib allocates it before its data).
    bomb = gif_bomb()
    assert "9000x9000" in problem(bomb[:60])
    assert problem(bomb[:28], max_pixels=100) == ""  # Cut inside the descriptor.
    assert problem(b"GIF89a\x01\x00") == ""
    small = gif_bomb(frames=((0, 0, 4, 4),))[:-1]
    hidden = small + b"\x99" + gif_bomb()[13:]
    assert problem(hidden) == ""
    assert tf.io.decode_gif(hidden).shape == (1, 4, 4, 3)  # The decoder stops there too.
    for _ in range(20):
        damaged = bytearray(bomb[:400])
        for where, value in zip(rng.integers(13, 400, 8), rng.integers(0, 256, 8)):
            damaged[where] = value
        assert isinstance(problem(bytes(damaged)), str)


def test_gif_walk_is_bounded():
    from keras_googlenet.data import image_header

    steps = image_header._MAX_GIF_STEPS

    def comment(sub_blocks):  # A comment extension of one-byte sub-blocks.
        return b"!\xfe" + b"\x01c" * sub_blocks + b"\x00"

    hidden = gif_bomb(before_frames=comment(steps - 100))
    assert "1 frame of 9000x9000 pixels" in image_header.header_problem(hidden).numpy().decode()
    # Past the cap the walk cannot vouch for the rest: the image is refused.
    too_long = gif_bomb(frames=((0, 0, 4, 4),), before_frames=comment(2 * steps))
    started = time.time()
    assert image_header.header_problem(too_long).numpy().decode() == (
        f"is too complex: more than {steps} GIF blocks before its end, not checked")
    assert time.time() - started < 5

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
