from pathlib import Path

import numpy as np

from voice.audio import add_noise, load, read_wav, resample, rms, warehouse_noise, write_wav


def test_reads_8khz_human_recording_as_mono_int16(fsdd: Path) -> None:
    samples, rate = read_wav(fsdd / "7_jackson_3.wav")
    assert rate == 8000
    assert samples.dtype == np.int16 and samples.ndim == 1
    assert len(load(fsdd / "7_jackson_3.wav", 16000)) == 2 * len(samples)


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    tone = (np.sin(np.arange(4800) / 5.0) * 8000).astype(np.int16)
    write_wav(tmp_path / "tone.wav", tone.tobytes(), 48000)
    back, rate = read_wav(tmp_path / "tone.wav")
    assert rate == 48000
    assert np.array_equal(back, tone)


def test_resampling_keeps_a_tone_level() -> None:
    t = np.arange(16000) / 16000
    tone = (np.sin(2 * np.pi * 440 * t) * 10000).astype(np.int16)
    down = resample(tone, 16000, 8000)
    assert len(down) == 8000
    assert abs(rms(down) - rms(tone)) / rms(tone) < 0.05


def test_noise_is_mixed_at_the_requested_snr() -> None:
    rng = np.random.default_rng(1)
    speech = (rng.standard_normal(8000) * 3000).astype(np.int16)
    noise = warehouse_noise(1.0, 8000, "mixed", seed=3)
    mixed = add_noise(speech, noise, snr_db=10.0)
    residual = mixed.astype(np.float64) - speech
    snr = 20 * np.log10(rms(speech) / rms(residual.astype(np.int16)))
    assert 9.0 < snr < 11.0
