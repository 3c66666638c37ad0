"""Audio plumbing for speech: reading WAV files at any rate and width, conversion to mono
16-bit PCM, resampling, mixing noise at a given SNR, and writing WAV.

Everything inside `voice` passes audio around as mono int16 numpy arrays (or the same as
PCM s16le bytes on the wire) together with an explicit sample rate.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

log = logging.getLogger(__name__)

PCM = np.ndarray  # mono int16 samples


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Convert float (-1..1) or integer samples, mono or multi-channel, to mono int16."""
    x = np.asarray(samples)
    if x.ndim == 2:
        x = x.astype(np.float64).mean(axis=1)
    if x.dtype == np.int16:
        return x
    if np.issubdtype(x.dtype, np.floating):
        return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
    if np.issubdtype(x.dtype, np.integer):
        bits = 8 * x.dtype.itemsize
        return (x.astype(np.int64) >> (bits - 16)).astype(np.int16)
    raise TypeError(f"unsupported sample type {x.dtype}")


def read_wav(source: str | Path | bytes) -> tuple[np.ndarray, int]:
    """Read a WAV (or any format soundfile knows) as mono int16 and its sample rate."""
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    data, rate = sf.read(handle, dtype="int16", always_2d=False)
    return to_int16(data), int(rate)


def write_wav(path: str | Path, pcm: bytes | np.ndarray, sample_rate: int) -> None:
    """Write mono 16-bit PCM (bytes s16le or an int16 array) as a WAV file."""
    samples = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, bytes) else to_int16(pcm)
    sf.write(str(path), samples, sample_rate, subtype="PCM_16")


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample mono int16 audio with soxr (high quality, fast); a no-op at equal rates."""
    x = to_int16(samples)
    if from_rate == to_rate:
        return x
    return to_int16(soxr.resample(x, from_rate, to_rate))


def load(source: str | Path | bytes, sample_rate: int) -> np.ndarray:
    """Read a file and return it as mono int16 at `sample_rate`."""
    samples, rate = read_wav(source)
    return resample(samples, rate, sample_rate)


def pcm_bytes(samples: np.ndarray) -> bytes:
    """Mono int16 samples as PCM s16le bytes."""
    return to_int16(samples).astype("<i2").tobytes()


def from_pcm_bytes(pcm: bytes) -> np.ndarray:
    """PCM s16le bytes as an int16 array (a copy, safe to keep)."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.int16)


def rms(samples: np.ndarray) -> float:
    """Root-mean-square level of int16 samples (0 for empty input)."""
    if len(samples) == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))


def add_noise(
    speech: np.ndarray, noise: np.ndarray, snr_db: float, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Mix `noise` into `speech` so that speech power / noise power is `snr_db` decibels.

    The noise is looped or cut (from a random offset) to the speech length. Speech power is
    measured over the louder half of the frames, so leading and trailing silence does not
    make the mix cleaner than its nominal SNR.
    """
    rng = rng or np.random.default_rng(0)
    s = speech.astype(np.float64)
    n = noise.astype(np.float64)
    if len(n) == 0 or len(s) == 0:
        return to_int16(speech)
    reps = int(np.ceil((len(s) + len(n)) / len(n)))
    n = np.tile(n, reps)
    start = int(rng.integers(0, len(n) - len(s) + 1))
    n = n[start : start + len(s)]
    speech_power = _active_power(s)
    noise_power = float(np.mean(n**2)) or 1e-9
    gain = np.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))
    return np.clip(np.round(s + gain * n), -32768, 32767).astype(np.int16)


def _active_power(x: np.ndarray, frame: int = 160) -> float:
    frames = len(x) // frame
    if frames < 2:
        return float(np.mean(x**2)) or 1e-9
    energies = np.mean(x[: frames * frame].reshape(frames, frame) ** 2, axis=1)
    loud = np.sort(energies)[frames // 2 :]
    return float(np.mean(loud)) or 1e-9


def warehouse_noise(
    seconds: float, sample_rate: int, kind: str = "mixed", seed: int = 0
) -> np.ndarray:
    """Synthetic warehouse noise: conveyor hum, forklift reversing beeps, fan/air noise.

    `kind` is "hum", "beeps", "babble-free air" ("air") or "mixed". Deterministic per seed,
    so benchmarks and tests are repeatable. Returned as int16 at about -12 dBFS.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    parts: list[np.ndarray] = []
    if kind in ("hum", "mixed"):
        hum = sum(
            np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28)) / k
            for k, f in enumerate((50.0, 100.0, 150.0, 300.0), start=1)
        )
        rumble = _lowpass(rng.standard_normal(n), sample_rate, 400.0) * 3.0
        parts.append(np.asarray(hum) + rumble)
    if kind in ("beeps", "mixed"):
        on = (np.floor(t / 0.5) % 2 == 0).astype(np.float64)  # 0.5 s on, 0.5 s off
        freq = min(1000.0 + 1000.0 * rng.uniform(0.0, 1.0), sample_rate / 2.5)
        parts.append(on * np.sin(2 * np.pi * freq * t) * 1.5)
    if kind in ("air", "mixed"):
        parts.append(_lowpass(rng.standard_normal(n), sample_rate, 3000.0))
    if not parts:
        raise ValueError(f"unknown noise kind {kind!r}")
    mix = np.sum(parts, axis=0)
    mix = mix / (np.max(np.abs(mix)) or 1.0) * 0.25
    return to_int16(mix)


