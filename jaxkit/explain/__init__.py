"""Explanations of Flax classifiers and their manipulation.

- :mod:`.maps`: Grad-CAM, CAM, gradient saliency, guided backpropagation; :class:`Tap` and
  :func:`layer_names` to reach a feature map of any Flax model.
- :mod:`.entropy`: local spatial entropy of maps and the saliency-entropy attack detector.
- :mod:`.manipulate`: edit params (and wrap the model) so Grad-CAM shows what an attacker wants while
  the outputs stay the same (T1-T4 of "How to Manipulate CNNs to Make Them Lie", BMVC-W 2019).
"""

from . import manipulate
from .entropy import detect, detection_report, entropy_scores, feature_response, fit_threshold, local_spatial_entropy
from .maps import (
    Tap,
    cam,
    features_and_logits,
    gradcam,
    gradcam_from_features,
    guided_backprop,
    guided_relu,
    guided_relus,
    layer_names,
    normalize_maps,
    resolve_layer,
    saliency,
)

__all__ = [
    "Tap",
    "cam",
    "features_and_logits",
    "gradcam",
    "gradcam_from_features",
    "guided_backprop",
    "guided_relu",
    "guided_relus",
    "layer_names",
    "normalize_maps",
    "resolve_layer",
    "saliency",
    "local_spatial_entropy",
    "entropy_scores",
    "feature_response",
    "fit_threshold",
    "detect",
    "detection_report",
    "manipulate",
]
