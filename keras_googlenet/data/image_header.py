"""Image width and height read from the encoded header, before any decoding.

A 1.5 MB PNG can declare 23000x23000 pixels: decoding it costs 1.6 GB and
seconds of CPU before a check on the decoded shape can refuse it. The
functions here read the size from the first bytes of PNG, JPEG, GIF, BMP and
WebP files with string ops only (`tf.strings.substr`, `tf.io.decode_raw`),
so the serving signature and the training pipelines refuse such images
before the decoder allocates anything. They are graph ops: they run eagerly,
in `tf.data` maps and in an exported SavedModel alike, and never raise on bad
bytes (a size they cannot read is reported as -1 and left to the decoder).
`image_format` is the package's one reader of the formats' magic numbers.

A GIF's logical screen (bytes 6..9) says nothing about what is decoded: a
59 KB file whose screen says 1x1 holds a 9000x9000 frame, and the decoder
allocates the canvas spanning all frames once per frame, every frame of an
animation decoded. So GIFs are walked block by block (`_gif_walk`: frame
descriptors read, extensions and image data skipped, in a bounded loop) and
frames x canvas height x canvas width is held against `max_pixels`.

JPEGs are walked marker by marker rather than with `tf.image.extract_jpeg_shape`,
which raises on a damaged header without saying which image of a batch it
was. The walk also checks the entropy-coded data for bytes that can only be
corruption (a marker that may not appear there): libjpeg would print
"Corrupt JPEG data" on stderr and decode garbage or fail with no image named.
"""
import keras  # noqa: F401  (imported before TensorFlow: see backends.py)
import tensorflow as tf

# 2**26 pixels: an 8000x8000 photo (64 MP) passes; a decompression bomb is
# refused before its pixels (and their float32 copy) are allocated.
DEFAULT_MAX_PIXELS = 2**26

# Enough for every fixed-position size field below (WebP's end at byte 30).
_HEAD = 32
# Segments before the first scan; real files have a dozen at most.
_MAX_JPEG_SEGMENTS = 512
# SOFn markers (C4 DHT, C8 JPG and CC DAC are not frames).
_JPEG_SOF = [0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF]
# Bytes that may follow 0xFF once the first scan started: stuffing (00), fill
# (FF), EOI, and the segments a progressive or multi-scan file puts between
# scans (DHT, DAC, SOS, DQT, DNL, DRI, APPn, COM). Restart markers D0-D7 are
# allowed only when the file defines a restart interval (DRI).
_SCAN_FOLLOWERS = [0x00, 0xFF, 0xD9, 0xC4, 0xCC, 0xDA, 0xDB, 0xDC, 0xDD, 0xFE,
                   *range(0xE0, 0xF0)]
# Steps of the GIF walk. A step reads a block's header, skips up to _GIF_RUN
# full (255-byte) sub-blocks and one more: real files take about two per
# frame plus one per 64 KB of image data. The cap bounds the CPU time one
# file can cost (docs/performance.md, "Image header checks"); a file that
# needs more (a frame hidden behind thousands of tiny blocks) is refused
# unchecked ("is too complex").
_MAX_GIF_STEPS = 2**13
_GIF_RUN = 256
# Bytes of the colour table that a GIF flags byte (screen or frame) announces.
_GIF_TABLES = [3 * 2 ** (flags % 8 + 1) if flags & 0x80 else 0 for flags in range(256)]


def _bytes_at(padded, start, size):
    """`size` bytes of `padded` from `start`, as int64 (padding reads as 0)."""
    return tf.cast(tf.io.decode_raw(tf.strings.substr(padded, start, size), tf.uint8), tf.int64)


def _big_endian(values):
    return tf.reduce_sum(values * (256 ** tf.range(tf.size(values, tf.int64) - 1, -1, -1,
                                                    dtype=tf.int64)))


def _little_endian(values):
    return _big_endian(tf.reverse(values, [0]))


