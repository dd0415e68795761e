"""torchvision's GoogLeNet, measured in a process of its own.

The benchmark scripts run this file by path, in the Python given by
`--torch-python` or their own (`harness.torch_child`), and drive it over a
pipe: one JSON request line in, one JSON reply line out (`harness.serve`).
torch's OpenMP threads and TensorFlow's thread pools in one process fight
for the cores, and torch (with triton, in CUDA builds) imported after
TensorFlow can crash, so torch never shares a process with TensorFlow.

It imports only the standard library, numpy, torch, torchvision and its
sibling `harness` (standard library at import): no TensorFlow and no
`keras_googlenet`, which the other Python may not have. torch itself is
imported by the commands, so that a Python without it can still report
"not installed".

Commands: `init`, `train`, `predict` (benchmark.py's training model),
`int8_init`, `time`, `peak`, `macs` (int8.py), `gpu` (gpu.py); and
`python torch_worker.py --memory ARGS` (the peak RSS of a training run).
"""
import json
import sys
import time

import numpy as np

import harness

# torchvision's normalisation (int8 calibration).
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def googlenet(classes, aux_logits=True, quantizable=False):
    """torchvision's GoogLeNet, random weights."""
    import torchvision

    models = torchvision.models.quantization if quantizable else torchvision.models
    extra = {"quantize": False} if quantizable else {}
    return models.googlenet(weights=None, aux_logits=aux_logits, init_weights=True,
                            num_classes=classes, **extra)


def aux_loss(loss, out, y):
    """The paper's loss: the main head plus 0.3 x each auxiliary head."""
    return (loss(out.logits, y) + harness.AUX_WEIGHT * loss(out.aux_logits1, y)
            + harness.AUX_WEIGHT * loss(out.aux_logits2, y))


def multiply_adds(model, image_size):
    """Multiply-adds of one image's forward pass: half the FLOPs that
    `FlopCounterMode` counts (convolutions and matrix products: what
    keras_googlenet.models.flops counts on our side)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, image_size, image_size))
    return counter.get_total_flops() // 2


class TorchGoogLeNet:
    """torchvision's `googlenet(aux_logits=True)` trained the same way: the
    main loss plus 0.3 x each aux loss, SGD momentum 0.9, weight decay 2e-4."""

    def __init__(self, image_size, classes=1000, threads=None, bfloat16=False,
                 channels_last=False):
        import torch

        if threads:
            torch.set_num_threads(threads)
        torch.manual_seed(0)
        self.torch = torch
        self.bfloat16 = bfloat16
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = googlenet(classes).to(memory_format=self.memory_format)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=harness.LEARNING_RATE,
                                         momentum=harness.MOMENTUM, weight_decay=2e-4)
        self.loss = torch.nn.CrossEntropyLoss()
        self.image_size, self.classes = image_size, classes

    def batch(self, batch_size):
        torch = self.torch
        g = torch.Generator().manual_seed(0)
        x = torch.randn(batch_size, 3, self.image_size, self.image_size, generator=g)
        x = x.contiguous(memory_format=self.memory_format)
        y = torch.from_numpy(harness.labels(batch_size, self.classes)).long()
        return x, y

    def _autocast(self):
        return self.torch.autocast("cpu", dtype=self.torch.bfloat16, enabled=self.bfloat16)

    def train_step(self, x, y):
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss = aux_loss(self.loss, self.model(x), y)
        loss.backward()
        self.optimizer.step()
        return loss.detach().item()

    def predict(self, x):
        self.model.eval()
        with self.torch.inference_mode(), self._autocast():
            return self.model(x).float().numpy()

    def forward_flops(self):
        """FLOPs (2 x multiply-adds) of one image's inference pass."""
        return 2 * multiply_adds(self.model, self.image_size)


