# Type stubs for the native extension. Its submodules (text, image, ...) are reached through the
# typed pure-Python modules convirt.text, convirt.image, convirt.transforms, ...; here they are opaque.
from types import ModuleType
from typing import Any, Dict

__version__: str
cuda_kernels_available: bool
INFONCE_DEFAULTS: Dict[str, float]

def set_num_threads(threads: int = ...) -> int: ...
def default_num_threads() -> int: ...
def __getattr__(name: str) -> Any: ...

text: ModuleType
image: ModuleType
models: ModuleType
data: ModuleType
eval: ModuleType
train: ModuleType
dist: ModuleType
