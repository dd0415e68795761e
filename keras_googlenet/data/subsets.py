"""Parsing of `--classes`, apart from `sources` so that flag validation
imports no TensorFlow (`sources.subset` takes the subsets themselves)."""


def parse_classes(text):
    """The class indices of a `--classes` value: "5,6,7" or a list of ints,
    in the given order (which becomes the new label order); None for None
    or an empty string (every class)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        classes = [int(str(item).strip()) for item in items]
    except ValueError:
        raise ValueError("--classes must be comma-separated class indices, e.g. 5,6,7. "
                         f"Received: classes={text!r}") from None
    if any(c < 0 for c in classes):
        raise ValueError(f"--classes must be class indices >= 0. Received: classes={text!r}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"--classes lists a class twice. Received: classes={text!r}")
    return classes
