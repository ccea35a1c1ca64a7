"""The gallery app: photos stored only as compressed latents (see docs/ARCHITECTURE.md)."""
