"""The voice (issue 16): instrument, tempo and transpose as abc2midi directives, heard in the WAV
(a flute's spectrum is not a fiddle's; 240 quarter notes a minute plays in half the time of
120), in the MIDI's notes, through the CLI's flags, and remembered by the app."""

from __future__ import annotations

import json
import wave
from pathlib import Path
from typing import Any

import mido
import numpy as np
import pytest
from textual.widgets import Input, Select

from core.abc import SoundError, run_abc2midi
from core.audio import Rendered, midi_notes, render, save_tune
from core.cli import build_parser, main
from core.cli_sound import voice_from_args
from core.voice import (
    INSTRUMENTS,
    Voice,
    VoiceError,
    apply_voice,
    original_line,
    voice_tune,
)
from folkgen_tui.app import FolkgenApp
from folkgen_tui.screens.generate import GenerateScreen
from folkgen_tui.sound import Sound
from tests.app_helpers import hold_parts, show_screen, type_into, wait_for

# Four bars of a reel: eight seconds at abc2midi's default 120 quarter notes a minute.
REEL = "X:1\nT:Voice Reel\nM:4/4\nL:1/8\nK:D\nDFAd fdAF|GBdg fdAF|EFGA BcdB|AFDF E2D2|]\n"
AUDIBLE = 0.01  # of the loudest sample: where the sound has died away


def midi_programs(path: Path) -> list[int]:
    mid = mido.MidiFile(str(path))
    return [m.program for m in mido.merge_tracks(mid.tracks) if m.type == "program_change"]


def wav_mono(path: Path) -> tuple[np.ndarray[Any, np.dtype[np.float64]], int]:
    with wave.open(str(path), "rb") as w:
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        rate = w.getframerate()
    return frames.astype(np.float64).reshape(-1, 2).mean(axis=1), rate


def spectral_centroid(path: Path) -> float:
    """The WAV's magnitude-weighted mean frequency in Hz (its brightness)."""
    samples, rate = wav_mono(path)
    magnitude = np.abs(np.fft.rfft(samples))
    freqs = np.fft.rfftfreq(samples.size, 1 / rate)
    return float((freqs * magnitude).sum() / magnitude.sum())


def audible_seconds(path: Path) -> float:
    """Seconds until the last sample above AUDIBLE of the peak."""
    samples, rate = wav_mono(path)
    loud = np.nonzero(np.abs(samples) > AUDIBLE * np.abs(samples).max())[0]
    return float(loud[-1] + 1) / rate


# --- apply_voice -------------------------------------------------------------------------------


def test_voice_lines_follow_the_key_line_and_fill_the_tempo() -> None:
    voiced = voice_tune(REEL, Voice("flute", 140, -2))
    lines = voiced.text.split("\n")
    assert lines[:4] == REEL.split("\n")[:4]  # header as written, up to K:
    assert lines[4:8] == ["Q:1/4=140", "K:D", "%%MIDI program 73", "%%MIDI transpose -2"]
    assert lines[8] == REEL.split("\n")[5]
    assert voiced.inserted == (5, 7, 8)
    assert [original_line(n, voiced.inserted) for n in (4, 5, 6, 8, 9)] == [4, 4, 5, 5, 6]


@pytest.mark.parametrize("written", ["Q:120", "Q:1/4=90", "Q:3/8=80", 'Q:"Allegro" 1/4=60'])
def test_the_header_tempo_is_replaced_in_place(written: str) -> None:
    tune = REEL.replace("L:1/8\n", f"L:1/8\n{written}\n")
    lines = apply_voice(tune, Voice(tempo=200)).split("\n")
    assert lines[4] == "Q:1/4=200"
    assert len(lines) == len(tune.split("\n"))  # nothing added: tempo only, in its own line


def test_later_tempo_changes_give_way_to_the_voice_columns_kept() -> None:
    tune = REEL.replace("EFGA BcdB|", "[Q:1/4=60]EFGA BcdB|\nQ:1/4=300\n")
    out = apply_voice(tune, Voice(tempo=150)).split("\n")
    assert out[4:6] == ["Q:1/4=150", "K:D"]
    body = out[6:]
    assert body[0] == "DFAd fdAF|GBdg fdAF|" + " " * len("[Q:1/4=60]") + "EFGA BcdB|"
    assert body[1] == "%"
    assert not any("Q:" in line for line in body)


def test_unset_parts_of_the_voice_leave_the_tune_as_written() -> None:
    tune = REEL.replace("L:1/8\n", "L:1/8\nQ:1/4=90\n%%MIDI program 20\n")
    assert apply_voice(tune, Voice()) == tune
    out = apply_voice(tune, Voice(transpose=3))
    assert "Q:1/4=90" in out and "%%MIDI program 20" in out and "%%MIDI transpose 3" in out


