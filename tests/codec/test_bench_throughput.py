"""The GPU throughput bench (`codec.tools.bench.throughput`) runs end to end on the CPU (tiny photos)."""

from __future__ import annotations

import json
import os

from codec.models import batching
from codec.models.registry import clear_cache
from codec.tools.bench import throughput


def test_throughput_bench_smoke_on_cpu(kodak_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(batching.BATCH_MAX_ENV, "1")  # the bench sets it per run; restored afterwards
    try:
        result = throughput.main(["--images", str(kodak_dir), "--device", "cpu", "--photos", "2",
                                  "--batches", "1,2", "--size", "96x64", "--repeats", "1",
                                  "--wait-ms", "200", "--out", str(tmp_path)])
    finally:
        os.environ[batching.BATCH_MAX_ENV] = "1"
        clear_cache()
    assert [r["batch"] for r in result["pipeline"]] == [1, 2]
    batched = result["pipeline"][1]
    assert batched["photos"] == 2 and batched["photos_per_s"] > 0
    # decodes go to the stock decoder or to the tuned one of the newest latent filter, both batched
    decoded_rows = sum(batched["passes"].get(k, {}).get("rows", 0) for k in ("decode", "tuned-decode"))
    assert decoded_rows >= 1 and "passes" not in result["pipeline"][0]
    assert result["exactness"]["psnr_alone_vs_batched_db"] > 30
    saved = json.loads((tmp_path / "throughput.json").read_text())
    assert saved["model"][1]["decode_images_per_s"] > 0
    assert "| 2 |" in (tmp_path / "throughput.md").read_text()
