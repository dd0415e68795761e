"""Converters of the published GoogLeNet ImageNet weights (keras_googlenet.weights).

Each converter is checked against a reference network written in the source
framework with random weights, saved in the published format:

* ONNX: bvlc_googlenet written with `onnx.helper` under the ONNX model zoo's
  (Caffe2-exported) naming -- initializers `conv1/7x7_s2_w_0` /
  `conv1/7x7_s2_b_0`, node outputs `conv1/7x7_s2_1`, input `data_0`, output
  `prob_1` -- with Caffe's semantics (ceil-mode pools, LRN 5/1e-4/0.75, fc
  after a CHW flatten), run with onnxruntime.
* torch: torchvision's googlenet module structure re-written with torch.nn
  (same parameter names, same ops: ceil-mode pools, the 2x2 pool4, the "5x5"
  branch as 3x3, transform_input), saved with torch.save. Skipped without
  torch.
"""
import hashlib
import os
import warnings

import numpy as np
import pytest

import keras_googlenet as kg
from keras_googlenet.models import architecture
from keras_googlenet import weights as W

TOL = 1e-4


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _close(actual, expected, tol=TOL):
    """Equal within `tol`, relative to the reference's scale (>= 1)."""
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


# ---------------------------------------------------------------------------
# Reference bvlc_googlenet in ONNX.
# ---------------------------------------------------------------------------
def bvlc_onnx(size=224, aux=False, seed=0, classes=1000, skip=()):
    """The Caffe bvlc_googlenet as an ONNX graph with random weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def init(name, array):
        inits.append(numpy_helper.from_array(array.astype(np.float32), name))

    def conv(name, x, cin, cout, k, stride=1, pad=None, relu=True):
        pad = k // 2 if pad is None else pad
        w = rng.normal(0, (2.0 / (cin * k * k)) ** 0.5, (cout, cin, k, k))
        if name not in skip:
            init(f"{name}_w_0", w)
            init(f"{name}_b_0", rng.normal(0, 0.1, cout))
        nodes.append(helper.make_node(
            "Conv", [x, f"{name}_w_0", f"{name}_b_0"], [f"{name}_1"],
            kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4))
        if not relu:
            return f"{name}_1"
        nodes.append(helper.make_node("Relu", [f"{name}_1"], [f"{name}_2"]))
        return f"{name}_2"

    def fc(name, x, units_in, units_out, relu=False):
        # Small gain: the features are at Caffe's pixel scale (~100); keep
        # the logits O(1) so that the softmax does not saturate.
        init(f"{name}_w_0", rng.normal(0, 0.02 / units_in ** 0.5, (units_out, units_in)))
        init(f"{name}_b_0", rng.normal(0, 0.1, units_out))
        nodes.append(helper.make_node(
            "Gemm", [x, f"{name}_w_0", f"{name}_b_0"], [f"{name}_1"], transB=1))
        if relu:
            nodes.append(helper.make_node("Relu", [f"{name}_1"], [f"{name}_2"]))
            return f"{name}_2"
        return f"{name}_1"

    def maxpool(name, x, k=3, stride=2, pad=0):
        nodes.append(helper.make_node(
            "MaxPool", [x], [f"{name}_1"], kernel_shape=[k, k], strides=[stride] * 2,
            pads=[pad] * 4, ceil_mode=1))
        return f"{name}_1"

    def lrn(name, x):
        nodes.append(helper.make_node(
            "LRN", [x], [f"{name}_1"], size=5, alpha=1e-4, beta=0.75, bias=1.0))
        return f"{name}_1"

    def aux_head(name, x, cin, side):
        x = conv(f"{name}/conv", _avgpool(f"{name}/ave_pool", x, 5, 3), cin, 128, 1)
        nodes.append(helper.make_node("Flatten", [x], [f"{name}/flat_1"]))
        x = fc(f"{name}/fc", f"{name}/flat_1", 128 * side * side, 1024, relu=True)
        return fc(f"{name}/classifier", x, 1024, classes)

    def _avgpool(name, x, k, stride):
        nodes.append(helper.make_node(
            "AveragePool", [x], [f"{name}_1"], kernel_shape=[k, k], strides=[stride] * 2))
        return f"{name}_1"

    x = conv("conv1/7x7_s2", "data_0", 3, 64, 7, 2, 3)
    x = lrn("pool1/norm1", maxpool("pool1/3x3_s2", x))
    x = conv("conv2/3x3_reduce", x, 64, 64, 1)
    x = conv("conv2/3x3", x, 64, 192, 3)
    x = maxpool("pool2/3x3_s2", lrn("conv2/norm2", x))
    cin, side, outputs = 192, size // 8, []
    for row in architecture.INCEPTION_ROWS:
        if isinstance(row, str):
            x = maxpool(row[:-len("_3x3_s2")] + "/3x3_s2", x)
            side //= 2
            continue
        block = row.name
        b1 = conv(f"{block}/1x1", x, cin, row.ch1x1, 1)
        b2 = conv(f"{block}/3x3", conv(f"{block}/3x3_reduce", x, cin, row.ch3x3_reduce, 1),
                  row.ch3x3_reduce, row.ch3x3, 3)
        b3 = conv(f"{block}/5x5", conv(f"{block}/5x5_reduce", x, cin, row.ch5x5_reduce, 1),
                  row.ch5x5_reduce, row.ch5x5, 5)
        b4 = conv(f"{block}/pool_proj", maxpool(f"{block}/pool", x, 3, 1, 1), cin,
                  row.pool_proj, 1)
        nodes.append(helper.make_node("Concat", [b1, b2, b3, b4], [f"{block}/output_1"], axis=1))
        x, cin = f"{block}/output_1", architecture.block_output_channels(row)
        if aux and block in ("inception_4a", "inception_4d"):
            head = "loss1" if block == "inception_4a" else "loss2"
            outputs.append(aux_head(head, x, cin, (side - 5) // 3 + 1))
    x = _avgpool("pool5/7x7_s1", x, side, 1)
    nodes.append(helper.make_node("Flatten", [x], ["pool5/flat_1"]))
    logits = fc("loss3/classifier", "pool5/flat_1", 1024, classes)
    nodes.append(helper.make_node("Softmax", [logits], ["prob_1"], axis=1))
    names = ["prob_1", logits] + outputs
    graph = helper.make_graph(
        nodes, "bvlc_googlenet",
        [helper.make_tensor_value_info("data_0", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, classes]) for n in names],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    model.ir_version = 7
    if not skip:
        onnx.checker.check_model(model)
    return model, names


def run_onnx(model, x_nhwc):
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"data_0": np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))})


def caffe_input(size, seed=1):
    """What Caffe sees: BGR pixels in [0, 255] minus the means (large values,
    so that LRN really normalises)."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 255, (1, size, size, 3)) - [104.0, 117.0, 123.0]).astype(np.float32)