class Worker:
    """The commands; the models they set up live here between calls."""

    def __init__(self):
        self.net, self.models, self.image_size = None, {}, None

    def commands(self):
        return {name: getattr(self, name) for name in
                ("init", "train", "predict", "int8_init", "time", "peak", "macs", "gpu")}

    def init(self, **kwargs):
        import torchvision

        self.net = TorchGoogLeNet(**kwargs)
        return {"torch": self.net.torch.__version__, "torchvision": torchvision.__version__,
                "threads": self.net.torch.get_num_threads(),
                "forward_flops": self.net.forward_flops()}

    def train(self, batch_size, warmup, steps):
        x, y = self.net.batch(batch_size)
        return {"times": harness.timed_calls(lambda: self.net.train_step(x, y), warmup, steps)}

    def predict(self, batch_size, warmup, repeats):
        x, _ = self.net.batch(batch_size)
        return {"times": harness.timed_calls(lambda: self.net.predict(x), warmup, repeats)}

    def int8_init(self, calibration, threads, classes):
        """torchvision's float32 GoogLeNet and its quantised copy: fused,
        x86 qconfig, post-training static quantisation calibrated on the
        uint8 images of the .npy file `calibration` (their size is the
        size `time` and `macs` use)."""
        import torch
        import torchvision

        torch.set_num_threads(threads)
        torch.backends.quantized.engine = "x86"
        float_model = googlenet(classes, aux_logits=False).eval()
        q = googlenet(classes, aux_logits=False, quantizable=True).eval()
        q.load_state_dict(float_model.state_dict())
        q.fuse_model(is_qat=False)
        q.qconfig = torch.ao.quantization.get_default_qconfig("x86")
        torch.ao.quantization.prepare(q, inplace=True)
        images = np.load(calibration).astype(np.float32) / 255.0
        self.image_size = images.shape[1]
        batch = torch.from_numpy(((images - MEAN) / STD).transpose(0, 3, 1, 2).copy())
        with torch.inference_mode():
            for start in range(0, len(batch), 8):
                q(batch[start:start + 8])
        torch.ao.quantization.convert(q, inplace=True)
        self.models = {"torchvision_float32": float_model, "torchvision_int8": q}
        return {"torch": torch.__version__, "torchvision": torchvision.__version__,
                "engine": torch.backends.quantized.engine}

    def time(self, name, batch, warmup=0):
        """Seconds of one inference call of an `int8_init` model."""
        import torch

        x = torch.randn(batch, 3, self.image_size, self.image_size)
        model = self.models[name]
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            t0 = time.perf_counter()
            model(x)
            return {"seconds": time.perf_counter() - t0}

    def peak(self, sizes=(1024, 2048)):
        """Best GMAC/s of an n x n x n GEMM: fbgemm's int8 (uint8 x int8,
        the kernel under torchvision's quantised convolutions) and float32."""
        import torch

        out = {"fbgemm_int8": 0.0, "torch_float32": 0.0}
        for n in sizes:
            weight = torch.quantize_per_tensor(torch.randn(n, n), 0.05, 0, torch.qint8)
            packed = torch.ops.quantized.linear_prepack(weight, None)
            x = torch.quantize_per_tensor(torch.rand(n, n), 0.01, 0, torch.quint8)
            out["fbgemm_int8"] = max(out["fbgemm_int8"], harness.gemm_gmacs(
                lambda: torch.ops.quantized.linear(x, packed, 1.0, 0), n))
            a = torch.randn(n, n)
            out["torch_float32"] = max(out["torch_float32"], harness.gemm_gmacs(lambda: a @ a, n))
        return out

    def macs(self):
        return {"multiply_adds": multiply_adds(self.models["torchvision_float32"], self.image_size)}

    def gpu(self, **settings):
        return gpu_run(**settings)


# --------------------------------------------------------------------------
# gpu.py's torchvision side: eager and compiled, on the GPU when there is one

GPU_VARIANTS = (
    ("eager_float32", False, False),
    ("eager_bf16_autocast", True, False),
    ("compile_bf16_autocast", True, True),
)


