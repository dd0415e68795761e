"""Configurations whose fields are command-line flags.

A field's help, default, choices and rule (`keras_googlenet.checks`) live in
its metadata, so one dataclass is the command's flags (`cli.flags.add_fields`
generates them), its validation (a loop over the fields) and the keys of the
files it reads and writes. `TrainConfig` and `FinetuneConfig` are built this
way. Nothing here imports TensorFlow: `--help` reads these modules.
"""
import dataclasses
import typing

from keras_googlenet import checks


def field(default, help_text, choices=None, rule=None, required=False):
    """A flag field. Its value is None until resolved: None means "not
    given", so that a layer under the explicit values (a recipe file) can set
    any field and an explicit value still wins over it; `default` is applied
    under both, by `resolve`."""
    return dataclasses.field(default=None, metadata={
        "help": help_text, "choices": choices, "default": default, "rule": rule,
        "required": required})


def default_value(f):
    """The value a field takes when nothing sets it."""
    return f.metadata["default"]


def field_choices(f):
    return f.metadata.get("choices")


def field_type(cls, f):
    """The field's type (`int`, `float`, `str`, `bool`) without Optional."""
    hint = typing.get_type_hints(cls)[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def coerce(cls, name, value):
    """A file's or a flag's value as the field's type, or a ValueError."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        raise ValueError(f"Unknown configuration key {name!r}. Known keys: {sorted(fields)}")
    if value is None:
        return None
    if name == "classes" and isinstance(value, (list, tuple)):
        value = ",".join(map(str, value))  # a file's [5, 6, 7]
    kind = field_type(cls, fields[name])
    if isinstance(value, bool) and kind is not bool:
        raise ValueError(f"{name} must be of type {kind.__name__}. Received: {name}={value!r}")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ValueError(f"{name} must be true or false. Received: {name}={value!r}")
    try:
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be of type {kind.__name__}. Received: {name}={value!r}"
        ) from None


def resolve(config, *layers):
    """A copy of `config` with each unset field taken from the first of
    `layers` (dicts, highest first) that has it, else its default."""
    values = {f.name: default_value(f) for f in dataclasses.fields(config)}
    for layer in reversed(layers):
        values.update(layer)
    values.update({k: v for k, v in dataclasses.asdict(config).items() if v is not None})
    return type(config)(**values)


def validate(config):
    """Raises ValueError naming the first field whose value breaks its
    metadata: required, rule, choices."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value is None:
            if f.metadata["required"]:
                raise ValueError(f"--{f.name.replace('_', '-')} is required.")
            continue
        if f.metadata["rule"] is not None:
            checks.check(f.name, value, f.metadata["rule"], flag=True)
        if f.metadata["choices"] is not None:
            checks.choice(f.name, value, f.metadata["choices"], flag=True)