@pytest.fixture(scope="module")
def bvlc_file(tmp_path_factory):
    import onnx

    model, names = bvlc_onnx(224, aux=True)
    path = str(tmp_path_factory.mktemp("onnx") / "googlenet-12.onnx")
    onnx.save(model, path)
    x = caffe_input(224)
    return path, x, dict(zip(names, run_onnx(model, x)))


def test_onnx_bvlc_matches_onnxruntime_at_224(bvlc_file):
    path, x, ref = bvlc_file
    model = kg.GoogLeNet(aux_classifiers=True, classifier_activation=None)
    W.load_onnx_bvlc(model, path)
    out = model.predict(x, verbose=0)
    _close(out["predictions"], ref["loss3/classifier_1"])
    _close(_softmax(out["predictions"]), ref["prob_1"])
    # Auxiliary fc: Caffe's CHW flatten re-ordered to Keras's HWC flatten.
    _close(out["aux1"], ref["loss1/classifier_1"])
    _close(out["aux2"], ref["loss2/classifier_1"])


def test_googlenet_weights_onnx_path_and_backbone(bvlc_file):
    path, x, ref = bvlc_file
    model = kg.GoogLeNet(weights=path)  # softmax, no aux heads
    _close(model.predict(x, verbose=0), ref["prob_1"])
    backbone = kg.GoogLeNet(include_top=False, weights=path, pooling="avg")
    assert backbone.output_shape == (None, 1024)
    np.testing.assert_array_equal(
        backbone.get_layer("inception_5b_1x1").get_weights()[0],
        model.get_layer("inception_5b_1x1").get_weights()[0])