def _jpeg_walk(padded, length):
    """(height, width, start of the scan data) of a JPEG; -1s when not found.

    Walks the segments from the SOI marker: FF, marker, 2-byte length.
    """

    def body(pos, height, width, scan):
        marker = _bytes_at(padded, pos, 4)
        is_sof = tf.reduce_any(tf.equal(marker[1], _JPEG_SOF))
        frame = _bytes_at(padded, pos + 5, 4)
        height = tf.where(is_sof, _big_endian(frame[:2]), height)
        width = tf.where(is_sof, _big_endian(frame[2:]), width)
        segment = _big_endian(marker[2:])
        scan = tf.where(tf.equal(marker[1], 0xDA), pos + 2 + segment, scan)
        # A fill byte (FF FF) advances by one; a bad byte ends the walk.
        step = tf.where(tf.equal(marker[1], 0xFF), tf.constant(1, tf.int64), 2 + segment)
        pos = tf.where(tf.equal(marker[0], 0xFF), pos + step, length)
        return pos, height, width, scan

    def cond(pos, height, width, scan):
        return tf.logical_and(pos + 4 <= length, scan < 0)

    minus_one = tf.constant(-1, tf.int64)
    _, height, width, scan = tf.while_loop(
        cond, body, (tf.constant(2, tf.int64), minus_one, minus_one, minus_one),
        maximum_iterations=_MAX_JPEG_SEGMENTS)
    return height, width, scan


@tf.function(input_signature=[tf.TensorSpec([], tf.string)])
def _gif_walk(encoded):
    """(frames, height, width, complete) of a GIF, from its block structure.

    The decoders allocate a canvas spanning the logical screen and every
    frame (left + width, top + height), once per frame; TensorFlow's even
    ignores the screen. So the frame descriptors (0x2C blocks) are read, and
    the extensions (0x21) and image data skipped sub-block by sub-block,
    until the trailer (0x3B), a byte that starts no block (the decoder stops
    there too) or the end of a truncated file. A frame counts once its
    10-byte descriptor was read (giflib allocates it before its data).
    `complete` is False when `_MAX_GIF_STEPS` ran out first.

    A `tf.function`, so that eager callers run the loop as one graph too.
    The body is kept to few ops: each costs about a microsecond per step.
    """
    length = tf.strings.length(encoded)
    data = tf.cast(tf.io.decode_raw(encoded + b"\x00", tf.uint8), tf.int32)  # Past the end: 0.
    last = tf.size(data) - 1

    def at(positions):
        return tf.gather(data, tf.minimum(positions, last))

    tables = tf.constant(_GIF_TABLES)
    screen = at(tf.range(6, 11))
    descriptor = tf.range(10)
    run = tf.range(_GIF_RUN + 1) * 256

    def body(pos, in_data, frames, canvas):
        # At a block: an image descriptor (0x2C, left, top, width, height,
        # flags) or an extension (0x21, label), then their sub-blocks.
        block = at(pos + descriptor)
        words = block[1:9:2] + 256 * block[2:9:2]
        is_image = ~in_data & tf.equal(block[0], 0x2C) & (pos + 10 <= length)
        is_extension = ~in_data & tf.equal(block[0], 0x21)
        frames += tf.cast(is_image, tf.int32)
        canvas = tf.where(is_image, tf.maximum(canvas, words[2:] + words[:2]), canvas)
        # Image data starts after the colour table and the LZW code size.
        start = tf.where(in_data, pos, tf.where(
            is_image, pos + 11 + tf.gather(tables, block[9]), pos + 2))
        # Sub-blocks (a size byte, then that many bytes): skip a run of full
        # ones, then one more; a size of 0, here or next, ends the chain.
        sizes = at(start + run)
        full = tf.reduce_sum(tf.math.cumprod(tf.cast(tf.equal(sizes[:-1], 255), tf.int32)))
        size = sizes[full]
        after = start + 256 * full + 1 + size
        last_one = tf.not_equal(size, 0) & tf.equal(at(after), 0)
        # The trailer, a byte that starts no block or a cut descriptor end it.
        pos = tf.where(in_data | is_image | is_extension,
                       after + tf.cast(last_one, tf.int32), length)
        return pos, ~(tf.equal(size, 0) | last_one), frames, canvas

    pos, _, frames, canvas = tf.while_loop(
        lambda pos, *_: pos < length, body,
        (13 + tf.gather(tables, screen[4]), tf.constant(False), tf.constant(0),
         screen[0:4:2] + 256 * screen[1:4:2]),
        maximum_iterations=_MAX_GIF_STEPS)
    canvas = tf.cast(canvas, tf.int64)
    return tf.cast(frames, tf.int64), canvas[1], canvas[0], pos >= length


