"""Generate: prompt, temperature, top-k and seed; tunes stream in character by character, are
checked with abc2midi when they end, can be played (with a piano roll), saved and revisited."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from core.voice import Voice, VoiceError
from folkgen_tui.format import (
    duration,
    header_fields,
    prompt_to_text,
    text_to_prompt,
    with_header_field,
)
from folkgen_tui.screens.base import LEAVE_FIELD, StudioScreen
from folkgen_tui.state import TuneRecord
from folkgen_tui.widgets import AbcView
from folkgen_tui.widgets.clamped import ClampedStatic, fit_lines
from folkgen_tui.widgets.deferred import Deferred
from folkgen_tui.widgets.piano_roll import PianoRoll
from folkgen_tui.widgets.prompt_input import PromptInput
from folkgen_tui.widgets.score_view import ScoreView
from folkgen_tui.widgets.select import Select
from folkgen_tui.widgets.sketch import MUTED, cut, field, label, picker, row
from folkgen_tui.widgets.voice_row import VoiceRow, voice_sketch
from folkgen_tui.workers import SampleChunk, SampleDone, SampleFailed, TuneStream

if TYPE_CHECKING:
    from core.corpus import CreditedStream
    from core.judge import Judgement
    from core.library import LibraryTune
    from core.novelty import CorpusIndex, NoveltyIndex
    from core.sample_options import SampleOptions
    from folkgen_tui.lifeline import WorkUnderWay


TEMPERATURE_STEP = 0.1
SAVING = "save"  # the group of the save workers (`finish` waits for them)
SAVE_NOTICE = 10.0  # seconds the notice of a save finished before quitting stays (the app goes)
TEMPERATURE_RANGE = (0.1, 3.0)
FIRST_PROMPT, FIRST_TEMPERATURE, FIRST_MAX = "X:", "1.0", "1000"  # the fields' first values
DEFAULT_METERS = ("C", "6/8", "C|", "2/4", "9/8", "3/4", "4/4")
DEFAULT_KEYS = ("G Major", "D Major", "A Dorian", "D Mixolydian", "E Dorian", "A Major", "E Minor")


@dataclass
class TuneChecked(Message):
    number: int
    judgement: Judgement  # abc2midi's check, the closest corpus tune, the musical verdict


@dataclass
class TuneSaved(Message):
    record: TuneRecord  # the tune saved (not the one shown when the save ends)
    paths: list[Path]
    warning: str | None
    error: str | None


class SessionList(OptionList):
    """The session's tunes, their titles cut to the list's width: cut again when it changes."""

    class Resized(Message):
        pass

    def on_resize(self) -> None:
        self.post_message(self.Resized())


class OptionsError(ValueError):
    """A field that is no setting ("Temp: 'warm' is not a number"); `field`, its id."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


# The fields of the settings core.sample_options checks, by the name its SettingError gives.
SETTING_FIELDS = {"temperature": "temperature", "top-k": "top-k", "max chars": "max-chars",
                  "seed": "seed"}  # fmt: skip


def verdict_badge(record: TuneRecord) -> tuple[str, str]:
    """The verdict over a tune, and its style class."""
    check = record.check
    extra = "".join(f" · {part}" for part in (record.music, record.novelty) if part)
    if check is None:
        return f"? not checked: {record.check_error or 'checking…'}", "-pending"
    if check.valid:
        cut = f" · {record.check_error}" if record.check_error else ""
        if not record.music:
            return f"✓ {check.summary(record.line_offset)}{cut}{extra}", (
                "-valid" if not cut else "-warning"
            )
        # The written bars and form come with the music; abc2midi adds how long it plays,
        # and its warnings come last: the first of them quoted ran the line past the badge's
        # two, and the music was cut off.
        warned = check.validity(record.line_offset).removeprefix("valid").lstrip(", ")
        warned = f" · {warned}" if warned else ""
        # "plays 1:04": "64 s" read as the time the tune took to make.
        verdict = f"valid, plays {duration(check.duration_seconds)}"
        return f"✓ {verdict}{cut}{extra}{warned}", "-valid" if not cut else "-warning"
    cut = f" ({record.check_error})" if record.check_error else ""
    return f"✗ {check.summary(record.line_offset)}{cut}{extra}", "-invalid"


