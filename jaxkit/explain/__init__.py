"""Explanations of Flax classifiers and their manipulation.

- :mod:`.maps`: Grad-CAM, CAM, gradient saliency, guided backpropagation; :class:`Tap` and
  :func:`layer_names` to reach a feature map of any Flax model.
- :mod:`.entropy`: local spatial entropy of maps and the saliency-entropy attack detector.
- :mod:`.manipulate`: edit params (and wrap the model) so Grad-CAM shows what an attacker wants while
  the outputs stay the same (T1-T4 of "How to Manipulate CNNs to Make Them Lie", BMVC-W 2019).
"""

from __future__ import annotations

from jaxkit.explain import entropy, manipulate, maps
from jaxkit.explain.entropy import *  # noqa: F403  (the face re-exports every public name)
from jaxkit.explain.maps import *  # noqa: F403  (the face re-exports every public name)

__all__ = ["manipulate"]
__all__ += maps.__all__
__all__ += entropy.__all__
