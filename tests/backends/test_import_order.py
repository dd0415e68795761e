"""Keras before TensorFlow (see keras_googlenet/backends.py): with triton
installed, as every CUDA build of torch has it, loading Keras' PyTorch
backend after TensorFlow aborts the process. These tests check the order
itself, so they fail without triton too."""
import ast
import pathlib

import pytest

import helpers as fx

PACKAGE = pathlib.Path(fx.ROOT) / "keras_googlenet"


def _top_level_imports(tree):
    """(line, top-level module name) of the module-level imports."""
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module.split(".")[0]


def test_every_module_that_imports_tensorflow_imports_keras_first():
    late = []
    for path in sorted(PACKAGE.rglob("*.py")):
        imports = list(_top_level_imports(ast.parse(path.read_text(encoding="utf-8"))))
        tensorflow = [line for line, name in imports if name == "tensorflow"]
        keras = [line for line, name in imports if name == "keras"]
        if tensorflow and not (keras and min(keras) < min(tensorflow)):
            late.append(str(path.relative_to(fx.ROOT)))
    assert late == []


ORDER = """
import sys
from keras_googlenet import cli
code = cli.main(sys.argv[1:])
names = list(sys.modules)  # in the order they were first imported
print("RESULT", {"code": code, "torch": names.index("torch"),
                 "tensorflow": names.index("tensorflow")}.__repr__().replace("'", '"'))
"""


@pytest.mark.slow
def test_the_command_line_imports_torch_before_tensorflow(tmp_path):
    model = fx.small_model()
    path = str(tmp_path / "m.keras")
    model.save(path)
    image = fx.write_file(str(tmp_path / "a.png"), fx.encode(fx.random_array(40, 50)))
    result = fx.result_of(fx.run_under("torch", ["-c", ORDER, "predict", image, "--model",
                                                 path]))
    assert result["code"] == 0
    assert result["torch"] < result["tensorflow"]
