"""What a consumer needs to use a model correctly, saved with every model written.

A GoogLeNet is only usable with the preprocessing it was trained with: the
`preprocess_input` mode, the input size, the evaluation crop and the class
names. Kept only in a `config.json` beside the model, that contract would
be lost as soon as the file is moved, and images silently normalised the
wrong way. Every artifact therefore carries one record, an `ArtifactInfo` (the
`Contract` and, for exports and converted files, how they were made),
written by `write_info` and read back by `read_info`, where its kind of
artifact keeps it:

- a `.keras` file: the zip member `keras_googlenet.json` (Keras' own loader
  ignores members it does not know); `save_model` / `read_contract`.
- a SavedModel export: `assets.extra/export_info.json` (TF Serving's place
  for files beside a model); the class names are its asset
  `assets/class_names.txt`, which the labels table reads.
- a converted `.tflite` / `.onnx` file: `<file>.json` beside it (the
  "sidecar"); `read_sidecar`.

Plain JSON, validated field by field: nothing read from the file runs code.
"""
import dataclasses
import json
import os
import zipfile

from keras_googlenet import checks, files
from keras_googlenet.models import imagenet

NORMALIZATIONS = ("caffe", "torch", "tf")  # keras' preprocess_input modes
DEFAULT_NORMALIZATION = "caffe"
DEFAULT_CROP_FRACTION = 0.875  # resize the shorter side to 256, crop 224
# What a user may ask a loader for: auto = what the model file says, none =
# RGB in [0, 255] as it is.
NORMALIZATION_CHOICES = ("auto", *NORMALIZATIONS, "none")


def requested_normalization(value):
    """A user's normalization choice in the loaders' spelling: "none" (RGB
    in [0, 255] as it is) is None; "auto" and the modes stay."""
    return None if value == "none" else value


