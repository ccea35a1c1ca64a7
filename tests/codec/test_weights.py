"""Weight/data resolution: env var → ../shared → helpful error; sha256 verification."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from codec import resources, weights
from codec.errors import CodecError, ModelNotFoundError, WeightsChecksumError


@pytest.fixture
def no_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(weights.NO_SHARED_FALLBACK_ENV, "1")


def test_missing_weights_message_names_file_env_and_upstream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_shared: None
) -> None:
    monkeypatch.setenv("CODEC_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelNotFoundError) as info:
        weights.weight_file("taesd_encoder.safetensors")
    msg = str(info.value)
    assert "taesd_encoder.safetensors" in msg
    assert "CODEC_MODEL_DIR" in msg
    assert str(tmp_path) in msg
    assert "github.com/madebyollin/taesd" in msg
    assert "madebyollin/taesd" in msg and "Hugging Face" in msg
    assert isinstance(info.value, CodecError)


def test_missing_weights_through_get_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_shared: None
) -> None:
    from codec.models import registry
    from codec.models.registry import get_model

    monkeypatch.setattr(registry, "_cache", {})  # an already loaded taesd must not hide the error
    monkeypatch.setenv("CODEC_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match=r"taesd_encoder\.safetensors.*CODEC_MODEL_DIR"):
        get_model("taesd", device="cpu", model_path=None)


def test_no_directory_configured(monkeypatch: pytest.MonkeyPatch, no_shared: None) -> None:
    monkeypatch.delenv("CODEC_KODAK_DIR", raising=False)
    with pytest.raises(ModelNotFoundError, match="CODEC_KODAK_DIR"):
        weights.kodak_dir()


def test_env_var_wins_over_shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEC_METRICS_DIR", str(tmp_path))
    assert weights.metrics_dir() == tmp_path
    explicit = tmp_path / "explicit"
    explicit.mkdir()
    assert weights.resolve_dir("metrics", explicit=explicit) == explicit
    assert weights.candidate_dirs("metrics")[0] == tmp_path


def test_shared_fallback_and_checksum() -> None:
    shared = weights.shared_root() / "models" / "taesd"
    if not (shared / "taesd_encoder.safetensors").is_file():
        pytest.skip("../shared/models/taesd is not present on this machine")
    weights._clear_cache()
    p = weights.weight_file("taesd_encoder.safetensors")
    assert p.parent.resolve() == shared.resolve()
    assert weights.sha256_file(p) == weights.SHA256[p.name]
    # cached: a second check does not re-hash the file
    calls: list[Path] = []
    orig = resources.sha256_file
    try:  # the one resolver's module: weights only re-exports it
        resources.sha256_file = lambda path: calls.append(Path(path)) or orig(path)  # type: ignore[assignment]
        assert weights.verify_sha256(p) is True
        weights._clear_cache()
        assert weights.verify_sha256(p) is True
    finally:
        resources.sha256_file = orig  # type: ignore[assignment]
    assert calls == [p.resolve()]  # hashed again only after the cache was cleared


def test_checksum_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_shared: None) -> None:
    bad = tmp_path / "taesd_decoder.safetensors"
    bad.write_bytes(b"not the real weights")
    monkeypatch.setenv("CODEC_MODEL_DIR", str(tmp_path))
    with pytest.raises(WeightsChecksumError, match="sha256 mismatch"):
        weights.weight_file("taesd_decoder.safetensors")
    # the failure is cached too and still raises
    with pytest.raises(WeightsChecksumError):
        weights.weight_file("taesd_decoder.safetensors")


def test_copied_real_file_verifies_from_env_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = weights.shared_root() / "models" / "taesd" / "taesd_decoder.safetensors"
    if not src.is_file():
        pytest.skip("../shared/models/taesd is not present on this machine")
    shutil.copy(src, tmp_path / src.name)
    monkeypatch.setenv("CODEC_MODEL_DIR", str(tmp_path))
    assert weights.weight_file(src.name) == tmp_path / src.name


def test_unknown_kind() -> None:
    with pytest.raises(ValueError):
        weights.resolve_dir("nope")
