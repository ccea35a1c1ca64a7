"""Autoencoder backends behind one interface (:class:`codec.models.base.LatentAutoencoder`).

Importing this package does not import torch; ``get_model`` does.
"""

from codec.models.registry import DEFAULT_MODEL, MODELS, ModelSpec, get_model, get_spec, list_models

__all__ = ["DEFAULT_MODEL", "MODELS", "ModelSpec", "get_model", "get_spec", "list_models"]
