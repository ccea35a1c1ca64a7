"""The encoder side: `EncodeSession` (one image, latents and streams cached), rate control, RDO, the
fidelity guard's search, and `encode` that runs them in order. Torch-side.

Modules: `codec.encoder.encode` (the entry point), `.session`, `.ratecontrol` (quality / byte budget
→ quantizer setting), `.rdo` (tuned encoder, iterative refinement), `.guard` (fidelity guard).
Importing this package is cheap; the submodules import torch.
"""
