"""Makes ``import convirt`` find the freshly built package (build/python) when PYTHONPATH does not."""
import os
import sys

_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_build_python = os.environ.get("CONVIRT_PYTHON_DIR", os.path.join(_root, "build", "python"))
if os.path.isdir(_build_python) and _build_python not in sys.path:
    sys.path.insert(0, _build_python)
