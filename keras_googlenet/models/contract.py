"""What a consumer needs to use a model correctly, saved inside its `.keras` file.

A GoogLeNet is only usable with the preprocessing it was trained with: the
`preprocess_input` mode, the input size, the evaluation crop and the class
names. Kept in a `config.json` beside the model, that contract was lost as
soon as the file was moved, and images were silently normalised the wrong
way. `save_model` therefore writes it into the `.keras` zip itself, as the
member `keras_googlenet.json` (Keras' own loader ignores members it does not
know), and `read_contract` reads it back. Plain JSON, validated field by
field: nothing read from the file runs code.
"""
import dataclasses
import json
import os
import zipfile

from keras_googlenet import files
from keras_googlenet.models import imagenet

MEMBER = "keras_googlenet.json"
NORMALIZATIONS = ("caffe", "torch", "tf")  # keras' preprocess_input modes
DEFAULT_NORMALIZATION = "caffe"
DEFAULT_CROP_FRACTION = 0.875  # resize the shorter side to 256, crop 224
_FORMAT = 1


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

    def to_json(self):
        data = dataclasses.asdict(self)
        data.pop("origin")
        data["class_names"] = list(self.class_names) if self.class_names is not None else None
        data["format"] = _FORMAT
        return data

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
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(MEMBER, json.dumps(contract.to_json(), indent=2))
    return path


def read_contract(path):
    """The contract stored in a `.keras` file, or None if it has none.

    Raises:
        ValueError: the stored contract is not valid JSON or not a contract.
    """
    path = os.fspath(path)
    try:
        with zipfile.ZipFile(path) as archive:
            if MEMBER not in archive.namelist():
                return None
            raw = archive.read(MEMBER)
    except zipfile.BadZipFile:
        raise ValueError(f"{path} is not a .keras file (not a zip archive).") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: the model contract {MEMBER} is not valid JSON ({e}).") from None
    return Contract.from_json(data, origin=path)
