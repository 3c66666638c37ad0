"""`wavepick voice enroll` and `wavepick voice recognize` on real files."""

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.voice.conftest import Speak
from voice.audio import write_wav
from voice.cli import app
from voice.stt.whisper import packaged_model_path as whisper_model_path

runner = CliRunner()


def test_recognize_prints_one_json_line_per_file(fsdd: Path) -> None:
    files = [fsdd / "3_lucas_20.wav", fsdd / "8_jackson_31.wav"]
    args = ["recognize", "--grammar", "digits", "--engine", "pocketsphinx", *map(str, files)]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    lines = [json.loads(line) for line in out.output.splitlines()]
    assert [line["file"] for line in lines] == [str(f) for f in files]
    for line in lines:
        assert set(line) >= {"file", "text", "confidence", "engine", "tokens", "accepted"}
        assert line["engine"] == "pocketsphinx"


def test_enroll_then_recognize_mandarin_with_the_profile(speak: Speak, tmp_path: Path) -> None:
    profile = tmp_path / "op"
    words = {"七": "7", "三": "3", "取消": "cancel", "退出": "sign_off"}
    for word in words:
        takes = []
        for i, speed in enumerate((150, 170, 190)):
            path = tmp_path / f"{words[word]}-{i}.wav"
            write_wav(path, speak(word, "cmn", 16000, speed), 16000)
            takes.append(str(path))
        out = runner.invoke(app, ["enroll", "--profile", str(profile), "--word", word, *takes])
        assert out.exit_code == 0, out.output
    test = tmp_path / "test.wav"
    write_wav(test, speak("取消", "cmn", 8000, 175), 8000)  # a narrow-band phone
    out = runner.invoke(
        app,
        [
            "recognize",
            "--grammar",
            "all",
            "--locale",
            "zh-CN",
            "--profile",
            str(profile),
            str(test),
        ],
    )
    assert out.exit_code == 0, out.output
    line = json.loads(out.output)
    assert line["tokens"] == ["cancel"] and line["text"] == "取消"
    # the operator's takes, fused with the words in synthetic voices when Whisper's encoder
    # is there to match them
    synthetic = whisper_model_path() is not None
    assert line["engine"] == ("fusion(templates+synthetic)" if synthetic else "templates")


def test_enrolling_an_unknown_word_fails(speak: Speak, tmp_path: Path) -> None:
    take = tmp_path / "x.wav"
    write_wav(take, speak("banana", "en-us", 16000), 16000)
    out = runner.invoke(
        app, ["enroll", "--profile", str(tmp_path / "p"), "--word", "banana", str(take)]
    )
    assert out.exit_code == 2