class GenerateScreen(StudioScreen):
    MODE = "generate"
    # Focus starts on the tune view, as `mounted` sets it: keys that come while the screen is
    # built are commands, not text for its first field (Textual focuses the first focusable).
    AUTO_FOCUS = "#gen-abc"
    TITLE_TEXT = "Generate"
    _meters: tuple[str, ...] = ()  # the Meter picker's choices, the corpus's commonest first
    _keys: tuple[str, ...] = ()  # the Key picker's
    HELP = (
        "Write a prompt or use the pickers (meter, key, title), then generate: characters stream "
        "in, and a finished tune is checked by abc2midi. Play it, see it as sheet music (v), save "
        "it (.abc .mid .wav and the score), try the same seed at another temperature, and revisit "
        "earlier tunes in the session list. Voice: the instrument, tempo (quarter notes a minute) "
        "and transpose that play and save use, remembered for the next start."
    )
    BINDINGS = [
        Binding("enter", "generate", "Generate", tooltip="Generate a tune with these settings"),
        Binding("n", "next_tune", "Next", tooltip="Next tune: generate again with a new seed"),
        Binding("r", "same_seed", "Same seed", tooltip="Regenerate with the last tune's seed"),
        Binding("p", "play", "Play", tooltip="Play the tune shown (again: stop)"),
        Binding("p", "stop_playing", "Stop", tooltip="Stop playing"),
        Binding("s", "save", "Save", tooltip="Save the tune shown as .abc, .mid, .wav and score"),
        Binding("v", "toggle_score", "Score", tooltip="Show the tune as sheet music (again: ABC)"),
        Binding("plus,equals_sign", "temperature(1)", "Temp+", tooltip="Temperature up"),
        Binding("minus", "temperature(-1)", "Temp-", tooltip="Temperature down"),
        LEAVE_FIELD,
    ]

    def __init__(self) -> None:
        super().__init__()
        self.run_id = 0
        self.streaming = False
        self.stream_options: SampleOptions | None = None
        # The tune being streamed as it shows: credited, as saved (TuneRecord.shared_abc)
        self.stream_credited: CreditedStream | None = None
        self.stream_chars = 0
        self.stream_chunks = 0  # messages the current tune arrived in
        self.stream: TuneStream | None = None  # the tune being sampled in the model's engine
        self.shown: TuneRecord | None = None  # the tune in the view (None while streaming)
        self._key_names: dict[str, str] = {}  # the Key picker's choices by key name
        self.shown_before: TuneRecord | None = None  # the tune a stream replaced, for its failure
        self.opening: Path | None = None  # the model a tunebook tune waits for, to generate
        # Tunes saved (by id of their files' list), not kept in the tunebook yet (a save's thread
        # adds, the UI thread takes).
        self._unkept: dict[int, tuple[TuneRecord, list[Path], Voice]] = {}
        self._saving: set[int] = set()  # the tunes (numbers) being saved

    def compose_body(self) -> ComposeResult:
        # The panels first; the fields and the tune's parts made and mounted once the screen is
        # drawn (Deferred): a key shows the screen in a fraction of its build (issue 14).
        with Vertical(id="gen-controls"):
            yield Deferred(Vertical(id="gen-fields"), self._fields, self._fields_sketch)
        with Horizontal(id="gen-main"):
            with Vertical(id="tune-panel") as panel:
                panel.border_title = "Tune"
                yield Deferred(Vertical(id="tune-parts"), self._tune_parts, self._tune_sketch)
            history = SessionList(id="history")
            history.border_title = "Session"
            yield history
        yield Static("", id="gen-status", markup=False)

    def _fields(self) -> ComposeResult:
        with Horizontal(classes="gen-row"):
            yield Label("Prompt", classes="gen-label")
            yield PromptInput(FIRST_PROMPT, compact=True, id="prompt")
        with Horizontal(classes="gen-row"):
            yield Label("Meter", classes="gen-label")
            yield Select([], prompt="any", compact=True, id="meter")
            yield Label("Key", classes="gen-label-short")
            yield Select([], prompt="any", compact=True, id="key")
            yield Label("Title", classes="gen-label-short")
            yield Input(placeholder="(none)", compact=True, id="title")
        with Horizontal(classes="gen-row"):
            yield Label("Temp", classes="gen-label")
            yield Input(FIRST_TEMPERATURE, compact=True, id="temperature", type="number")
            yield Label("Top-k", classes="gen-label-short")
            yield Input(placeholder="off", compact=True, id="top-k", type="integer")
            yield Label("Seed", classes="gen-label-short")
            yield Input(placeholder="random", compact=True, id="seed", type="integer")
            yield Label("Max", classes="gen-label-short")
            yield Input(FIRST_MAX, compact=True, id="max-chars", type="integer")
        yield VoiceRow(self.studio.voice, id="gen-voice")

    def _fields_sketch(self, width: int) -> Content:
        """The fields as they first show (no picker set), until they are in (Deferred); each
        row cut at the width, as the rows' widgets are."""
        rows = [
            row(label("Prompt"), field(FIRST_PROMPT)),
            row(label("Meter"), picker("", 12, "any"), label("Key", True), picker("", 20, "any"),
                label("Title", True), field("", 0, "(none)")),
            row(label("Temp"), field(FIRST_TEMPERATURE, 7), label("Top-k", True),
                field("", 6, "off"), label("Seed", True), field("", 10, "random"),
                label("Max", True), field(FIRST_MAX, 7)),
            voice_sketch(self.studio.voice),
        ]  # fmt: skip
        return Content("\n").join(cut(line, width) for line in rows)

    def _tune_sketch(self, width: int) -> Content:
        """The tune panel's first lines (#badge: two at most, padded, muted) until its parts
        are in."""
        if width <= 2:
            return Content()
        lines = Content(fit_lines(self._intro_text(), width - 2, 2)).wrap(width - 2)
        return Content("\n").join(Content.styled(f" {line.plain}", MUTED) for line in lines)

    def _tune_parts(self) -> ComposeResult:
        yield ClampedStatic("", max_lines=2, id="badge")
        yield AbcView(id="gen-abc", placeholder="")
        yield ScoreView(id="gen-score")
        yield PianoRoll(id="piano-roll")

    def mounted(self) -> None:
        self.query_one(VoiceRow).show(self.studio.voice)  # one chosen since its row was made
        self.query_one("#piano-roll", PianoRoll).stop_along()
        self.corpus_changed()
        self._show_header(self.query_one("#prompt", Input).value)  # the pickers, as it says
        self._show_intro()
        self.query_one("#gen-abc").focus()

    # --- shared state ------------------------------------------------------------------------

    def corpus_changed(self) -> None:
        """The pickers' choices: the Dataset corpus's commonest metres and keys; with a model,
        the keys its grammar writes (its training corpus's, as that corpus spells them: the
        Dataset corpus may be another, and a key the model's lacks is refused), the Dataset
        corpus's commonest first."""
        from core.corpus import METER_VALUES, normalize_key, read_key

        # Counted with the corpus, on its thread (compute_stats): counted here, the first
        # model's arrival held the keys for 12 ms (818 tunes' headers read twice).
        stats, model = self.studio.stats, self.studio.model
        meters: list[str] = list(DEFAULT_METERS)
        keys: list[str] = list(DEFAULT_KEYS)
        written = Counter[str]()
        if stats is not None:
            # Those the grammar writes: with `none` picked the model wrote an M: of its own.
            meters = [v for v, _ in stats.meters if v in METER_VALUES][:12]
            keys = [v for v, _ in stats.written_keys if v != "?"][:16]
            written = Counter(dict(stats.keys))
        spelled = {  # the keys its grammar writes: "HP" or "C ^f^c^a" name none
            name: value for name, value in (model.keys if model is not None else {}).items()
            if (key := read_key(value)) is not None and key.exact
        }  # fmt: skip
        if spelled:
            # All of them (the Irish corpus's 19: a cut at 16 lost the G keys after the others).
            keys = [spelled[name] for name in sorted(spelled, key=lambda n: (-written[n], n))][:40]
        new_meters, new_keys = tuple(meters) != self._meters, tuple(keys) != self._keys
        if not (new_meters or new_keys):
            return
        self._meters, self._keys = tuple(meters), tuple(keys)
        self._key_names = {normalize_key(v): v for v in keys}
        with self.prevent(Select.Changed):  # new choices, and the prompt as it was written
            if new_meters:  # a model changes the keys only (a Select's options: ~3 ms)
                self.query_one("#meter", Select).set_options([(v, v) for v in meters])
            if new_keys:
                self.query_one("#key", Select).set_options([(v, v) for v in keys])
        self._show_header(self.query_one("#prompt", Input).value)  # what it says, in them

    def model_changed(self) -> None:
        self.corpus_changed()  # the keys its grammar writes
        if self.shown is None and not self.streaming:
            self._show_intro()
        self._show_status()
        path = self.studio.model.path if self.studio.model is not None else None
        waiting = self.opening
        if waiting is not None and path is not None and path.resolve() == waiting.resolve():
            self.opening = None
            self._generate(None)  # the tunebook tune's seed is in the field

    def torch_changed(self) -> None:
        if self.shown is None and not self.streaming:
            self._show_intro()

    def _intro_text(self) -> str:
        studio = self.studio
        if studio.model is not None:
            return "Press enter to generate a tune (n: another one, p: play it, s: save it)."
        if studio.model_coming:
            return "Loading torch and the model…"
        return "No model yet: train one (t) or load a checkpoint (m)."

    def _show_intro(self) -> None:
        self.query_one("#badge", Static).update(self._intro_text())
        self.query_one("#badge").set_classes("")
        self._show_status()

    # --- the prompt pickers ------------------------------------------------------------------

    @on(Select.Changed, "#meter, #key")
    @on(Input.Changed, "#title")
    def picker_changed(self, event: Select.Changed | Input.Changed) -> None:
        """The picker's own field line of the prompt is set; the rest of what was written there
        (a first bar, other fields) stays (it was all replaced by the pickers' header)."""
        if not self.is_ready:  # said as the fields mount, some not in yet: `mounted` syncs
            return
        field = {"meter": "M", "key": "K", "title": "T"}[event.control.id or ""]
        value = event.value.strip() if isinstance(event.value, str) else ""
        if field == "T":  # one line, as typed: a \n in it broke the prompt's header in two
            value = " ".join(value.replace("\\n", " ").split())
        prompt = self.query_one("#prompt", Input)
        text = with_header_field(prompt_to_text(prompt.value), field, value)
        fields = header_fields(text)
        if field in "KM" and self._meters and "K" in fields and "M" not in fields:
            # M: comes before K:, so the model cannot choose it after a key: "any" metre takes
            # the corpus's commonest, shown in its picker (without one, abc2midi counts bars
            # of 4/4 and the model's own did not fit them), whichever picker was set last.
            meter = self._meters[0]
            text = with_header_field(text, "M", meter)
            with self.prevent(Select.Changed):
                self.query_one("#meter", Select).value = meter
            if field == "M":
                self.notify(f"With a key the metre comes first (M: before K:): {meter}, the "
                            "corpus's commonest. Set the key to any to leave both to the model.",
                            markup=False)  # fmt: skip
        prompt.value = text_to_prompt(text)

    @on(Input.Changed, "#prompt")
    def prompt_changed(self, event: Input.Changed) -> None:
        if self.is_ready:  # (as it mounts, the pickers may not be in yet: `mounted` syncs them)
            self._show_header(event.value)

    def _show_header(self, prompt: str) -> None:
        """The pickers show what the prompt's header says, as typed or as a picker wrote it:
        "any" where it says nothing, or what they do not offer (they kept their last choice,
        beside a prompt that said another)."""
        from core.corpus import normalize_key  # (the screen is built after start-up)

        fields = header_fields(prompt_to_text(prompt))
        if "K" in fields:  # the key offered in any spelling ("K:G" is "G Major"; normalize_key
            # leaves settings such as "clef=bass" aside, as the model reads it)
            fields["K"] = self._key_names.get(normalize_key(fields["K"]), fields["K"])
        with self.prevent(Select.Changed, Input.Changed):  # (they write the prompt)
            for id_, field, offered in (("meter", "M", self._meters), ("key", "K", self._keys)):
                select = self.query_one(f"#{id_}", Select)
                value = fields.get(field, "")
                if value in offered and select.value != value:
                    select.value = value
                elif value not in offered and not select.is_blank():
                    select.clear()
            title = self.query_one("#title", Input)
            # Not while it is typed in: the prompt's change from a keystroke came after the
            # next ones, and set the title back to it (qwertyuiop typed fast came out qwtyuiope).
            if not title.has_focus and title.value.strip() != fields.get("T", ""):
                title.value = fields.get("T", "")

    @on(Input.Submitted)
    def field_submitted(self, event: Input.Submitted) -> None:
        if not self.is_ready:  # enter in a field clicked before the tune's panel is in
            return
        event.stop()
        self.action_generate()

    def action_leave_field(self) -> None:
        self.query_one("#gen-abc").focus()

    # --- options -----------------------------------------------------------------------------

    def read_options(self, seed: int | None) -> SampleOptions:
        """SampleOptions from the fields; `seed` None takes the seed field, else a random one."""
        from core.sample_options import SampleOptions, random_seed  # one tune everywhere

        def field(id_: str) -> str:
            return self.query_one(f"#{id_}", Input).value.strip()

        def number(id_: str, label: str, kind: type[float], blank: float) -> float:
            text = field(id_)
            try:
                return kind(text) if text else blank
            except ValueError:  # (Python's own words were "invalid literal for int()…")
                raise OptionsError(f"{label}: {text!r} is not a number", id_) from None

        temperature = number("temperature", "Temperature", float, 1.0)
        top_k = int(number("top-k", "Top-k", int, 0))
        max_chars = int(number("max-chars", "Max chars", int, 1000))
        if seed is None:
            seed = int(number("seed", "Seed", int, 0)) if field("seed") else random_seed()
        if max_chars < 1:
            raise OptionsError(f"max chars must be at least 1, not {max_chars}", "max-chars")
        return SampleOptions(
            prompt=prompt_to_text(self.query_one("#prompt", Input).value),
            temperature=temperature,
            top_k=top_k or None,
            seed=seed,
            max_chars=max_chars,
            grammar=True,  # only what ABC syntax allows: tunes abc2midi accepts
        )

    # --- voice -------------------------------------------------------------------------------

    def read_voice(self) -> Voice:
        """The Voice of the voice row's fields; VoiceError when one is off."""
        return self.query_one(VoiceRow).read()

    def on_voice_row_changed(self, message: VoiceRow.Changed) -> None:
        """A valid voice becomes the app's (remembered); the fields' validators mark the rest."""
        self.studio.voice = message.voice

    def voice_changed(self) -> None:
        self.query_one(VoiceRow).show(self.studio.voice)
        self._show_status()

    def _sound_voice(self) -> Voice | None:
        """The voice to play or save in, or None after saying which field is off."""
        try:
            return self.read_voice()
        except VoiceError as e:
            self.notify(str(e), title="Check the voice", severity="error", markup=False)
            return None

    # --- generating --------------------------------------------------------------------------

    def action_state(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_field":
            return self.typing()
        playing = self._playing_shown()
        if action == "play":
            return False if playing else (True if self.shown is not None else None)
        if action == "stop_playing":
            return playing
        if action in ("save", "same_seed"):
            return True if self.shown is not None else None
        return True  # generate explains itself when there is no model yet

    def action_generate(self) -> None:
        self._generate(None)

    def action_next_tune(self) -> None:
        self.query_one("#seed", Input).value = ""
        self._generate(None)  # an empty seed field: a fresh seed, drawn as the CLI draws it

    def action_same_seed(self) -> None:
        record = self.shown or (self.studio.history[-1] if self.studio.history else None)
        if record is None:
            self.notify("No tune yet: generate one first.", severity="warning")
            return
        self._generate(record.seed)

    def _generate(self, seed: int | None) -> None:
        from core.corpus import CreditedStream, generation_credit  # loaded with the corpus

        studio = self.studio
        model, engine = studio.model, studio.engine
        if model is None or engine is None:  # a model is loaded only in torch's process
            why = "the model is still loading" if studio.model_coming else (
                "no model yet: train one (t) or load one (m)")  # fmt: skip
            self.notify(f"Cannot generate: {why}.", severity="warning")
            return
        try:
            options = self.read_options(seed)
            options.validate(model.vocab)
        except ValueError as e:  # OptionsError, UnknownCharacters, SampleOptions' own checks
            self.notify(str(e), title="Check the settings", severity="error", markup=False)
            self._focus_faulty_field(e)
            return
        self.run_id += 1
        self.streaming = True
        self.stream_options = options
        label = model.label  # the credit as TuneRecord.credit gives it once the tune is in
        credit = generation_credit(label, options.seed, options.temperature, options.top_k,
                                   options.prompt)  # fmt: skip
        self.stream_credited = CreditedStream(options.prompt, credit)
        self.stream_chars = 0
        self.stream_chunks = 0
        self.shown_before = self.shown if self.shown is not None else self.shown_before
        self.shown = None
        if self._playing_shown() or studio.sound.is_playing:
            studio.stop_playback()
        view = self.query_one("#gen-abc", AbcView)
        view.follow = True
        view.set_text(self.stream_credited.start())  # the prompt, unless its header is cut
        self._update_score()
        badge = self.query_one("#badge", Static)
        badge.update(f"generating… (seed {options.seed})")
        badge.set_classes("-pending")
        # While training runs in the app its threads hold the cores: sample on one thread, as
        # torch's threads would otherwise keep waiting for each other.
        training = studio.training is not None and studio.training.running
        threads = 1 if training else None  # None: chosen from the machine's load
        self._stop_stream()
        self.stream = TuneStream.start(self, self.run_id, engine, options, threads)
        self._show_status()
        self.refresh_bindings()

    def _focus_faulty_field(self, error: ValueError) -> None:
        """The cursor in the field a refusal is about, as the Train form puts it."""
        from core.corpus import UnknownCharacters
        from core.sample_options import SettingError

        field = ""
        if isinstance(error, OptionsError):
            field = error.field
        elif isinstance(error, SettingError):  # by core's name for the setting
            field = SETTING_FIELDS.get(error.field, "")
        elif isinstance(error, UnknownCharacters):
            field = "prompt"
        if field:
            self.query_one(f"#{field}", Input).focus()

    def _stop_stream(self) -> None:
        if self.stream is not None:
            self.stream.cancel()
            self.stream = None

    def on_unmount(self) -> None:
        self._stop_stream()

    def on_sample_chunk(self, message: SampleChunk) -> None:
        if message.run != self.run_id:
            return
        self.stream_chars += len(message.text)
        self.stream_chunks += 1
        shown = self.stream_credited.feed(message.text) if self.stream_credited else message.text
        if shown:
            self.query_one("#gen-abc", AbcView).append(shown)

    def on_sample_failed(self, message: SampleFailed) -> None:
        if message.run != self.run_id:
            return
        self.streaming = False
        self.notify(message.error, title="Cannot generate", severity="error", markup=False)
        previous, self.shown_before = self.shown_before, None
        if previous is None:
            self._show_intro()
            return
        self.shown = previous  # the tune on screen before stays (a refused prompt, say)
        self._show_record(previous)

    def on_sample_done(self, message: SampleDone) -> None:
        if message.run != self.run_id or message.cancelled:
            return
        self.streaming = False
        self.shown_before = None
        opts = self.stream_options
        if opts is None or opts.seed is None:  # read_options always sets both
            return
        studio = self.studio
        record = TuneRecord(
            number=len(studio.history) + 1,
            prompt=opts.prompt,
            text=opts.prompt + message.text,
            seed=opts.seed,
            temperature=opts.temperature,
            top_k=opts.top_k,
            max_chars=opts.max_chars,
            model_label=studio.model.label if studio.model else "?",
            model_path=studio.model.path if studio.model else None,
            seconds=message.seconds,
        )
        studio.history.append(record)
        self.shown = record
        view = self.query_one("#gen-abc", AbcView)
        view.follow = False
        view.set_text(record.shared_abc)
        self._add_history(record)
        self._update_score()
        badge = self.query_one("#badge", Static)
        badge.update("checking with abc2midi…")
        badge.set_classes("-pending")
        # Near-copies of the model's training corpus, as the CLI judges them; the Dataset
        # screen's corpus only when the training corpus is not known here.
        model = studio.model
        index = model.index if model else None
        self._check(record.number, record.shared_abc, index, studio.novelty)  # the text shown
        self._show_status()
        self.refresh_bindings()

    def _add_history(self, record: TuneRecord) -> None:
        history = self.query_one("#history", OptionList)
        history.add_option(Option(self._history_label(record), id=str(record.number)))
        history.highlighted = history.option_count - 1

    def on_session_list_resized(self) -> None:
        history = self.query_one("#history", OptionList)
        for index, record in enumerate(self.studio.history[: history.option_count]):
            history.replace_option_prompt_at_index(index, self._history_label(record))

    def _history_label(self, record: TuneRecord) -> Text:
        mark = {True: ("✓ ", "green"), False: ("✗ ", "red"), None: ("… ", "dim")}[record.valid]
        width = max(8, self.query_one("#history").size.width - 6 or 18)
        title = record.title if len(record.title) <= width else record.title[: width - 1] + "…"
        details = f"#{record.number} T{record.temperature:g} s{record.seed}"
        if len(details) > width + 2:  # the seed on a line of its own, not wrapped to the edge
            details = details.replace(" s", "\n  s")
        return Text.assemble(mark, (title, "bold"), (f"\n  {details}", "dim"))

    # --- checking ----------------------------------------------------------------------------

    @work(thread=True, group="check", exit_on_error=False)
    def _check(
        self, number: int, text: str, index: CorpusIndex | None, fallback: NoveltyIndex | None
    ) -> None:
        """`index`, the model's training corpus's, is built here if it is not yet (~50 ms): on
        the UI thread, it held the keys at a first tune checked early."""
        from core.judge import judge

        novelty = index.get() if index is not None else None
        judgement = judge(text, novelty if novelty is not None else fallback)
        if not get_current_worker().is_cancelled:
            self.post_message(TuneChecked(number, judgement))

    def on_tune_checked(self, message: TuneChecked) -> None:
        record = next((r for r in self.studio.history if r.number == message.number), None)
        if record is None:
            return
        judged = message.judgement
        record.check = judged.check
        record.check_error = judged.check_error or judged.incomplete or None
        record.line_offset = judged.line_offset
        record.novelty = judged.near_copy
        record.music = judged.musical_verdict
        self.studio.tunebook.remember(record, judged)  # into the history, with this verdict
        if judged.check_error:
            self.notify(judged.check_error, title="Cannot check the tune", severity="error",
                        markup=False)  # fmt: skip
        history = self.query_one("#history", OptionList)
        index = record.number - 1
        if index < history.option_count:
            history.replace_option_prompt_at_index(index, self._history_label(record))
        if self.shown is record:
            self._show_record(record, scroll=False)

    def _show_record(self, record: TuneRecord, scroll: bool = True) -> None:
        view = self.query_one("#gen-abc", AbcView)
        error = None
        check = record.check
        if check is not None and not check.valid and check.first_error and check.first_error.line:
            offset = record.line_offset
            error = (check.first_error.line + offset, check.first_error.column)
        text = record.shared_abc
        if view.text != text:
            view.follow = False
            view.set_text(text, error)
            self._update_score()
        elif view.error != error:
            view.set_error(error)
        text, cls = verdict_badge(record)
        badge = self.query_one("#badge", Static)
        badge.update(text)
        badge.set_classes(cls)
        self._show_status()
        self.refresh_bindings()

    @on(OptionList.OptionSelected, "#history")
    def history_selected(self, event: OptionList.OptionSelected) -> None:
        if self.streaming:
            self.run_id += 1  # drop the tune being streamed
            self._stop_stream()
            self.streaming = False
        number = int(event.option.id or 0)
        record = next((r for r in self.studio.history if r.number == number), None)
        if record is not None:
            self.shown = record
            self._show_record(record)
            self.playback_changed()

    # --- score -------------------------------------------------------------------------------

    def action_toggle_score(self) -> None:
        """The tune as sheet music in place of its ABC text, and back."""
        score = self.query_one("#gen-score", ScoreView)
        text = self.query_one("#gen-abc", AbcView)
        score.swap_with(text)
        self._update_score()
        (score if score.display else text).focus()

    def _update_score(self) -> None:
        score = self.query_one("#gen-score", ScoreView)
        if score.display:
            waiting = "the score appears when the tune is complete" if self.streaming else ""
            text = self.shown.shared_abc if self.shown else ""
            score.show(text, waiting or "generate a tune first")

    # --- a tunebook tune again ---------------------------------------------------------------

    def open_tune_settings(self, tune: LibraryTune, model_path: Path) -> None:
        """Generate a tunebook tune again: its prompt, seed and settings with the model that
        made it (loaded first when another is in use), so the same text comes back."""
        fields = {
            "prompt": text_to_prompt(tune.prompt),
            "temperature": repr(tune.temperature if tune.temperature is not None else 1.0),
            "top-k": str(tune.top_k) if tune.top_k else "",
            "seed": str(tune.seed) if tune.seed is not None else "",
            "max-chars": str(tune.max_chars or 1000),
        }
        for id_, value in fields.items():
            self.query_one(f"#{id_}", Input).value = value
        if tune.seed is not None:  # they stay for the next tunes: said (n draws a fresh seed)
            self.notify(f"The settings are {tune.title}'s: seed {tune.seed}, temperature "
                        f"{fields['temperature']} (n: a fresh seed).", markup=False)  # fmt: skip
        current = self.studio.model.path if self.studio.model is not None else None
        if current is not None and current.resolve() == model_path.resolve():
            self._generate(None)
        else:
            self.opening = model_path
            self.studio.load_model(model_path, "chosen")

    # --- temperature -------------------------------------------------------------------------

    def action_temperature(self, direction: int) -> None:
        field = self.query_one("#temperature", Input)
        try:
            value = float(field.value or "1")
        except ValueError:
            value = 1.0
        lo, hi = TEMPERATURE_RANGE
        value = round(min(hi, max(lo, value + direction * TEMPERATURE_STEP)), 2)
        field.value = str(value)  # "1.0", as the field starts ({:g} wrote "1")
        self._show_status()

    # --- sound -------------------------------------------------------------------------------

    def _is_shown(self, key: str) -> bool:
        """`key` is the shown tune's, as the app plays it."""
        return self.shown is not None and key == f"tune-{self.shown.number}"

    def _playing_shown(self) -> bool:
        sound = self.studio.sound
        playing = sound.now_playing
        return playing is not None and sound.is_playing and self._is_shown(playing.key)

    def action_play(self) -> None:
        record = self.shown
        if record is None:
            what = "wait for the tune to finish" if self.streaming else "generate a tune first"
            self.notify(f"Nothing to play yet: {what}.", severity="warning")
            return
        if self._playing_shown():  # p stops whatever the fields say
            self.studio.stop_playback()
            return
        voice = self._sound_voice()
        if voice is not None:
            self.studio.toggle_play(record.text, record.title, f"tune-{record.number}", voice)

    def action_stop_playing(self) -> None:
        self.studio.stop_playback()

    def playback_changed(self) -> None:
        self.follow_playback(self.query_one("#piano-roll", PianoRoll), self._is_shown)
        self.refresh_bindings()

    # --- saving ------------------------------------------------------------------------------

    def action_save(self) -> None:
        record = self.shown
        if record is None:
            self.notify("Nothing to save yet: generate a tune first.", severity="warning")
            return
        voice = self._sound_voice()
        if voice is None:
            return
        # Once is enough: a second `s` wrote a whole second set of files (an 11 MB WAV) and
        # tied them to the same tunebook tune. In another voice, it is another WAV.
        if record.number in self._saving:
            self.notify(f"Still saving {record.title}…", timeout=2, markup=False)
            return
        if record.saved and record.saved_voice == voice and all(p.exists() for p in record.saved):
            names = ", ".join(p.name for p in record.saved)
            self.notify(f"Already saved: {names} in {record.saved[0].parent} (another voice "
                        "saves it again)", markup=False)  # fmt: skip
            return
        self._saving.add(record.number)
        self.notify(f"Saving {record.title}…", timeout=2, markup=False)
        # Counted from now, not from when its thread starts: a lost terminal waits for it
        # (FolkgenApp.finish_work); `_save` ends the count, with the object looked up here (on
        # its thread, `self.studio` is not found once the app has ended).
        writing = self.studio.writing
        writing.begin()
        self._save(record, voice, writing)

    @work(thread=True, group=SAVING, exit_on_error=False)
    def _save(self, record: TuneRecord, voice: Voice, writing: WorkUnderWay) -> None:
        try:
            self._write(record, voice)
        except BaseException:  # no TuneSaved comes: `s` may save it again (a set: GIL-atomic)
            self._saving.discard(record.number)
            raise
        finally:
            writing.end()

    def _write(self, record: TuneRecord, voice: Voice) -> None:
        from core.abc import SoundError
        from core.paths import output_dir

        try:  # the .abc credited (record.credit), as shown: the model's own Z: lines not kept
            paths, warning = self.studio.sound.save(
                record.text, record.title, output_dir(), voice, record.credit
            )
        except (SoundError, OSError) as e:
            self.post_message(TuneSaved(record, [], None, str(e)))
            return
        self._unkept[id(paths)] = (record, paths, voice)  # until its message is handled, or `finish`
        self.post_message(TuneSaved(record, paths, warning, None))

    async def finish(self) -> None:
        """A save under way ends, and every tune saved is kept in the tunebook, before the app
        does: a save's message that came as the app quit was never handled (files written, the
        tunebook never told)."""
        saves = [w for w in self.workers if w.node is self and w.group == SAVING and w.is_running]
        try:
            if saves:
                self.notify("Finishing the save before quitting…", timeout=SAVE_NOTICE)
                # All at once: one at a time, a cancel (the app's time limit) ended only the first.
                await asyncio.gather(*(worker.wait() for worker in saves), return_exceptions=True)
        finally:  # cut at the app's time limit too: the saves done by then are kept
            for key in list(self._unkept):
                self._keep(key)

    def _keep(self, key: int) -> None:
        saved = self._unkept.pop(key, None)
        if saved is not None:  # (not kept by `finish` already)
            record, paths, voice = saved
            record.saved, record.saved_voice = paths, voice
            self.studio.tunebook.keep(record, paths)  # saved: kept in the tunebook

    def on_tune_saved(self, message: TuneSaved) -> None:
        self._saving.discard(message.record.number)
        if message.error:
            self.notify(message.error, title="Cannot save", severity="error", markup=False)
            return
        self._keep(id(message.paths))
        names = ", ".join(p.name for p in message.paths)
        folder = message.paths[0].parent if message.paths else ""
        if message.warning:
            self.notify(f"Saved only {names} in {folder}: {message.warning}",
                        severity="warning", markup=False)  # fmt: skip
        else:
            self.notify(f"Saved {names} in {folder}", markup=False)

    # --- status line -------------------------------------------------------------------------

    def _show_status(self) -> None:
        parts: list[str] = []
        model = self.studio.model
        parts.append(f"model {model.label}" if model else "no model")
        record = self.shown
        if self.streaming and self.stream_options is not None:
            parts.append(f"seed {self.stream_options.seed}")
            parts.append(f"T {self.stream_options.temperature:g}")
        elif record is not None:
            other = model is None or record.model_path != model.path
            by = f" by {record.model_label}" if other else ""
            parts.append(f"#{record.number}{by} seed {record.seed}")  # (by another model)
            parts.append(f"T {record.temperature:g}")
            parts.append(f"{len(record.text) - len(record.prompt)} chars")
        try:
            t = float(self.query_one("#temperature", Input).value or "1")
            parts.append(f"next T {t:g}")
        except ValueError:
            pass
        voice = self.studio.voice
        if not voice.plain:
            parts.append(f"plays as {voice.describe()}")
        self.query_one("#gen-status", Static).update(" · ".join(parts))