def test_the_tunes_own_program_gives_way_to_the_chosen_instrument() -> None:
    tune = REEL.replace("L:1/8\n", "L:1/8\n%%MIDI program 20\n").replace(
        "GBdg", "[I:MIDI program 5]GBdg"
    )
    out = apply_voice(tune, Voice("harp"))
    assert "program 20" not in out and "program 5" not in out
    assert out.count("%%MIDI program 46") == 1
    assert len(out.split("\n")) == len(tune.split("\n")) + 1


def test_every_voice_of_a_tune_gets_the_instrument() -> None:
    tune = "X:1\nT:Two voices\nM:4/4\nL:1/8\nK:G\nV:1\nGABc dedB|\nV:2\nG,2B,2 D2G2|\n"
    check = run_abc2midi(tune, None)
    assert check.valid
    out = apply_voice(tune, Voice("fiddle"))
    assert out.count("%%MIDI program 110") == 3  # the header's, then one per V: line


def test_each_tune_of_a_text_gets_the_voice_and_one_without_a_key_line_none() -> None:
    header = "%%MIDI program 20\n\n"  # the file header: abc2midi ignores MIDI directives there
    two = header + REEL + "\n" + REEL.replace("X:1", "X:2")
    voiced = voice_tune(two, Voice("flute", 100))
    assert voiced.text.startswith(header)
    assert voiced.text.count("%%MIDI program 73") == 2 and voiced.text.count("Q:1/4=100") == 2
    assert voiced.inserted == (7, 9, 16, 18)  # around each K: (lines 7 and 14 of the text)
    assert [original_line(n, voiced.inserted) for n in (8, 10, 17, 19)] == [7, 8, 14, 15]
    keyless = "X:1\nT:No key\nCDEF|\n"
    assert apply_voice(keyless, Voice("flute", 100, 2)) == keyless


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"instrument": "kazoo"}, "unknown instrument 'kazoo'; choose one of: accordion, "),
        ({"tempo": 1000}, "the tempo must be 20 to 400 quarter notes a minute, not 1000"),
        ({"tempo": 19}, "the tempo must be 20 to 400"),
        ({"transpose": 13}, "the transpose must be -12 to 12 semitones, not 13"),
        ({"transpose": True}, "the transpose must be a whole number"),
        ({"tempo": 120.5}, "the tempo must be a whole number"),
    ],
)
def test_bad_voices_are_refused_with_one_sentence(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(VoiceError) as caught:
        Voice(**kwargs)
    assert str(caught.value).startswith(message)


def test_instrument_names_are_forgiving_and_settings_round_trip() -> None:
    voice = Voice("Tin-Whistle", 96, -12)
    assert voice.instrument == "tin whistle" and voice.program == INSTRUMENTS["tin whistle"] == 78
    assert Voice.from_dict(json.loads(json.dumps(voice.to_dict()))) == voice
    assert Voice.from_dict({"instrument": "kazoo"}) == Voice()
    assert Voice.from_dict("junk") == Voice()
    assert all(0 <= p <= 127 for p in INSTRUMENTS.values())
    for name in ("fiddle", "flute", "tin whistle", "uilleann pipes", "accordion", "concertina"):
        assert name in INSTRUMENTS
    for name in ("harp", "piano", "guitar", "mandolin", "banjo", "bagpipes"):
        assert name in INSTRUMENTS


# --- what abc2midi makes of it -------------------------------------------------------------------


def test_abc2midi_obeys_the_voice(tmp_path: Path) -> None:
    midi = tmp_path / "t.mid"
    plain = run_abc2midi(REEL, midi)
    assert plain.valid and midi_programs(midi) == []  # abc2midi's default: piano
    assert plain.duration_seconds == pytest.approx(8.0, abs=0.1)
    # L:1/16 with a bare Q:60: abc2midi counts quarter notes; the voice's 1/4=240 is 4x faster.
    sixteenths = REEL.replace("L:1/8", "L:1/16\nQ:60")
    slow = run_abc2midi(sixteenths, None)
    fast = run_abc2midi(sixteenths, midi, voice=Voice("concertina", 240, 12))
    assert fast.valid and fast.errors == [] and fast.warnings == slow.warnings
    assert fast.duration_seconds * 4 == pytest.approx(slow.duration_seconds, rel=0.02)
    assert midi_programs(midi) == [23]


def test_messages_keep_the_tunes_own_lines() -> None:
    broken = REEL.replace("AFDF E2D2|]", "AFDF E2D2|]\nabc ]] def")
    plain = run_abc2midi(broken, None)
    voiced = run_abc2midi(broken, None, voice=Voice("harp", 100, 5))
    assert plain.errors and [str(e) for e in voiced.errors] == [str(e) for e in plain.errors]


def test_a_users_file_still_cannot_name_files_with_a_voice() -> None:
    hostile = REEL.replace("K:D\n", "K:D\n%%abc-include /dev/zero\n%%MIDI ptstress /etc/passwd\n")
    check = run_abc2midi(hostile, None, voice=Voice("flute", 200))
    assert [e.line for e in check.errors[:2]] == [6, 7]
    assert "folkgen left this line out" in check.errors[0].text


# --- the sound ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendered]:
    out = tmp_path_factory.mktemp("voices")
    voices = {
        "fiddle": Voice("fiddle"),
        "flute": Voice("flute"),  # the tune's (missing) Q:: abc2midi's 120
        "flute 240": Voice("flute", 240),
    }
    return {name: render(REEL, out, title=name, voice=v) for name, v in voices.items()}


def test_another_instrument_is_another_spectrum(renders: dict[str, Rendered]) -> None:
    fiddle, flute = (renders[n].wav_path for n in ("fiddle", "flute"))
    assert fiddle is not None and flute is not None
    assert midi_programs(renders["fiddle"].midi_path or Path()) == [110]
    # FluidR3: fiddle ~2.6 kHz, flute ~1.6 kHz over this reel (bench/voice_sound.py).
    assert spectral_centroid(fiddle) > 1.3 * spectral_centroid(flute)


def test_double_tempo_plays_in_half_the_time(renders: dict[str, Rendered]) -> None:
    slow, fast = renders["flute"], renders["flute 240"]
    assert slow.wav_path is not None and fast.wav_path is not None and slow.midi_path
    assert slow.check.duration_seconds == pytest.approx(8.0, abs=0.1)
    # The instrument's ring-out after the last note is the same at any tempo: measured on the
    # slow render (audible end minus the last note's end) and taken off both.
    last_note = max(n.start_seconds + n.duration_seconds for n in midi_notes(slow.midi_path))
    ring_out = audible_seconds(slow.wav_path) - last_note
    assert 0 <= ring_out < 3
    ratio = (audible_seconds(fast.wav_path) - ring_out) / (
        audible_seconds(slow.wav_path) - ring_out
    )
    assert ratio == pytest.approx(0.5, rel=0.1)


def test_transpose_moves_the_notes(tmp_path: Path) -> None:
    plain = render(REEL, tmp_path, wav=False)
    up = render(REEL, tmp_path, wav=False, voice=Voice(transpose=12))
    assert plain.midi_path and up.midi_path
    before = [n.pitch for n in midi_notes(plain.midi_path)]
    assert [n.pitch for n in midi_notes(up.midi_path)] == [p + 12 for p in before]


def test_saved_abc_stays_as_written_while_the_midi_carries_the_voice(tmp_path: Path) -> None:
    saved = save_tune(REEL, tmp_path, voice=Voice("banjo", 180, 2))
    abc, mid = saved.paths[0], saved.paths[1]
    assert abc.read_text(encoding="utf-8") == REEL
    assert mid.suffix == ".mid" and midi_programs(mid) == [105]


def test_the_apps_sound_renders_each_voice_apart() -> None:
    sound = Sound()
    try:
        piano = sound.prepare("a", REEL, "t")
        harp = sound.prepare("b", REEL, "t", Voice("harp", 240))
        assert piano.rendered is not harp.rendered
        assert harp.rendered.midi_path and midi_programs(harp.rendered.midi_path) == [46]
        assert harp.duration_seconds < piano.duration_seconds
        assert sound.prepare("c", REEL, "t", Voice("harp", 240)).rendered is harp.rendered
    finally:
        sound.close()


# --- the CLI -----------------------------------------------------------------------------------


def test_cli_render_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tune = tmp_path / "reel.abc"
    tune.write_text(REEL, encoding="utf-8")
    out = tmp_path / "reel.mid"
    argv = ["render", str(tune), "--midi", str(out), "--json"]
    rc = main([*argv, "--instrument", "uilleann-pipes", "--tempo", "240", "--transpose", "-12"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["voice"] == {"instrument": "uilleann pipes", "tempo": 240, "transpose": -12}
    assert midi_programs(out) == [109]
    assert report["tunes"][0]["duration_seconds"] == pytest.approx(4.0, abs=0.1)
    assert min(n.pitch for n in midi_notes(out)) == 62 - 12  # the reel's lowest note is D


def test_cli_refuses_an_unknown_instrument_with_the_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["play", str(tmp_path / "x.abc"), "--instrument", "kazoo"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "unknown instrument 'kazoo'; choose one of: accordion, bagpipes" in err
    with pytest.raises(SystemExit):
        main(["render", "x.abc", "--tempo", "5"])
    assert "the tempo must be 20 to 400" in capsys.readouterr().err


def test_generate_save_takes_the_voice_flags(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["generate", "--save", "d", "--instrument", "harp"])
    assert voice_from_args(args) == Voice("harp")
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "tin whistle" in help_text and "uilleann pipes" in help_text
    assert "--tempo BPM" in help_text and "--transpose N" in help_text


# --- the app -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_generate_remembers_the_voice_across_restarts(
    folkgen_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FolkgenApp, "_start_engine", lambda self: None)  # not needed here
    corpus = tmp_path / "one.abc"  # a corpus of one tune: quick to load, nothing to index
    corpus.write_text(REEL, encoding="utf-8")
    app = FolkgenApp(corpus, autoload_model=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await show_screen(pilot, "g", GenerateScreen)
        app.screen.query_one("#instrument", Select).focus()
        await pilot.press("enter", *"fidd", "enter")  # the list opens; typing finds the name
        await wait_for(pilot, lambda: app.voice.instrument == "fiddle", "the fiddle")
        await type_into(pilot, "#tempo", "140")
        await type_into(pilot, "#transpose", "-2")
        await pilot.pause()
        assert app.voice == Voice("fiddle", 140, -2)
        await type_into(pilot, "#tempo", "5")  # too slow: marked, never taken
        assert app.screen.query_one("#tempo", Input).has_class("-invalid")
        assert app.voice.tempo is None  # the last valid text: the cleared field
        await type_into(pilot, "#tempo", "140")
    settings = json.loads((folkgen_home / "tui.json").read_text(encoding="utf-8"))
    assert settings["voice"] == {"instrument": "fiddle", "tempo": 140, "transpose": -2}

    again = FolkgenApp(corpus, autoload_model=False)
    async with again.run_test(size=(100, 30)) as pilot:
        assert again.voice == Voice("fiddle", 140, -2)
        await show_screen(pilot, "g", GenerateScreen)
        screen = again.screen
        assert screen.query_one("#instrument", Select).value == "fiddle"
        assert screen.query_one("#tempo", Input).value == "140"
        assert screen.query_one("#transpose", Input).value == "-2"
        assert "plays as fiddle, ♩=140, -2 semitones" in str(
            screen.query_one("#gen-status").render()
        )
        # Any screen's play (the Library's too) renders in the app's voice.
        asked: list[Voice | None] = []

        def prepare(
            self: Sound, key: str, text: str, title: str, voice: Voice | None = None
        ) -> Any:
            asked.append(voice)
            raise SoundError("not rendered in this test")

        monkeypatch.setattr(Sound, "prepare", prepare)
        again.toggle_play(REEL, "Voice Reel")
        await wait_for(pilot, lambda: asked, "the render")
        assert asked == [Voice("fiddle", 140, -2)]


@pytest.mark.asyncio
async def test_the_library_and_generate_share_one_voice(
    folkgen_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from folkgen_tui.screens.library import LibraryScreen

    monkeypatch.setattr(FolkgenApp, "_start_engine", lambda self: None)  # not needed here
    corpus = tmp_path / "one.abc"
    corpus.write_text(REEL, encoding="utf-8")
    app = FolkgenApp(corpus, autoload_model=False)
    async with app.run_test(size=(110, 30)) as pilot:
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LibraryScreen), "the Library")
        library = app.screen
        await type_into(pilot, "#tempo", "90")  # the Library's own voice row
        assert app.voice == Voice(None, 90, 0)
        assert not library.query_one("#lib-filter", Input).display  # escape left the field only
        library.query_one("#tempo", Input).focus()  # escape there is "Leave field", not "Clear"
        await pilot.pause()
        assert library.check_action("leave_field", ()) and not library.check_action(
            "clear_filter", ()
        )
        await pilot.press("escape")
        assert app.focused is library.query_one("#lib-table")
        await show_screen(pilot, "g", GenerateScreen)
        generate = app.screen
        assert generate.query_one("#tempo", Input).value == "90"  # Generate shows it
        await type_into(pilot, "#transpose", "3")
        await pilot.press("l")
        await wait_for(pilot, lambda: app.screen is library, "the Library again")
        assert library.query_one("#transpose", Input).value == "3"
        assert library.query_one("#tempo", Input).value == "90"
        assert app.voice == Voice(None, 90, 3)


@pytest.mark.asyncio
async def test_a_voice_rows_own_voices_coming_back_leave_its_typing_alone() -> None:
    """The app shows every voice set on every row (voice_changed), the setting row's included,
    a few messages later: typing on meanwhile was wiped by the row's own voice coming back (a
    tempo cleared, then 5 typed: the cleared tempo came back and took the 5). Another row's
    voice is still shown."""
    from textual.app import App, ComposeResult

    from folkgen_tui.widgets.voice_row import VoiceRow

    class Row(App[None]):
        def compose(self) -> ComposeResult:
            yield VoiceRow(Voice("fiddle", 140, 0))

    app = Row()
    async with app.run_test() as pilot:
        row = app.query_one(VoiceRow)
        tempo = row.query_one("#tempo", Input)
        tempo.value = ""  # a valid voice: posted
        await pilot.pause()
        with row.prevent(Input.Changed):
            tempo.value = "5"  # typed before that voice came back: out of range, not posted
        row.show(Voice("fiddle", None, 0))  # the row's own voice, back through the app
        assert tempo.value == "5"
        row.show(Voice("flute", 90, 0))  # another row's
        assert (tempo.value, row.query_one("#instrument", Select).value) == ("90", "flute")
        row.show(Voice("fiddle", None, 0))  # this row's again, but set elsewhere now: shown
        assert tempo.value == ""


@pytest.mark.asyncio
@pytest.mark.parametrize("when", ["before its fields are made", "before it is set up"])
async def test_a_voice_chosen_while_generate_is_built_is_the_one_it_shows(
    folkgen_home: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """A voice chosen elsewhere (the Library's row) while Generate was built ahead did not reach
    it (the app's hooks reach a screen once it is set up), and its row's fields, posting their
    first values as they were made, set the app's voice back to the one they were made with."""
    from folkgen_tui.textual_internals import build_mode

    monkeypatch.setattr(FolkgenApp, "_start_engine", lambda self: None)  # not needed here
    held = hold_parts(monkeypatch)
    app = FolkgenApp(autoload_model=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.stats is not None, "the corpus")
        app.voice = Voice(tempo=100)
        assert build_mode(app, "generate")
        generate = app._screen_stacks["generate"][-1]
        assert isinstance(generate, GenerateScreen)
        await wait_for(pilot, lambda: len(held) == 2, "Generate's parts")
        if when == "before its fields are made":
            app.voice = Voice(tempo=150)  # as the Library's row sets it
        held.mount()
        if when == "before it is set up":
            app.voice = Voice(tempo=150)
        await wait_for(pilot, lambda: generate.is_ready, "Generate set up")
        await pilot.pause(0.3)
        assert app.voice == Voice(tempo=150)
        assert generate.query_one("#tempo", Input).value == "150"
    settings = json.loads((folkgen_home / "tui.json").read_text(encoding="utf-8"))
    assert settings["voice"]["tempo"] == 150


def test_a_tune_played_without_a_sound_device_then_saved_keeps_its_own_names(
    tmp_path: Path,
) -> None:
    """Without a sound device the app keeps the WAV it played in the tunes folder (keep_wav);
    saving that tune then writes reel.abc/.mid/.wav (and its score), not reel-2.* beside the
    lone reel.wav."""
    sound = Sound()
    try:
        voice = Voice("harp", 240)
        playable = sound.prepare("a", REEL, "reel", voice)
        kept = sound.keep_wav(playable, tmp_path, REEL, voice)
        assert kept == tmp_path / "reel.wav"
        paths, problem = sound.save(REEL, "reel", tmp_path, voice)
        assert problem is None
        names = sorted(p.name for p in tmp_path.iterdir())  # with the score: .pdf, .png, .svg
        assert {"reel.abc", "reel.mid", "reel.wav"} <= set(names)
        assert all(name.startswith("reel.") for name in names), names
        assert sorted(p.name for p in paths) == names
        # Played again after the save: the saved WAV is the sound (a copy beside it was kept).
        assert sound.keep_wav(playable, tmp_path, REEL, voice) == tmp_path / "reel.wav"
        assert sorted(p.name for p in tmp_path.iterdir()) == names
        # Another voice is another sound: its save leaves the kept WAV of the first alone.
        other = sound.prepare("b", REEL, "reel")
        assert sound.keep_wav(other, tmp_path, REEL, None) == tmp_path / "reel-2.wav"
        sound.save(REEL, "reel", tmp_path, voice)
        assert (tmp_path / "reel-2.wav").exists() and (tmp_path / "reel-3.abc").exists()
    finally:
        sound.close()