def _jpeg_scan_is_clean(encoded, scan):
    """Whether every 0xFF after the first scan header is followed by a byte
    allowed there (see `_SCAN_FOLLOWERS`)."""
    data = tf.strings.substr(encoded, tf.maximum(scan, 0), tf.int64.max // 2)
    pieces = tf.strings.split(data, sep=b"\xff")[1:]
    # Each piece starts with the byte after an FF; one at the very end is empty.
    followers = tf.strings.substr(pieces, 0, 1)
    codes = tf.cast(tf.io.decode_raw(tf.strings.reduce_join(followers), tf.uint8), tf.int64)
    restart = tf.size(tf.strings.split(encoded, sep=b"\xff\xdd")) > 1  # a DRI segment
    allowed = tf.reduce_any(tf.equal(codes[:, None], tf.constant(_SCAN_FOLLOWERS, tf.int64)),
                            axis=1)
    allowed |= restart & (codes >= 0xD0) & (codes <= 0xD7)
    return tf.reduce_all(allowed)


def image_format(encoded):
    """The format of encoded images, from their leading bytes.

    Element-wise on a `tf.string` tensor of any shape: the serving signature
    sniffs a whole batch at once, `read_header` one image.

    Args:
        encoded: `tf.string` tensor.

    Returns:
        A `tf.string` tensor of the same shape: "jpeg", "png", "gif", "bmp",
        "webp", or "" for none of them.
    """
    encoded = tf.convert_to_tensor(encoded, tf.string)
    # Zero padding makes short strings safe to slice; no signature has a zero byte.
    head = tf.strings.substr(encoded + b"\x00" * 12, 0, 12)

    def at(start, magic):
        return tf.strings.substr(head, start, len(magic)) == magic

    is_jpeg = at(0, b"\xff\xd8\xff")
    is_png = at(0, b"\x89PNG\r\n\x1a\n")
    is_gif = at(0, b"GIF87a") | at(0, b"GIF89a")
    is_bmp = at(0, b"BM")
    is_webp = at(0, b"RIFF") & at(8, b"WEBP")
    return tf.where(is_jpeg, "jpeg", tf.where(is_png, "png", tf.where(
        is_gif, "gif", tf.where(is_bmp, "bmp", tf.where(is_webp, "webp", "")))))


def read_header(encoded):
    """Height, width and format of one encoded image, from its header.

    Args:
        encoded: scalar `tf.string`.

    Returns:
        `(height, width, format, intact)`: int64 scalars (-1 when the header
        cannot be read; for a GIF the canvas spanning its screen and every
        frame), a `tf.string` scalar ("jpeg", "png", "gif", "bmp", "webp" or
        "") and a bool, False for a JPEG whose structure is corrupt (markers
        out of place).
    """
    height, width, fmt, intact, _, _ = _read_sizes(encoded)
    return height, width, fmt, intact


def _read_sizes(encoded):
    """`read_header`'s values plus the number of frames (1 but for GIFs) and
    whether the GIF walk reached the end (True for the other formats)."""
    encoded = tf.convert_to_tensor(encoded, tf.string)
    length = tf.cast(tf.strings.length(encoded), tf.int64)
    # One copy with zero padding, so that short files read as zeros.
    padded = encoded + tf.constant(b"\x00" * _HEAD)
    head = _bytes_at(padded, 0, _HEAD)

    def word(start, size, big=False):
        values = head[start:start + size]
        return _big_endian(values) if big else _little_endian(values)

    fmt = image_format(encoded)
    # A PNG's size is in its first chunk, IHDR: without one, no format is read.
    fmt = tf.where((fmt == "png") & (tf.strings.substr(padded, 12, 4) != b"IHDR"), "", fmt)
    is_jpeg, is_png, is_gif, is_bmp, is_webp = (
        fmt == name for name in ("jpeg", "png", "gif", "bmp", "webp"))
    webp_chunk = tf.strings.substr(padded, 12, 4)

    def signed32(value):
        return tf.abs(tf.where(value >= 2**31, value - 2**32, value))  # top-down BMPs are < 0

    # BMP: BITMAPCOREHEADER (12 bytes) has 16-bit sizes, later headers 32-bit.
    core_bmp = tf.equal(word(14, 4), 12)
    bmp_width = tf.where(core_bmp, word(18, 2), signed32(word(18, 4)))
    bmp_height = tf.where(core_bmp, word(20, 2), signed32(word(22, 4)))
    # WebP: lossy "VP8 " (14-bit sizes), lossless "VP8L" (14-bit sizes - 1,
    # bit-packed) and extended "VP8X" (24-bit sizes - 1).
    vp8l = word(21, 4)
    webp_width = tf.where(
        webp_chunk == b"VP8 ", word(26, 2) % 2**14,
        tf.where(webp_chunk == b"VP8L", vp8l % 2**14 + 1,
                 tf.where(webp_chunk == b"VP8X", word(24, 3) + 1, tf.constant(-1, tf.int64))))
    webp_height = tf.where(
        webp_chunk == b"VP8 ", word(28, 2) % 2**14,
        tf.where(webp_chunk == b"VP8L", (vp8l // 2**14) % 2**14 + 1,
                 tf.where(webp_chunk == b"VP8X", word(27, 3) + 1, tf.constant(-1, tf.int64))))

    one, true = tf.constant(1, tf.int64), tf.constant(True)

    def jpeg():
        height, width, scan = _jpeg_walk(padded, length)
        intact = tf.logical_and(scan >= 0, _jpeg_scan_is_clean(encoded, scan))
        return height, width, intact, one, true

    def gif():
        frames, height, width, complete = _gif_walk(encoded)
        return height, width, true, frames, complete

    def other():
        height = tf.where(is_png, word(20, 4, big=True),
                          tf.where(is_bmp, bmp_height,
                                   tf.where(is_webp, webp_height, tf.constant(-1, tf.int64))))
        width = tf.where(is_png, word(16, 4, big=True),
                         tf.where(is_bmp, bmp_width,
                                  tf.where(is_webp, webp_width, tf.constant(-1, tf.int64))))
        return height, width, true, one, true

    height, width, intact, frames, complete = tf.cond(
        is_jpeg, jpeg, lambda: tf.cond(is_gif, gif, other))
    return height, width, fmt, intact, frames, complete


def header_problem(encoded, max_pixels=DEFAULT_MAX_PIXELS):
    """What the header says is wrong with one encoded image, or "".

    Args:
        encoded: scalar `tf.string`.
        max_pixels: largest height x width accepted (for a GIF, frames x
            canvas height x canvas width).

    Returns:
        A scalar `tf.string`: "" when the image may be decoded, else e.g.
        "is too large: 23000x23000 pixels (PNG header), more than
        max_pixels=67108864", worded to follow "image ..." in a message. A
        GIF's frames times its canvas are counted ("is too large: 17 frames
        of 2000x2000 pixels (GIF frames), ..."), and a GIF too long to walk
        (see `_MAX_GIF_STEPS`) "is too complex: ...".
    """
    height, width, fmt, intact, frames, complete = _read_sizes(encoded)
    # A GIF without frames is held to its logical screen's size alone.
    too_large = tf.maximum(frames, 1) * height * width > max_pixels
    dims = [tf.strings.as_string(height), "x", tf.strings.as_string(width), " pixels ("]
    limit = ", more than max_pixels=" + str(max_pixels)
    size = tf.strings.join(["is too large: ", *dims, tf.strings.upper(fmt), " header)", limit])
    count = tf.strings.join([tf.strings.as_string(frames),
                             tf.where(frames == 1, " frame of ", " frames of ")])
    size = tf.where((fmt == "gif") & (frames > 0),
                    tf.strings.join(["is too large: ", count, *dims, "GIF frames)", limit]), size)
    return tf.where(too_large, size, tf.where(
        ~complete, f"is too complex: more than {_MAX_GIF_STEPS} GIF blocks before its end, "
                   "not checked",
        tf.where(intact, "", "is corrupt: damaged JPEG structure (a marker out of place)")))


def checked(encoded, max_pixels=DEFAULT_MAX_PIXELS):
    """`encoded` itself, once its header passed `header_problem` (else an
    `InvalidArgumentError` "image is too large: ..." when it is used).

    Args:
        encoded: scalar `tf.string`.
        max_pixels: largest height x width accepted.

    Returns:
        The same scalar `tf.string`, to decode next.
    """
    encoded = tf.convert_to_tensor(encoded, tf.string)
    problem = header_problem(encoded, max_pixels)
    check = tf.debugging.Assert(tf.equal(problem, ""), [tf.strings.join(["image ", problem])])
    with tf.control_dependencies([check]):
        return tf.identity(encoded)
