# Type stubs for convirt.train.
from typing import Any, Callable, Dict, List, Mapping, Optional

PRETRAIN_DEFAULTS: Dict[str, Any]

def pretrain(config: Optional[Mapping[str, Any]] = ...,
             callback: Optional[Callable[[Dict[str, Any]], Optional[bool]]] = ...,
             **overrides: Any) -> Dict[str, Any]: ...

__all__: List[str]
