"""Run a module as ``python -m`` does, with some packages made unimportable (as if not installed):

    python -m tests.fakes.without timm,onnx training.train --data ...

Each named package is set to None in ``sys.modules``: importing it raises ImportError and
``importlib.util.find_spec`` returns None, exactly what an environment without it gives."""

import runpy
import sys

if __name__ == "__main__":
    names, module, *args = sys.argv[1:]
    for name in names.split(","):
        sys.modules[name] = None
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