@dataclasses.dataclass(frozen=True)
class Contract:
    """The preprocessing contract of a model.

    Attributes:
        normalization: `preprocess_input` mode ("caffe", "torch", "tf") or
            None for a model that takes RGB in [0, 255] as is.
        image_size: the side of the square input the model was trained at,
            or None (the model's own input shape decides).
        crop_fraction: fraction of the resized shorter side that the
            evaluation centre crop keeps.
        class_names: one name per output, or None ("0".."N-1"; the ImageNet
            names for a 1000-way classifier).
        variant: the `GoogLeNet` arguments that fix the architecture
            (batch_norm, kernel_5x5, pool4_size), for information.
        origin: where the contract was read from (a path, "defaults").
    """

    normalization: object = DEFAULT_NORMALIZATION
    image_size: object = None
    crop_fraction: float = DEFAULT_CROP_FRACTION
    class_names: object = None
    variant: dict = dataclasses.field(default_factory=dict)
    origin: str = "defaults"

    def __post_init__(self):
        check_normalization(self.normalization)
        if self.image_size is not None and (
                not isinstance(self.image_size, int) or isinstance(self.image_size, bool)
                or self.image_size < 1):
            raise ValueError(f"`image_size` must be a positive integer or None. "
                             f"Received: image_size={self.image_size!r}")
        if (not isinstance(self.crop_fraction, (int, float)) or isinstance(self.crop_fraction, bool)
                or not 0 < self.crop_fraction <= 1):
            raise ValueError(f"`crop_fraction` must be in (0, 1]. "
                             f"Received: crop_fraction={self.crop_fraction!r}")
        if self.class_names is not None:
            object.__setattr__(self, "class_names",
                               tuple(check_class_names(self.class_names)))
        if not isinstance(self.variant, dict):
            raise ValueError(f"`variant` must be a dict. Received: variant={self.variant!r}")

    def replace(self, **overrides):
        """A copy with the given fields replaced; None values are ignored, so
        that unset command-line flags keep what the model says."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self, **overrides) if overrides else self

    def names_for(self, classes):
        """The class names of a `classes`-way classifier under this contract."""
        return resolve_class_names(self.class_names, classes)

    @classmethod
    def from_json(cls, data, origin):
        """Validates a decoded JSON object; errors name `origin`."""
        if not isinstance(data, dict):
            raise ValueError(f"{origin}: the model contract must be a JSON object.")
        fields = {f.name for f in dataclasses.fields(cls)} - {"origin"}
        kwargs = {k: v for k, v in data.items() if k in fields}
        try:
            return cls(**kwargs, origin=origin)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{origin}: invalid model contract: {e}") from None


def check_normalization(normalization):
    """Returns `normalization` if it is a mode or None; raises otherwise."""
    if normalization is not None and normalization not in NORMALIZATIONS:
        raise ValueError(f"`normalization` must be one of {NORMALIZATIONS} or None. "
                         f"Received: normalization={normalization!r}")
    return normalization


def check_class_names(names):
    """Class names as a list of non-empty one-line strings."""
    if isinstance(names, (str, bytes)):
        raise ValueError(f"`class_names` must be a sequence of strings, not one string. "
                         f"Received: class_names={names!r:.60}")
    names = list(names)
    for i, name in enumerate(names):
        # One name per line in the serving asset: a newline would shift every label.
        if not isinstance(name, str) or not name or "\n" in name or "\r" in name:
            raise ValueError("Class names must be non-empty strings without line breaks. "
                             f"Received: class_names[{i}]={name!r}")
    return names


def read_class_names(path):
    """Reads class names, one per line (a trailing newline is ignored)."""
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def resolve_class_names(class_names, classes):
    """Validated class names for a `classes`-way classifier.

    Args:
        class_names: None (ImageNet names for 1000 classes, else "0".."N-1"),
            a sequence of strings, or the path of a text file with one name
            per line.
        classes: the number of outputs of the model.

    Returns:
        A list of `classes` strings.
    """
    if class_names is None:
        return imagenet.class_names() if classes == 1000 else [str(i) for i in range(classes)]
    if isinstance(class_names, (str, os.PathLike)):
        class_names = read_class_names(class_names)
    names = check_class_names(class_names)
    if len(names) != classes:
        raise ValueError(
            f"The model has {classes} classes but {len(names)} class names were "
            f"given (first ones: {names[:3]}).")
    return names


# ---------------------------------------------------------------------------
# The record every artifact carries.
# ---------------------------------------------------------------------------
MEMBER = "keras_googlenet.json"
EXPORT_INFO_FILE = os.path.join("assets.extra", "export_info.json")
SIDECAR_SUFFIX = ".json"
FORMATS = {"keras": 1, "saved_model": "keras_googlenet.serving/1",
           "converted": "keras_googlenet.converted/1"}
RUNTIMES = ("tflite", "onnxruntime")
PRECISIONS = ("float32", "dynamic_range", "int8")
OUTPUTS = ("probabilities", "logits")
_CONTRACT_KEYS = ("normalization", "image_size", "crop_fraction", "class_names", "variant")
# The keys of each file, in the order they are written (and always were).
_KEYS = {
    "keras": ("normalization", "image_size", "crop_fraction", "class_names", "variant", "format"),
    "saved_model": ("format", "image_size", "crop_fraction", "normalization", "classes", "top_k",
                    "ema_weights", "max_pixels", "signatures", "tensorflow_version",
                    "keras_version", "class_names"),
    "converted": ("format", "file", "runtime", "precision", "normalization", "image_size",
                  "crop_fraction", "class_names", "classes", "output", "input", "float_ops",
                  "calibration"),
}
_LABELS = {"keras": f"model contract {MEMBER}", "saved_model": "export info",
           "converted": "converted-model contract"}


# What a SavedModel of ours offers its clients (`serving.signatures` writes
# them; predictors, the gRPC/REST client and TF Serving read them).
CLASS_NAMES_ASSET = "class_names.txt"
DEFAULT_SIGNATURE = "serving_default"
IMAGE_SIGNATURE = "serving_image"
FLOAT_IMAGE_SIGNATURE = "serving_image_float"
SIGNATURES = (DEFAULT_SIGNATURE, IMAGE_SIGNATURE, FLOAT_IMAGE_SIGNATURE)
BYTES_INPUT = "image_bytes"
IMAGE_INPUT = "images"
OUTPUT_KEYS = ("probabilities", "classes", "scores", "labels")


@dataclasses.dataclass(frozen=True)
class ArtifactInfo:
    """What a written model says about itself (see the module docstring).

    `info["key"]` and `info.get("key")` read a field by its key in the file.

    Attributes:
        contract: the preprocessing contract (its `origin`: the file read).
        kind: "keras", "saved_model" or "converted".
        classes: the number of outputs (exports and converted files).
        top_k, ema_weights, max_pixels, signatures, tensorflow_version,
            keras_version: how a SavedModel was exported (`serving.export`).
        file, runtime, precision, output, input, float_ops, calibration: a
            converted file's name, runtime ("tflite", "onnxruntime"),
            precision ("float32", "dynamic_range", "int8"), output
            ("probabilities" or "logits"), input (`{"name", "dtype",
            "layout", "quantization"}`, the last `{"scale", "zero_point",
            "dtype"}` of an int8 file, else None), the ops left in float and
            the calibration data (`{"data", "split", "images"}`).
    """

    contract: Contract = dataclasses.field(default_factory=Contract)
    kind: str = "keras"
    classes: object = None
    top_k: object = None
    ema_weights: object = None
    max_pixels: object = None
    signatures: object = None
    tensorflow_version: object = None
    keras_version: object = None
    file: object = None
    runtime: object = None
    precision: object = None
    output: object = None
    input: object = None
    float_ops: object = ()
    calibration: object = None

    def __post_init__(self):
        checks.choice("kind", self.kind, tuple(FORMATS))
        if not isinstance(self.contract, Contract):
            raise TypeError(f"`contract` must be a Contract. Received: {self.contract!r}")
        for name in ("signatures", "float_ops"):
            value = getattr(self, name)
            if value is not None:
                if not isinstance(value, (list, tuple)) or not all(
                        isinstance(v, str) for v in value):
                    self._fail(f"{name} must be a list of names, got {value!r}")
                object.__setattr__(self, name, tuple(value))
        if self.kind != "keras":
            _check_made(self)

    def _fail(self, message):
        raise ValueError(f"{self.contract.origin}: invalid {_LABELS[self.kind]}: {message}")

    def to_json(self):
        """The JSON object of the file, with its keys."""
        fields = dataclasses.asdict(self.contract)
        fields.update((f.name, getattr(self, f.name)) for f in dataclasses.fields(self))
        for name in ("class_names", "signatures", "float_ops"):
            if fields[name] is not None:
                fields[name] = list(fields[name])
        fields["format"] = FORMATS[self.kind]
        return {key: fields[key] for key in _KEYS[self.kind]}

    def __getitem__(self, key):
        return self.to_json()[key]

    def get(self, key, default=None):
        return self.to_json().get(key, default)

    @classmethod
    def from_json(cls, data, kind, origin):
        """Validates a decoded JSON object; errors name `origin`."""
        if not isinstance(data, dict):
            raise ValueError(f"{origin}: the {_LABELS[kind]} must be a JSON object.")
        found = data.get("format")
        # Older .keras members and exports may lack the format; a converted
        # file always had it.
        if found != FORMATS[kind] and (found is not None or kind == "converted"):
            raise ValueError(f"{origin}: invalid {_LABELS[kind]}: format must be "
                             f"{FORMATS[kind]!r}, got {found!r}")
        keys = [k for k in _CONTRACT_KEYS if k in _KEYS[kind]]
        if kind == "converted":  # every field is written; a missing one reads as null
            fields = {k: data.get(k) for k in keys}
        else:  # older files may lack some: the defaults
            fields = {k: data[k] for k in keys if k in data}
        contract = Contract.from_json(fields, origin)
        own = set(_KEYS[kind]) - set(_CONTRACT_KEYS) - {"format"}
        return cls(contract, kind, **{k: v for k, v in data.items() if k in own})


def _check_made(info):
    """The checks of an export's or a converted file's own fields."""
    fail = info._fail
    if not checks.passes(checks.POSITIVE_INT, info.classes):
        fail(f"classes must be a positive int, got {info.classes!r}")
    if info.contract.image_size is None:
        fail("image_size is missing")
    if info.kind == "saved_model":
        for name in ("top_k", "max_pixels"):
            value = getattr(info, name)
            if value is not None and not checks.passes(checks.POSITIVE_INT, value):
                fail(f"{name} must be a positive int, got {value!r}")
        if not (info.ema_weights is None or isinstance(info.ema_weights, bool)):
            fail(f"ema_weights must be true or false, got {info.ema_weights!r}")
        # Older exports name their classes only in the signature's asset.
        names = info.contract.class_names
        if names is not None and len(names) != info.classes:
            fail(f"{len(names)} class names for {info.classes} classes")
        return
    for key, choices in (("runtime", RUNTIMES), ("precision", PRECISIONS), ("output", OUTPUTS)):
        if getattr(info, key) not in choices:
            fail(f"{key} must be one of {choices}, got {getattr(info, key)!r}")
    names = info.contract.class_names
    if names is None:
        fail("class_names is missing")
    if len(names) != info.classes:
        fail(f"{len(names)} class names for {info.classes} classes")
    if not isinstance(info.input, dict) or not isinstance(info.input.get("name"), str):
        fail("input must be an object with a name")
    quantization = info.input.get("quantization")
    if quantization is not None and (
            not isinstance(quantization, dict)
            or not isinstance(quantization.get("scale"), (int, float))
            or not checks.passes(checks.INTEGER, quantization.get("zero_point"))):
        fail("input.quantization must be {scale, zero_point, dtype} or null")


def _kind_of(path):
    if os.fspath(path).endswith(".keras"):
        return "keras"
    return "saved_model" if os.path.isdir(path) else "converted"


def info_path(path, kind=None):
    """Where the record of the artifact at `path` is: the `.keras` file
    itself (its member), the export's `assets.extra/export_info.json`, or
    the converted file's sidecar `<file>.json`."""
    kind = kind or _kind_of(path)
    path = os.fspath(path)
    if kind == "keras":
        return path
    return os.path.join(path, EXPORT_INFO_FILE) if kind == "saved_model" else path + SIDECAR_SUFFIX


