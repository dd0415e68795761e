"""Our Keras classes registered, so that plain `keras.models.load_model`
reads every `.keras` file the package writes once `keras_googlenet` is
imported, as keras.applications and KerasHub models load once their
package is.

Keras resolves a saved class by its registered name ("keras_googlenet>
LocalResponseNormalization"), and imports a module path only for its own
packages, so our classes must be registered before a file is read. But
`import keras_googlenet` must stay free of Keras and TensorFlow (a fast
`googlenet --help`). So `register_when_keras_is_imported` registers at once
when Keras is already imported, and otherwise waits for Keras' import: a
finder on `sys.meta_path` lets Python import Keras as usual, then imports
the modules that register our classes, and removes itself. Nothing here
imports Keras until then.
"""
import importlib
import importlib.util
import sys

# The modules whose import registers a class that a saved file names. They
# import only Keras (and Table 1's data): registering runs inside Keras'
# own import, which any of our modules may be in the middle of.
MODULES = ("keras_googlenet.models.layers", "keras_googlenet.models.metrics",
           "keras_googlenet.models.losses", "keras_googlenet.models.schedules",
           "keras_googlenet.models.classifier")


def register():
    """Imports `MODULES` (and so Keras)."""
    for module in MODULES:
        importlib.import_module(module)


class _RegisterAfterKeras:
    """Finds nothing itself: wraps the loader of `keras` so that `register`
    runs right after Keras has been executed."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)  # once, and not for the search below
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            register()

        spec.loader = _Loader(loader, exec_then_register)
        return spec


class _Loader:
    """The loader of `keras`, with `exec_module` replaced."""

    def __init__(self, loader, exec_module):
        self.loader, self.exec_module = loader, exec_module

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def __getattr__(self, name):  # the rest of the original loader's interface
        return getattr(self.loader, name)


def register_when_keras_is_imported():
    """`register` now if Keras is imported, else right after its import."""
    if "keras" in sys.modules:
        register()
    elif not any(isinstance(f, _RegisterAfterKeras) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterKeras())
