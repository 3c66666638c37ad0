from pathlib import Path

import numpy as np

from voice.audio import (
    add_noise,
    change_speed,
    gain,
    load,
    microphone_floor,
    read_wav,
    resample,
    rms,
    telephone_band,
    warehouse_noise,
    write_wav,
)


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


def _tone(freq: float, rate: int = 8000, seconds: float = 1.0, amp: float = 8000) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * freq * t) * amp).astype(np.int16)


def _db(x: float) -> float:
    return 20 * float(np.log10(x))


def test_gain_changes_the_level_by_the_decibels_asked() -> None:
    tone = _tone(440)
    for db in (-20.0, -30.0, 6.0):
        assert abs(_db(rms(gain(tone, db)) / rms(tone)) - db) < 0.1
    loud = gain(tone, 20.0)
    assert loud.dtype == np.int16 and loud.max() == 32767 and loud.min() == -32768


def test_telephone_band_passes_speech_frequencies_and_removes_the_rest() -> None:
    def kept_db(freq: float) -> float:
        tone = _tone(freq)
        out = telephone_band(tone, 8000)[800:]  # past the filter's onset
        return _db(rms(out) / rms(tone[800:]))

    assert kept_db(1000) > -1.0
    assert kept_db(100) < -20.0  # below 300 Hz: hum, handling noise
    assert kept_db(3850) < -20.0  # above 3400 Hz
    assert kept_db(200) < -10.0 and kept_db(3700) < -10.0


def test_change_speed_changes_length_and_pitch_by_the_factor() -> None:
    tone = _tone(500)
    for factor in (0.9, 1.1):
        out = change_speed(tone, factor)
        assert abs(len(out) - len(tone) / factor) <= 2
        spectrum = np.abs(np.fft.rfft(out.astype(np.float64)))
        peak = np.fft.rfftfreq(len(out), 1 / 8000)[int(np.argmax(spectrum))]
        assert abs(peak - 500 * factor) < 3
        assert abs(_db(rms(out[100:-100]) / rms(tone))) < 0.5


def test_microphone_floor_adds_noise_at_the_level_asked_and_repeats_by_seed() -> None:
    silence = np.zeros(16000, np.int16)
    for color in ("white", "pink"):
        floor = microphone_floor(silence, 8000, dbfs=-60.0, seed=4, color=color)
        assert abs(_db(rms(floor) / 32768) + 60.0) < 0.3
        assert np.array_equal(floor, microphone_floor(silence, 8000, -60.0, seed=4, color=color))
    white = microphone_floor(silence, 8000, -60.0, seed=4, color="white").astype(np.float64)
    pink = microphone_floor(silence, 8000, -60.0, seed=4, color="pink").astype(np.float64)

    def low_share(x: np.ndarray) -> float:
        power = np.abs(np.fft.rfft(x)) ** 2
        return float(power[: len(power) // 8].sum() / power.sum())  # below 500 Hz

    assert low_share(pink) > 2 * low_share(white)
    tone = _tone(440)
    added = microphone_floor(tone, 8000, -40.0, seed=1).astype(np.float64) - tone
    assert abs(_db(rms(added) / 32768) + 40.0) < 0.3