def gpu_run(batch_size, image_size, classes, steps, warmup, latency_calls):
    """Each of GPU_VARIANTS: `googlenet(aux_logits=True)`, channels_last,
    the paper's loss, SGD with momentum; synthetic data on the device."""
    try:
        import torch
        import torchvision
    except ImportError as e:
        return {"skipped": f"not installed: {e.name}"}
    cuda = torch.cuda.is_available()
    dev = torch.device("cuda" if cuda else "cpu")
    result = {"device": torch.cuda.get_device_name(0) if cuda else "cpu",
              "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__}}
    torch.backends.cudnn.benchmark = True
    gen = torch.Generator().manual_seed(0)
    shape = (batch_size, 3, image_size, image_size)
    x = torch.randn(shape, generator=gen).to(dev).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (batch_size,), generator=gen).to(dev)
    x1 = torch.randn((1, *shape[1:]), generator=gen).to(dev).contiguous(
        memory_format=torch.channels_last)
    counts = {"classes": classes, "steps": steps, "warmup": warmup,
              "latency_calls": latency_calls}
    for name, bf16, compiled in GPU_VARIANTS:
        if compiled and not cuda:
            result[name] = {"skipped": "torch.compile is measured on CUDA only"}
            continue
        try:
            result[name] = _gpu_variant(torch, dev, x, y, x1, bf16, compiled, **counts)
        except Exception:  # noqa: BLE001 - report it, measure the rest
            result[name] = harness.error_report()
        if cuda:
            torch.cuda.empty_cache()
    return result


def _gpu_variant(torch, dev, x, y, x1, bf16, compiled, classes, steps, warmup, latency_calls):
    cuda = dev.type == "cuda"
    batch_size = len(x)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def peak():
        return torch.cuda.max_memory_allocated() if cuda else None

    def rate(fn):
        """Images/s of `steps` calls after `warmup` ones, synchronised."""
        for _ in range(warmup):
            fn()
        sync()
        out, start = None, time.perf_counter()
        for _ in range(steps):
            out = fn()
        sync()
        return out, harness.rounded(batch_size * steps / (time.perf_counter() - start), 1)

    def first_call(fn):
        start = time.perf_counter()
        out = fn()
        sync()
        return out, harness.rounded(time.perf_counter() - start, 2)

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    model = googlenet(classes).to(dev).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=harness.LEARNING_RATE,
                                momentum=harness.MOMENTUM)
    net = torch.compile(model) if compiled else model

    def autocast():
        return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16)

    def train_step():
        with autocast():
            loss = aux_loss(torch.nn.functional.cross_entropy, net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    res = {"params": sum(p.numel() for p in model.parameters())}
    loss, res["train_first_step_s"] = first_call(train_step)
    last, res["train_images_per_s"] = rate(train_step)
    res["train_loss"] = harness.rounded(float(loss if last is None else last), 4)
    res["train_peak_bytes"] = peak()

    model.eval()
    optimizer.zero_grad(set_to_none=True)
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()

    def infer(inputs=x):
        with torch.inference_mode(), autocast():
            return net(inputs)

    _, res["infer_first_call_s"] = first_call(infer)
    _, res["infer_images_per_s"] = rate(infer)
    res["infer_peak_bytes"] = peak()
    if compiled:
        res["batch1_latency_ms"] = None  # a batch-1 call would recompile; eager covers it
        return res
    for _ in range(warmup + 1):
        infer(x1)
    sync()
    times = harness.timed_calls(lambda: (infer(x1), sync()), 0, latency_calls)
    res["batch1_latency_ms"] = harness.rounded(1000 * harness.median(times), 3)
    return res


def memory_main(image_size, classes, steps, threads, batch_size, bfloat16):
    """Trains `steps` steps in this fresh process, then prints its peak RSS."""
    net = TorchGoogLeNet(image_size, classes, threads=threads, bfloat16=bfloat16)
    x, y = net.batch(batch_size)
    for _ in range(steps):
        net.train_step(x, y)
    harness.print_peak_rss()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--memory"]:
        memory_main(**json.loads(sys.argv[2]))
    else:
        harness.serve(Worker().commands())