def _lowpass(x: np.ndarray, sample_rate: int, cutoff: float) -> np.ndarray:
    from scipy.signal import butter, lfilter

    b, a = butter(2, min(cutoff / (sample_rate / 2), 0.99))
    y = lfilter(b, a, x)
    return np.asarray(y / (np.std(y) or 1.0))


def reverberate(
    samples: np.ndarray, sample_rate: int, rt60: float = 0.4, seed: int = 0
) -> np.ndarray:
    """Convolve with a synthetic exponentially decaying room response (a hall's reverb)."""
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(seed)
    length = int(rt60 * sample_rate)
    decay = np.exp(-6.9 * np.arange(length) / max(length, 1))
    ir = rng.standard_normal(length) * decay * 0.3
    ir[0] = 1.0
    wet = fftconvolve(samples.astype(np.float64), ir)[: len(samples)]
    peak = np.max(np.abs(wet)) or 1.0
    scale = min(1.0, 32000.0 / peak) if peak > 32000 else np.max(np.abs(samples)) / peak
    return np.clip(np.round(wet * scale), -32768, 32767).astype(np.int16)


# -- conditions a recording may meet on its way to the recogniser (benchmarks, tests) ----
# Each takes and returns mono int16 and is deterministic (a seed where noise is drawn).


def gain(samples: np.ndarray, db: float) -> np.ndarray:
    """The recording `db` decibels louder (negative: quieter), rounded and clipped to int16:
    a quieter talker, a microphone further from the mouth, a lower input gain."""
    scaled = samples.astype(np.float64) * 10 ** (db / 20)
    return np.clip(np.round(scaled), -32768, 32767).astype(np.int16)


def telephone_band(
    samples: np.ndarray, sample_rate: int, low: float = 300.0, high: float = 3400.0
) -> np.ndarray:
    """Band-pass to the telephone band (300-3400 Hz by default), as a narrow-band headset,
    radio or phone line passes speech: a causal 4th-order Butterworth band-pass."""
    from scipy.signal import butter, sosfilt

    nyquist = sample_rate / 2
    high = min(high, 0.98 * nyquist)
    sos = butter(4, [low, high], btype="bandpass", output="sos", fs=sample_rate)
    y = sosfilt(sos, samples.astype(np.float64))
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def change_speed(samples: np.ndarray, factor: float) -> np.ndarray:
    """Play the recording `factor` times as fast, tempo and pitch together (like sox
    ``speed``): 1.1 is 10% faster, higher and 1/1.1 as long; 0.9 slower and lower."""
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, not {factor}")
    x = to_int16(samples)
    if factor == 1.0 or len(x) == 0:
        return x.copy()
    # read the samples as if taken at `factor` times the rate, and resample back
    y = soxr.resample(x.astype(np.float64), 10000.0 * factor, 10000.0)
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def microphone_floor(
    samples: np.ndarray, sample_rate: int, dbfs: float = -60.0, seed: int = 0, color: str = "pink"
) -> np.ndarray:
    """Add a steady noise floor (microphone self-noise, preamp hiss, room tone) whose RMS is
    `dbfs` decibels relative to full scale (32768): -60 dBFS is an RMS of about 33.

    The level is absolute, not relative to the speech, so a quiet talker sits closer to it.
    `color` is "white" or "pink" (power falling 3 dB an octave, as hiss and room tone do).
    """
    rng = np.random.default_rng(seed)
    n = len(samples)
    if n == 0:
        return to_int16(samples)
    noise = rng.standard_normal(n)
    if color == "pink":
        spectrum = np.fft.rfft(noise)
        freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
        shape = np.ones_like(freqs)
        shape[1:] = 1.0 / np.sqrt(np.maximum(freqs[1:], 20.0))
        shape[0] = 0.0
        noise = np.fft.irfft(spectrum * shape, n)
    elif color != "white":
        raise ValueError(f"unknown noise color {color!r}")
    noise -= np.mean(noise)
    level = float(np.sqrt(np.mean(noise**2))) or 1.0
    noise *= 32768.0 * 10 ** (dbfs / 20) / level
    mixed = samples.astype(np.float64) + noise
    return np.clip(np.round(mixed), -32768, 32767).astype(np.int16)
