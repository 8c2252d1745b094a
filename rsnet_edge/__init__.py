"""rsnet-edge: Resolution Switchable Networks (ECCV 2020) from training to phones."""

__version__ = "0.1.0"

from ._startup import guard_imports as _guard  # noqa: E402  (before the heavy imports below)

_guard()

from .manifest import Manifest, ManifestError  # noqa: E402,F401
from .models import (DEFAULT_RESOLUTIONS, ResolutionError, SwitchableBatchNorm2d,  # noqa: E402,F401
                     create_model, to_single_resolution)
from .models import set_resolution as _set_model_resolution  # noqa: E402
from .runtime import Classifier, RuntimeLoadError, load  # noqa: E402,F401


def set_resolution(target, r: int, interpolate: bool | None = None):
    """Switch a loaded :class:`Classifier` (``rsnet_edge.load(...)``; same as
    ``clf.set_resolution(r)``) or an RS-Net ``nn.Module`` (every switchable BN, see
    :func:`rsnet_edge.models.set_resolution`) to resolution ``r``."""
    if isinstance(target, Classifier):
        if interpolate is not None:
            raise ValueError("interpolate= applies to an RS-Net module; a Classifier serves the "
                             "resolutions its artifact has")
        return target.set_resolution(r)
    return _set_model_resolution(target, r, interpolate)

__all__ = ["DEFAULT_RESOLUTIONS", "Manifest", "ManifestError", "ResolutionError", "RuntimeLoadError",
           "SwitchableBatchNorm2d", "create_model", "load", "set_resolution", "to_single_resolution"]
