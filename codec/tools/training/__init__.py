"""Training and evaluation code for encoder-side RDO (amortised: a fine-tuned TAESD encoder).

Modules:

* `qsim` — quantization simulation for training (straight-through rounding / additive uniform noise
  at per-sample level counts over the codec's fixed quantizer range).
* the distortion loss MSE + a·(1−MS-SSIM) + b·LPIPS is the library's `codec.metrics.losses`.
* `data` — the crop pack built from ``$CODEC_TRAIN_DIR`` (never Kodak), cached in ``training-cache/``.
* `train_encoder` — ``python -m codec.tools.training.train_encoder`` (``make train-encoder``):
  fine-tunes the later blocks of the TAESD encoder against the frozen stock decoder and writes
  ``codec/zoo/*.safetensors``.
* `evaluate` — ``python -m codec.tools.training.evaluate``: Kodak bpp / PSNR / MS-SSIM / LPIPS / seconds
  for the stock encoder, the tuned encoder and iterative RDO at the same quantizer settings.

A tool: it imports the library (`codec.encoder.rdo`, `codec.metrics.losses`); the library never imports it.
"""
