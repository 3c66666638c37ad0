"""`wavepick voice ...`: recognise WAV files, enroll operator voice profiles, synthesise."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer
from rich.console import Console

from voice.audio import read_wav, write_wav
from voice.grammar import NAMED_GRAMMARS, named_grammar

log = logging.getLogger(__name__)

app = typer.Typer(help="Speech: recognise answers, enroll operator voices, synthesise prompts.")


@app.command()
def recognize(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="WAV files"),
    grammar: str = typer.Option("digits", help=", ".join(NAMED_GRAMMARS)),
    locale: str = typer.Option("en-US", help="en-US, zh-CN, ko-KR"),
    profile: Path | None = typer.Option(None, help="operator voice profile directory"),
    engine: str = typer.Option("auto", help="auto, fusion, templates, pocketsphinx, vosk, whisper"),
    min_confidence: float | None = typer.Option(
        None,
        min=0.0,
        max=1.0,
        envvar="WAVEPICK_MIN_CONFIDENCE",
        help="accept at this confidence (default: each engine's own: 0.5, Vosk 0.6)",
    ),
) -> None:
    """Print one JSON object per file: file, text, tokens, confidence, accepted, engine."""
    from voice.stt.factory import EngineCache, EngineUnavailable, open_recognizer
    from voice.stt.recording import recognize_recording

    try:
        spec = named_grammar(grammar, locale)
    except LookupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    cache = EngineCache()
    recognizers = {}
    for file in files:
        try:
            samples, rate = read_wav(file)
        except (RuntimeError, ValueError) as exc:  # soundfile: not a readable audio file
            typer.echo(json.dumps({"file": str(file), "error": f"not a WAV file: {exc}"}), err=True)
            raise typer.Exit(2) from exc
        try:
            if rate not in recognizers:
                # the first time: models load and the words are synthesised (seconds)
                with Console(stderr=True).status("loading models and voices"):
                    recognizers[rate] = open_recognizer(
                        engine, spec, rate, profile, cache, min_confidence
                    )
            result = recognize_recording(recognizers[rate], samples, rate)
        except (EngineUnavailable, FileNotFoundError, ValueError) as exc:
            typer.echo(json.dumps({"file": str(file), "error": str(exc)}), err=True)
            raise typer.Exit(2) from exc
        line = {"file": str(file), **result.to_json()}
        typer.echo(json.dumps(line, ensure_ascii=False))


@app.command()
def enroll(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="WAV takes"),
    profile: Path = typer.Option(..., help="operator voice profile directory (created)"),
    word: str = typer.Option(..., help='token or spoken word: "7", "seven", "say again", "七"'),
) -> None:
    """Add takes of one word to an operator's voice profile."""
    from voice.enroll import NoSpeech, Profile, UnknownWord

    store = Profile.open(profile, create=True)
    for file in files:
        try:
            take = store.add_file(word, file)
        except NoSpeech as exc:
            typer.echo(f"{exc}, skipped", err=True)
            continue
        except UnknownWord as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from exc
        typer.echo(f"{file} -> {take.token} ({store.count(take.token)} takes)")


@app.command()
def say(
    text: str = typer.Argument(..., help="what to say"),
    output: Path = typer.Option(..., "-o", "--output", help="WAV file to write"),
    locale: str = typer.Option("en-US", help="en-US, zh-CN, ..."),
    sample_rate: int = typer.Option(16000, help="output sample rate"),
) -> None:
    """Synthesise TEXT into a WAV file."""
    from voice.tts import Synthesizer, UnsupportedLocale

    try:
        pcm: bytes = Synthesizer().synthesize(text, locale=locale, sample_rate=sample_rate)
    except (UnsupportedLocale, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    write_wav(output, pcm, sample_rate)
    typer.echo(str(output))


if __name__ == "__main__":
    app()
