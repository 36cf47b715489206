# Type stubs for convirt.train.
from typing import Any, Callable, Dict, List, Mapping, Optional

PRETRAIN_DEFAULTS: Dict[str, Any]
PRETRAIN_ALIASES: Dict[str, str]

def pretrain(config: Optional[Mapping[str, Any]] = ...,
             callback: Optional[Callable[[Dict[str, Any]], Optional[bool]]] = ...,
             **overrides: Any) -> Dict[str, Any]:
    """Runs ConVIRT pretraining (the C++ trainer) from a config; see PRETRAIN_DEFAULTS."""

__all__: List[str]