def test_onnx_bvlc_small_input_and_converted_file(tmp_path):
    onnx_model, names = bvlc_onnx(96, seed=3)
    x = caffe_input(96, seed=4)
    ref = dict(zip(names, run_onnx(onnx_model, x)))
    converted = W.convert_onnx_bvlc(onnx_model)
    assert converted["conv1_7x7_s2"][0].shape == (7, 7, 3, 64)
    assert converted.sources["inception_3a_5x5"] == ["inception_3a/5x5_w_0",
                                                     "inception_3a/5x5_b_0"]
    model = kg.GoogLeNet(input_shape=(96, 96, 3), classifier_activation=None)
    W.load_converted(model, converted)
    _close(model.predict(x, verbose=0), ref["loss3/classifier_1"])
    out = W.save_converted(model, tmp_path / "bvlc.weights.h5")
    again = kg.GoogLeNet(input_shape=(96, 96, 3), classifier_activation=None, weights=out)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


# ---------------------------------------------------------------------------
# Errors.
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bvlc_converted():
    return W.convert_onnx_bvlc(bvlc_onnx(64, seed=5)[0])


def _small(**kwargs):
    return kg.GoogLeNet(include_top=False, input_shape=(32, 32, 3), **kwargs)


def test_wrong_onnx_file_names_the_tensor():
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "resnetv1/conv0_weight")
    b = numpy_helper.from_array(np.zeros(8, np.float32), "resnetv1/conv0_bias")
    node = helper.make_node("Conv", ["data", w.name, b.name], ["resnetv1/conv0_fwd"])
    graph = helper.make_graph(
        [node], "resnet", [helper.make_tensor_value_info("data", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("resnetv1/conv0_fwd", TensorProto.FLOAT, None)],
        initializer=[w, b])
    with pytest.raises(W.WeightsMismatchError, match="'resnetv1/conv0_weight'.*not a layer"):
        W.convert_onnx_bvlc(helper.make_model(graph))


def test_onnx_missing_tensor_is_named():
    onnx_model, _ = bvlc_onnx(64, skip=("inception_4c/5x5",))
    with pytest.raises(W.WeightsMismatchError, match="inception_4c_5x5.*no weight initializer"):
        W.convert_onnx_bvlc(onnx_model)


def test_missing_layer_and_wrong_shape_are_named(bvlc_converted):
    converted = W.ConvertedWeights("bvlc", W.BVLC_CONFIG)
    for name, arrays in bvlc_converted.items():
        if name != "inception_4b_3x3":
            converted.add(name, arrays, bvlc_converted.sources[name])
    with pytest.raises(W.WeightsMismatchError, match="Missing tensor.*'inception_4b_3x3'"):
        W.load_converted(_small(), converted)
    bad = W.ConvertedWeights("bvlc", W.BVLC_CONFIG)
    for name, arrays in bvlc_converted.items():
        if name == "inception_3b_pool_proj":
            arrays = [arrays[0][:, :, :10], arrays[1]]
        bad.add(name, arrays, bvlc_converted.sources[name])
    model = _small()
    before = model.get_layer("conv1_7x7_s2").get_weights()[0].copy()
    with pytest.raises(W.WeightsMismatchError, match=(
            r"'inception_3b/pool_proj_w_0'.*expected shape \(1, 1, 256, 64\), "
            r"found \(1, 1, 10, 64\)")):
        W.load_converted(model, bad)
    # All or nothing: nothing was loaded.
    np.testing.assert_array_equal(model.get_layer("conv1_7x7_s2").get_weights()[0], before)


def test_wrong_variant_and_classes(bvlc_converted):
    with pytest.raises(W.WeightsMismatchError, match="batch_norm=False.*batch_norm=True"):
        W.load_converted(_small(batch_norm=True), bvlc_converted)
    with pytest.raises(W.WeightsMismatchError, match="kernel_5x5=3"):
        W.load_converted(_small(kernel_5x5=3), bvlc_converted)
    model = kg.GoogLeNet(input_shape=(32, 32, 3), classes=10)
    with pytest.raises(W.WeightsMismatchError, match=r"loss3/classifier_w_0.*\(1024, 10\).*"
                                                     r"\(1024, 1000\).*include_top=False"):
        W.load_converted(model, bvlc_converted)


def test_aux_heads_missing_from_file_warn(bvlc_converted):
    model = kg.GoogLeNet(input_shape=(65, 65, 3), aux_classifiers=True)
    with pytest.warns(UserWarning, match="auxiliary heads"):
        W.load_converted(model, bvlc_converted)


def test_imagenet_resolution_and_hash(bvlc_file, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(W.WEIGHTS_DIR_ENV, str(tmp_path / "w"))
    monkeypatch.delenv(W.BVLC.sha256_env, raising=False)
    with pytest.raises(W.WeightsNotFoundError, match="googlenet-12.onnx.*onnx/models"):
        W.find_imagenet_file(batch_norm=False)
    with pytest.raises(W.WeightsNotFoundError, match="googlenet-1378be20.pth"):
        W.find_imagenet_file(batch_norm=True)
    with pytest.raises(ValueError, match="classes=1000"):
        kg.GoogLeNet(weights="imagenet", classes=10)
    os.makedirs(tmp_path / "w")
    path, x, ref = bvlc_file
    os.symlink(path, tmp_path / "w" / "googlenet-12.onnx")
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    with pytest.warns(UserWarning, match=digest):
        W.find_imagenet_file(batch_norm=False)
    monkeypatch.setenv(W.BVLC.sha256_env, "0" * 64)
    with pytest.raises(ValueError, match="Hash mismatch"):
        W.find_imagenet_file(batch_norm=False)
    monkeypatch.setenv(W.BVLC.sha256_env, digest)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = kg.GoogLeNet(weights="imagenet")
    _close(model.predict(x, verbose=0), ref["prob_1"])
    # torchvision: the file name's 8 hex digits are the SHA-256 prefix.
    with open(tmp_path / "w" / W.TORCHVISION.filenames[0], "wb") as f:
        f.write(b"not the published file")
    with pytest.raises(ValueError, match="Hash mismatch.*expected 1378be20"):
        W.find_imagenet_file(batch_norm=True)
    with pytest.raises(W.WeightsMismatchError, match="torchvision"):
        kg.GoogLeNet(weights="imagenet", batch_norm=True, include_top=False)


def test_pool4_size_argument():
    model = kg.GoogLeNet(include_top=False, input_shape=(64, 64, 3), pool4_size=2)
    assert model.get_layer("pool4_3x3_s2").pool_size == (2, 2)
    assert model.output_shape == (None, 2, 2, 1024)
    with pytest.raises(ValueError, match="pool4_size=4"):
        kg.GoogLeNet(pool4_size=4)


# ---------------------------------------------------------------------------
# torchvision (needs torch; torchvision itself is not needed).
# ---------------------------------------------------------------------------
def torchvision_googlenet(transform_input=True, aux_logits=True, seed=0):
    """torchvision.models.googlenet's modules and forward, re-written with
    torch.nn (same parameter names and ops; torchvision 0.29 source)."""
    torch = pytest.importorskip("torch")
    nn, F = torch.nn, torch.nn.functional

    class BasicConv2d(nn.Module):
        def __init__(self, cin, cout, **kwargs):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)
            self.bn = nn.BatchNorm2d(cout, eps=0.001)

        def forward(self, x):
            return F.relu(self.bn(self.conv(x)))

    class Inception(nn.Module):
        def __init__(self, cin, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
            super().__init__()
            self.branch1 = BasicConv2d(cin, ch1x1, kernel_size=1)
            self.branch2 = nn.Sequential(BasicConv2d(cin, ch3x3red, kernel_size=1),
                                         BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
            self.branch3 = nn.Sequential(BasicConv2d(cin, ch5x5red, kernel_size=1),
                                         BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1))
            self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                         BasicConv2d(cin, pool_proj, kernel_size=1))

        def forward(self, x):
            return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x),
                              self.branch4(x)], 1)

    class InceptionAux(nn.Module):
        def __init__(self, cin, classes):
            super().__init__()
            self.conv = BasicConv2d(cin, 128, kernel_size=1)
            self.fc1 = nn.Linear(2048, 1024)
            self.fc2 = nn.Linear(1024, classes)

        def forward(self, x):
            x = self.conv(F.adaptive_avg_pool2d(x, (4, 4)))
            return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))

    class GoogLeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.transform_input = transform_input
            self.conv1 = BasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)
            self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.conv2 = BasicConv2d(64, 64, kernel_size=1)
            self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
            self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
            self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
            self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
            self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
            self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
            self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
            self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
            self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
            self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
            self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
            if aux_logits:
                self.aux1 = InceptionAux(512, 1000)
                self.aux2 = InceptionAux(528, 1000)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.dropout = nn.Dropout(p=0.2)
            self.fc = nn.Linear(1024, 1000)

        def forward(self, x):
            if self.transform_input:
                x = torch.cat([
                    torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5,
                    torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5,
                    torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5], 1)
            x = self.maxpool2(self.conv3(self.conv2(self.maxpool1(self.conv1(x)))))
            x = self.maxpool3(self.inception3b(self.inception3a(x)))
            for block in ("4a", "4b", "4c", "4d", "4e"):
                x = getattr(self, f"inception{block}")(x)
            x = self.inception5b(self.inception5a(self.maxpool4(x)))
            return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))

    torch.manual_seed(seed)
    net = GoogLeNet()
    with torch.no_grad():  # non-trivial batch norm statistics
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.fixture(scope="module")
def torchvision_file(tmp_path_factory):
    torch = pytest.importorskip("torch")
    net = torchvision_googlenet()
    path = str(tmp_path_factory.mktemp("tv") / "googlenet-00000000.pth")
    torch.save(net.state_dict(), path)
    rng = np.random.default_rng(7)
    image = rng.uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)  # RGB
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    x_torch = ((image / 255.0 - mean) / std).astype(np.float32).transpose(0, 3, 1, 2)
    with torch.no_grad():
        ref = net(torch.from_numpy(np.ascontiguousarray(x_torch))).numpy()
    return path, net, image, ref


