"""Acoustic features for template matching: narrow-band MFCC with deltas and per-utterance
mean/variance normalisation (CMVN).

All audio is brought to 8 kHz first, so takes recorded on a phone line, a headset at 16 kHz
or a browser at 48 kHz all compare on the same 100–3800 Hz band.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from voice.audio import resample

FEATURE_RATE = 8000
FRAME = 200  # 25 ms
HOP = 80  # 10 ms
NFFT = 256
N_MELS = 24
N_CEPS = 13
NOISE_SUBTRACTION = 2.0
DYNAMIC_RANGE_DB = 35.0


@cache
def _mel_filterbank() -> np.ndarray:
    def mel(f: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(100.0), mel(3800.0), N_MELS + 2))
    bins = np.fft.rfftfreq(NFFT, 1.0 / FEATURE_RATE)
    bank = np.zeros((N_MELS, len(bins)))
    for m in range(N_MELS):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (bins - lo) / (mid - lo)
        down = (hi - bins) / (hi - mid)
        bank[m] = np.maximum(0.0, np.minimum(up, down))
    return bank


@cache
def _dct_matrix() -> np.ndarray:
    n = np.arange(N_MELS)
    k = np.arange(N_CEPS)[:, None]
    return np.sqrt(2.0 / N_MELS) * np.cos(np.pi * k * (2 * n + 1) / (2 * N_MELS))


def log_mel_energies(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Frames × mel bands of log energies at 8 kHz (frames of 25 ms every 10 ms)."""
    x = resample(samples, sample_rate, FEATURE_RATE).astype(np.float64) / 32768.0
    if len(x) < FRAME:
        x = np.pad(x, (0, FRAME - len(x)))
    x = np.append(x[0], x[1:] - 0.97 * x[:-1])
    count = 1 + (len(x) - FRAME) // HOP
    idx = np.arange(FRAME)[None, :] + HOP * np.arange(count)[:, None]
    frames = x[idx] * np.hamming(FRAME)
    power = np.abs(np.fft.rfft(frames, NFFT)) ** 2
    return np.log(_denoise(power @ _mel_filterbank().T) + 1e-10)


def _denoise(mel: np.ndarray) -> np.ndarray:
    """Spectral subtraction of the stationary noise (estimated from the quietest tenth of the
    frames), then a floor DYNAMIC_RANGE_DB below the loudest band energy, so that clean
    takes and noisy utterances share the same "silence" level."""
    if NOISE_SUBTRACTION <= 0:
        return mel
    energy = mel.sum(axis=1)
    quiet = energy <= np.percentile(energy, 10)
    noise = mel[quiet].mean(axis=0)
    cleaned = np.maximum(mel - NOISE_SUBTRACTION * noise, 0.0)
    return cleaned + mel.max() * 10 ** (-DYNAMIC_RANGE_DB / 10)


def trim_silence(logmel: np.ndarray, range_db: float = 30.0, floor_db: float = 8.0) -> np.ndarray:
    """Drop leading and trailing frames that are much quieter than the loudest part, or
    close to the noise floor (the quietest tenth of the frames)."""
    energy = np.log10(np.exp(logmel).sum(axis=1) + 1e-12) * 10.0
    threshold = max(energy.max() - range_db, np.percentile(energy, 10) + floor_db)
    loud = np.flatnonzero(energy > threshold)
    if len(loud) == 0:
        return logmel
    return logmel[max(0, loud[0] - 2) : loud[-1] + 3]


def mfcc(samples: np.ndarray, sample_rate: int, trim: bool = True) -> np.ndarray:
    """Frames × 24 features: 12 cepstra (c1..c12) and their deltas, CMVN-normalised."""
    logmel = log_mel_energies(samples, sample_rate)
    if trim:
        logmel = trim_silence(logmel)
    ceps = (logmel @ _dct_matrix().T)[:, 1:]
    feats = np.hstack([ceps, _deltas(ceps)])
    mean = feats.mean(axis=0)
    std = feats.std(axis=0) + 1e-6
    return ((feats - mean) / std).astype(np.float32)


def _deltas(x: np.ndarray, width: int = 2) -> np.ndarray:
    padded = np.pad(x, ((width, width), (0, 0)), mode="edge")
    num = sum(
        k * (padded[width + k : len(x) + width + k] - padded[width - k : len(x) + width - k])
        for k in range(1, width + 1)
    )
    return np.asarray(num / (2 * sum(k * k for k in range(1, width + 1))))
