"""rsnet-edge: Resolution Switchable Networks (ECCV 2020) from training to phones."""

__version__ = "0.1.0"

from .manifest import Manifest, ManifestError  # noqa: E402,F401
from .models import (DEFAULT_RESOLUTIONS, ResolutionError, SwitchableBatchNorm2d,  # noqa: E402,F401
                     create_model, set_resolution, to_single_resolution)
from .runtime import RuntimeLoadError, load  # noqa: E402,F401

__all__ = ["DEFAULT_RESOLUTIONS", "Manifest", "ManifestError", "ResolutionError", "RuntimeLoadError",
           "SwitchableBatchNorm2d", "create_model", "load", "set_resolution", "to_single_resolution"]
