"""Evidence that the Grad-CAM maps point at the object (issue 15, item 3).

One embedded digit (32x32; training digits from the train split, the
20 explained ones from the validation split) is pasted at a random position on a blank
160x160 canvas. A GoogLeNet (batch norm, 3 classes: digits 0-2) is trained
briefly in the test, and the peak of its Grad-CAM map must fall inside the
digit's box for at least 80% of 20 held-out 160x160 images.

Kept fast on two CPU cores:
- The model is fully convolutional up to global average pooling, so it is
  trained on 96x96 canvases (a third of the cost of 160x160) and explained
  on the issue's 160x160 ones, which it never saw: the maps have to follow
  the digit, not a canvas size.
- Batch-norm momentum 0.5 instead of 0.99: after ~65 steps the moving
  statistics used at inference would otherwise still be their initial values.
- The localisation is asserted at inception_4e (10x10 cells of 16 px at
  160x160). At inception_5b the map has 5x5 cells of 32 px, the digit's own
  size: the box contains exactly one cell centre per axis, so "peak inside
  the box" measures quantisation more than localisation. There the peak is
  asserted to lie within one cell of the box.
Seeds are fixed (data, weights, shuffling); the measured rates are printed.
"""
import numpy as np
import pytest

# Minutes each: the slow tier (CI runs it after the quick one).
pytestmark = pytest.mark.slow

CANVAS = 160
TRAIN_CANVAS = 96
DIGIT = 32
CLASSES = 3
TRAIN_IMAGES = 416  # 13 batches of 32: no partial batch, no retracing
EPOCHS = 5
HELD_OUT = 20


def paste(digits, labels, index, side, rng):
    canvases = np.zeros((len(index), side, side, 3), np.uint8)
    boxes = []
    for j, i in enumerate(index):
        y, x = rng.randint(0, side - DIGIT + 1, size=2)
        canvases[j, y:y + DIGIT, x:x + DIGIT] = digits[i]
        boxes.append((y, x))
    return canvases, labels[index], np.array(boxes)


@pytest.fixture(scope="module")
def trained():
    import keras

    from keras_googlenet.data import sources
    from keras_googlenet.models import GoogLeNet

    keras.utils.set_random_seed(0)
    rng = np.random.RandomState(0)

    def digits_of(split):
        digits, labels = [], []
        for image, label in sources.get_source("embedded", split).dataset().as_numpy_iterator():
            if label < CLASSES:
                digits.append(image)
                labels.append(label)
        return np.stack(digits), np.array(labels)

    digits, labels = digits_of("train")
    order = rng.permutation(len(labels))[:TRAIN_IMAGES]
    x_train, y_train, _ = paste(digits, labels, order, TRAIN_CANVAS, rng)
    # Held-out digits from the validation split, on the 160x160 canvas.
    digits, labels = digits_of("validation")
    order = rng.permutation(len(labels))[:HELD_OUT]
    x_test, y_test, boxes = paste(digits, labels, order, CANVAS, rng)

    model = GoogLeNet(input_shape=(None, None, 3), classes=CLASSES, batch_norm=True)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.5
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=False)
    model.fit(x_train.astype("float32") / 127.5 - 1.0, y_train, batch_size=32, epochs=EPOCHS,
              verbose=0, shuffle=True)
    return model, x_test, y_test, boxes


def peaks(maps):
    return np.array([np.unravel_index(np.argmax(m), m.shape) for m in maps])


def inside(points, boxes, margin=0):
    y, x = points[:, 0], points[:, 1]
    top, left = boxes[:, 0] - margin, boxes[:, 1] - margin
    return ((top <= y) & (y < top + DIGIT + 2 * margin)
            & (left <= x) & (x < left + DIGIT + 2 * margin))


def test_peak_falls_inside_the_digit(trained):
    from keras_googlenet.explain import compute, grad_cam

    model, images, labels, boxes = trained
    result = compute(model, images, layer="inception_4e", normalization="tf")
    assert result.maps.shape == (HELD_OUT, CANVAS, CANVAS)
    assert result.maps.min() >= 0.0 and result.maps.max() <= 1.0
    hits = inside(peaks(result.maps), boxes)
    accuracy = float((result.class_index == labels).mean())
    coarse = grad_cam(model, images, layer="inception_5b", normalization="tf")
    coarse_hits = inside(peaks(coarse), boxes)
    coarse_near = inside(peaks(coarse), boxes, margin=DIGIT)
    print(f"\nGrad-CAM peak inside the digit box: inception_4e {hits.sum()}/{HELD_OUT}, "
          f"inception_5b {coarse_hits.sum()}/{HELD_OUT} (within one 32-px cell: "
          f"{coarse_near.sum()}/{HELD_OUT}); top-1 accuracy {accuracy:.0%}")
    assert hits.mean() >= 0.8, f"only {hits.sum()}/{HELD_OUT} peaks inside the digit"
    assert coarse_near.mean() >= 0.8, f"5b: {coarse_near.sum()}/{HELD_OUT} within one cell"


def test_maps_are_not_uniform_and_depend_on_the_class(trained):
    from keras_googlenet.explain import grad_cam

    model, images, labels, _ = trained
    own = grad_cam(model, images[:6], class_index=labels[:6], layer="inception_4e",
                   normalization="tf")
    other = grad_cam(model, images[:6], class_index=(labels[:6] + 1) % CLASSES,
                     layer="inception_4e", normalization="tf")
    for cam in own:
        assert cam.max() == pytest.approx(1.0)
        assert cam.std() > 0.1  # a peak, not a flat map
    differences = np.abs(own - other).mean(axis=(1, 2))
    assert (differences > 0.05).all(), differences