def test_torchvision_matches_torch_at_224(torchvision_file):
    path, _, image, ref = torchvision_file
    model = kg.GoogLeNet(classifier_activation=None, **W.TORCHVISION_CONFIG)
    W.load_torchvision(model, path)
    # transform_input=True on ImageNet-normalised input == RGB scaled to [-1, 1].
    x = kg.preprocess_input(image.copy(), mode="tf")
    _close(model.predict(x, verbose=0), ref)


def test_torchvision_small_input(torchvision_file):
    torch = pytest.importorskip("torch")
    _, net, _, _ = torchvision_file
    net.transform_input = False
    x = np.random.default_rng(8).normal(size=(2, 96, 96, 3)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()
    net.transform_input = True
    model = kg.GoogLeNet(input_shape=(96, 96, 3), classifier_activation=None,
                         **W.TORCHVISION_CONFIG)
    W.load_converted(model, W.convert_torchvision(net.state_dict()))
    _close(model.predict(x, verbose=0), ref)


def test_torchvision_aux_fc_permutation(torchvision_file):
    _, net, _, _ = torchvision_file
    state = net.state_dict()
    converted = W.convert_torchvision(state, include_aux=True)
    fc1 = state["aux1.fc1.weight"].numpy()  # (1024, 128*4*4), CHW order
    kernel = converted["aux1_fc"][0]  # (4*4*128, 1024), HWC order
    c, h, w = 5, 2, 3
    np.testing.assert_array_equal(kernel[(h * 4 + w) * 128 + c], fc1[:, c * 16 + h * 4 + w])
    model = kg.GoogLeNet(aux_classifiers=True, **W.TORCHVISION_CONFIG)
    W.load_converted(model, converted)  # 224: the 4x4 map the fc expects
    assert "aux1_fc" not in W.convert_torchvision(state)


def test_torchvision_errors(torchvision_file):
    _, net, _, _ = torchvision_file
    state = dict(net.state_dict())
    with pytest.raises(W.WeightsMismatchError, match="bias', 'running_mean'|TORCHVISION_CONFIG"):
        W.load_converted(_small(), W.convert_torchvision(state))
    with pytest.raises(W.WeightsMismatchError, match="pool4_size=3.*TORCHVISION_CONFIG"):
        W.load_converted(_small(batch_norm=True, kernel_5x5=3), W.convert_torchvision(state))
    del state["inception4b.branch2.1.bn.running_var"]
    with pytest.raises(W.WeightsMismatchError,
                       match="'running_var'.*inception4b.branch2.1.bn.*inception_4b_3x3_bn"):
        W.convert_torchvision(state)
    with pytest.raises(W.WeightsMismatchError, match="'layer1.0.conv1.weight'.*not a layer"):
        W.convert_torchvision({"layer1.0.conv1.weight": np.zeros((64, 64, 3, 3))})


@pytest.mark.parametrize("zip_format", [True, False])
def test_state_dict_reader_without_torch(torchvision_file, tmp_path, zip_format):
    torch = pytest.importorskip("torch")
    _, net, _, _ = torchvision_file
    state = {k: v for k, v in net.state_dict().items() if not k.startswith("inception5")}
    state["conv1.conv.weight"] = state["conv1.conv.weight"][:, :, 1:, :]  # non-contiguous
    path = str(tmp_path / "sd.pth")
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    read = W.read_state_dict(path, use_torch=False)
    assert sorted(read) == sorted(state)
    for key, value in state.items():
        np.testing.assert_array_equal(read[key], value.numpy())


def test_expected_state_dict_is_torchvisions(torchvision_file):
    """The names and shapes the reader checks a .pth against before reading
    its storages are exactly torchvision's googlenet's."""
    from keras_googlenet.weights import torchvision as tv

    path, net, _, _ = torchvision_file
    shapes, optional = tv.expected_state_dict()
    state = net.state_dict()
    assert sorted(shapes) == sorted(state)
    for name, value in state.items():
        assert len(shapes[name]) == value.dim() and all(
            w is None or w == n for n, w in zip(value.shape, shapes[name])), name
    assert {k for k in shapes if k.startswith("aux")} <= optional
    for use_torch in (False, True):
        read = W.read_state_dict(path, use_torch=use_torch, expected=shapes)
        assert sorted(read) == sorted(state)


def test_googlenet_weights_pth_path(torchvision_file):
    path, _, image, ref = torchvision_file
    model = kg.GoogLeNet(weights=path, classifier_activation=None, **W.TORCHVISION_CONFIG)
    _close(model.predict(kg.preprocess_input(image.copy(), mode="tf"), verbose=0), ref)


def test_command_line_writes_weights_and_keras_model(bvlc_file, tmp_path, capsys):
    import keras

    path, x, ref = bvlc_file
    out = str(tmp_path / "bvlc.keras")
    from keras_googlenet import cli

    preset = str(tmp_path / "bvlc_preset")
    assert cli.main(["weights", "convert", path, out, "--preset-dir", preset]) == 0
    assert "Wrote the preset" in capsys.readouterr().out
    _close(keras.models.load_model(out, compile=False).predict(x, verbose=0), ref["prob_1"])
    # The preset folder: the same network, and the weights' own preprocessing.
    from keras_googlenet.inference import loader

    from_preset, contract = loader.load_model(preset)
    assert contract.normalization == "caffe" and contract.image_size == 224
    _close(from_preset.predict(x, verbose=0), ref["prob_1"])
    with open(os.path.join(preset, "image_converter.json"), encoding="utf-8") as f:
        assert '"normalization": "caffe"' in f.read()
    out = str(tmp_path / "bvlc_notop.weights.h5")
    cli.main(["weights", "convert", path, out, "--no-top"])
    backbone = kg.GoogLeNet(include_top=False, weights=out)
    assert backbone.get_layer("conv1_7x7_s2").get_weights()[0].shape == (7, 7, 3, 64)
    with pytest.raises(ValueError, match="Expected an ONNX"):
        W.convert(str(tmp_path / "x.h5"))


def test_converted_torchvision_file_carries_its_preprocessing(torchvision_file, tmp_path):
    """`weights convert` to .keras, the file moved alone, `predict` on an image
    file: torchvision's own probabilities and ImageNet's names, because the file
    says mode "tf" (with the default caffe normalisation they differ)."""
    torch = pytest.importorskip("torch")
    import keras
    import tensorflow as tf
    from PIL import Image

    from keras_googlenet import cli
    from keras_googlenet.data import preprocessing
    from keras_googlenet.models import imagenet
    from keras_googlenet.inference import loader, predict

    path, net, _, _ = torchvision_file
    out = str(tmp_path / "converted" / "tv.keras")
    assert cli.main(["weights", "convert", path, out]) == 0
    moved = str(tmp_path / "tv.keras")
    os.replace(out, moved)
    _, contract = loader.load_model(moved)
    assert contract.normalization == "tf" and contract.image_size == 224
    assert list(contract.class_names) == imagenet.class_names()

    rng = np.random.default_rng(11)
    image_path = str(tmp_path / "photo.png")
    Image.fromarray(rng.integers(0, 256, (240, 300, 3), dtype=np.uint8)).save(image_path)
    with open(image_path, "rb") as f:
        crop = preprocessing.eval_preprocess(
            preprocessing.decode_image(tf.constant(f.read())), 224).numpy()[None]
    # torchvision's logits of that crop, ImageNet-normalised as it expects.
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    x = ((crop / 255.0 - mean) / std).astype(np.float32).transpose(0, 3, 1, 2)
    with torch.no_grad():
        torch_logits = net(torch.from_numpy(np.ascontiguousarray(x))).numpy()[0]
    model, _ = loader.load_model(moved)
    logits = keras.Model(model.input, model.get_layer("classifier").output)
    tf_input = kg.preprocess_input(crop.copy(), mode="tf")
    _close(logits.predict(tf_input, verbose=0)[0], torch_logits)
    # predict on the file uses the file's "tf" mode: the model's probabilities.
    expected = model.predict(tf_input, verbose=0)[0]
    names = imagenet.class_names()
    [(_, top)] = predict.predict_files(moved, [image_path], top=5, verbose=False)
    assert [name for name, _ in top] == [names[i] for i in np.argsort(-expected)[:5]]
    np.testing.assert_allclose([s for _, s in top], [expected[names.index(n)] for n, _ in top],
                               rtol=1e-5)
    # The old default (caffe) gives other probabilities: the check can fail.
    [(_, caffe)] = predict.predict_files(moved, [image_path], top=5, normalization="caffe",
                                         verbose=False)
    assert max(abs(s / expected[names.index(n)] - 1) for n, s in caffe) > 1e-4