def sidecar_path(path):
    """The `<file>.json` beside a converted file."""
    return info_path(path, "converted")


def write_info(path, info):
    """Writes `info` into or beside the artifact at `path` (see `info_path`);
    a file appears whole or not at all.

    Returns:
        The path written.
    """
    text = json.dumps(info.to_json(), indent=2) + "\n"
    target = info_path(path, info.kind)
    if info.kind == "keras":
        with zipfile.ZipFile(target, "a") as archive:
            archive.writestr(MEMBER, text)
        return target
    return files.atomic_write(target, text)


def read_info(path, kind=None):
    """The validated record of the artifact at `path`, or None if it has none.

    Args:
        path: a `.keras` file, a SavedModel directory or a converted file.
        kind: "keras", "saved_model" or "converted"; None tells by `path`.

    Raises:
        ValueError: naming the file, when it is not valid JSON, not such a
            record, or (a `.keras` file) not a zip archive.
    """
    kind = kind or _kind_of(path)
    target = info_path(path, kind)
    try:
        if kind == "keras":
            with zipfile.ZipFile(target) as archive:
                if MEMBER not in archive.namelist():
                    return None
                raw = archive.read(MEMBER)
        elif not os.path.isfile(target):
            return None
        else:
            with open(target, "rb") as f:
                raw = f.read()
    except zipfile.BadZipFile:
        raise ValueError(f"{target} is not a .keras file (not a zip archive).") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{target}: the {_LABELS[kind]} is not valid JSON ({e}).") from None
    return ArtifactInfo.from_json(data, kind, origin=target)


def save_model(model, path, contract):
    """Saves `model` as a `.keras` file that carries `contract`.

    The file appears whole or not at all: it is written beside its
    destination and renamed into place.
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"The model file must end with '.keras'. Received: {path!r}")
    with files.atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
        write_info(tmp, ArtifactInfo(contract))
    return path


def read_contract(path):
    """The contract stored in a `.keras` file, or None if it has none.

    Raises:
        ValueError: the stored contract is not valid JSON or not a contract.
    """
    info = read_info(path, "keras")
    return info.contract if info is not None else None


def read_sidecar(path):
    """The validated sidecar of a converted file: `(contract, info)`.

    Raises:
        FileNotFoundError: no `<path>.json` beside the file.
        ValueError: not valid JSON, or not a converted-model contract.
    """
    info = read_info(path, "converted")
    if info is None:
        raise FileNotFoundError(
            f"{os.fspath(path)!r} has no contract {sidecar_path(path)!r} beside it: export it "
            "with `googlenet export --tflite/--onnx/--int8`, which writes one.")
    return info.contract, info
