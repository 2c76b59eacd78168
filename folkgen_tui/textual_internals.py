"""Every use of Textual's private API or unpromised behaviour, in one place (textual is pinned).

Each is a speed trick: a screen built before its key is pressed, a built screen shown without
Textual's 50 ms hold, nor a frame's wait for its update timer, nor a layout again when nothing
asked for one, nor drawn twice when something did, a screen built or coming back without
restyling every widget, a table's row count changed without laying out its screen, CSS parsed
once for the whole process instead of at each re-parse, an app that starts in its theme
instead of changing to it, input queued as the driver sends it, the app's own keys answered
without a trip down to the focused widget and back, keys typed fast kept in their order (behind
a focus that moves, a dialog being composed, a command palette's search). When a Textual upgrade renames what these
lean on, each falls back to Textual's own way (slower, never broken), and
tests/test_textual_internals.py fails loudly so that someone looks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Coroutine, Generator
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from textual import events
from textual.app import App
from textual.css.stylesheet import Stylesheet
from textual.dom import DOMNode
from textual.geometry import Region, Size
from textual.message import Message
from textual.screen import Screen
from textual.theme import BUILTIN_THEMES
from textual.timer import Timer
from textual.widget import AwaitMount, Widget
from textual.widgets import Input

if TYPE_CHECKING:
    from textual.events import ScreenResume


def built_modes(app: App[Any]) -> Collection[str]:
    """The modes whose screens exist (shown once, or built ahead); none when Textual no longer
    keeps its stacks in `_screen_stacks`."""
    stacks = getattr(app, "_screen_stacks", None)
    return stacks.keys() if isinstance(stacks, dict) else ()


def build_mode(app: App[Any], mode: str) -> bool:
    """Build a mode's screen without showing it: `_init_mode` is what `switch_mode` does for a
    mode seen for the first time, less making it current (Textual has no public call for this).
    False when it cannot be done here: the screen is then built when first shown.

    The build goes on in the screen's own task, a piece at a time, while the app answers keys:
    Textual also queues a wait for the whole build on the app's own queue (`call_next` of the
    screen's AwaitMount, in `_get_screen`), so that every key waited for a build under way
    (~100 ms, more while torch loads); that wait is taken off the queue again. Where the queue
    is not there to read, the wait stays (slower, never broken)."""
    init: Callable[[str], object] | None = getattr(app, "_init_mode", None)
    if init is None or not callable(init) or not hasattr(app, "_screen_stacks"):
        return False
    queued = getattr(app, "_next_callbacks", None)
    before = list(queued) if isinstance(queued, list) else None
    init(mode)
    if isinstance(queued, list) and before is not None:
        queued[:] = [c for c in queued if c in before or not _awaits_mount(c)]
    return True


def _awaits_mount(callback: object) -> bool:
    """A queued Callback message whose callable is an AwaitMount (call_next wraps it in a
    partial)."""
    call = getattr(callback, "callback", None)
    return isinstance(getattr(call, "func", call), AwaitMount)


def after_screen_drawn(widget: Widget, callback: Callable[[], object]) -> None:
    """Call `callback` once the widget's own screen has been drawn (at once if it is not on
    show: on its next idle). `call_after_refresh` queues it on whichever screen is on show,
    whose own loop runs it: that loop, awaiting the widget's screen (a switch to it, awaited),
    never did. `_invoke_later` is what `call_after_refresh` reaches in the end; without it the
    callback is only queued on the widget's own loop (it may then come before the draw)."""
    invoke_later: Callable[[Callable[[], object], Widget], object] | None = getattr(
        widget.screen, "_invoke_later", None
    )
    if invoke_later is None or not callable(invoke_later):
        widget.call_later(callback)
        return
    invoke_later(callback, widget)


def start_in_theme(app: App[Any], theme: str) -> bool:
    """Make `theme` (a built-in theme's name) the app's theme from its start: called before
    `App.__init__`, which then builds the stylesheet with the theme's variables, as it does for
    its default theme (TEXTUAL_THEME). Setting `app.theme` after `__init__` changes the theme
    instead: the whole CSS was parsed twice before the first frame (once per theme; ~12 ms for
    folkgen.tcss alone) and every widget styled and laid out once more. False (nothing done)
    for another name, or when Textual's reactives cannot be set before `__init__`: then set
    `app.theme` after it, as usual."""
    if theme not in BUILTIN_THEMES:
        return False
    try:
        app.set_reactive(App.theme, theme)
    except (AttributeError, TypeError):
        return False
    return True


INPUT_EVENTS = (events.Key, events.MouseDown, events.MouseUp)
ANSWERING = 0.1  # seconds after a key or click reaches the app in which its answer is drawn
STALE = 1.0  # seconds after which input sent and not taken is no longer waited for


class InputFirst(App[None]):
    """An app that knows when a key or a click is waiting or being answered, so that work done
    ahead (a screen built or laid out before it is shown) can put itself off: a key that came
    as such work began waited for it whole (10-40 ms a piece at start-up, issue 14). Textual's
    driver sends input from its own thread as a coroutine of `_post_message` for the UI loop
    (`Driver.send_message`): it is counted as that coroutine is made, on the driver's thread,
    so work already queued on the loop sees it. `answering_input` is True from then until
    ANSWERING after the app took it (its screen switch and frame: ~10-30 ms). `later` runs work
    ahead once no input is being answered. Without `_post_message`, input counts once taken.

    What the driver sends is queued then too (`post_message`, thread-safe), not when the loop
    runs its coroutine: that took two turns of the loop (its task made, then run), and a turn
    is every widget's share of the work under way, 5-15 ms while screens are built at start-up:
    keys waited 15-36 ms to reach the app. (Median key 24 -> 14 ms, 0.1-0.7 s after the first
    frame: bench/early_keys.py's starts.) All of it, from its input thread or the UI thread
    (its resizes), in the loop's next turn, in the order sent: nothing it sends overtakes what
    it sent before."""

    _input_taken_at = -1.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._input_waiting: dict[int, float] = {}  # input sent, not taken yet: id -> when

    def _post_message(self, message: Message) -> Coroutine[Any, Any, bool]:
        key = id(message)
        if isinstance(message, INPUT_EVENTS):
            self._input_waiting[key] = time.monotonic()  # (a dict's set and pop hold the GIL)

        def post() -> bool:
            queued = self.post_message(message)
            if not queued:
                self._input_waiting.pop(key, None)  # the app closing: never taken
            return queued

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # the driver's input thread: post_message queues it on the loop
            return _said(post())
        answer = loop.create_future()  # the UI thread: after what other threads sent before
        loop.call_soon(lambda: answer.set_result(post()))  # (post_message: at once, before it)
        return _said(answer)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, INPUT_EVENTS):
            self._input_waiting.pop(id(event), None)
            self._input_taken_at = time.monotonic()
        await super().on_event(event)

    def answering_input(self) -> bool:
        """Input is waiting (sent within STALE: one that never came, should Textual drop one,
        holds nothing for good) or was taken within ANSWERING."""
        now = time.monotonic()
        return (
            now - self._input_taken_at < ANSWERING
            or any(now - sent < STALE for sent in list(self._input_waiting.values()))
        )

    def later(self, work: Callable[[], object], wait: float = ANSWERING) -> Timer | None:
        """Where input is being answered, the timer that runs `work` (to ask again) `wait`
        seconds on; None: run it now."""
        return self.set_timer(wait, work) if self.answering_input() else None


async def _said(answer: bool | asyncio.Future[bool]) -> bool:
    return answer if isinstance(answer, bool) else await answer


def after_input(node: DOMNode, work: Callable[[], object], wait: float = ANSWERING) -> bool:
    """InputFirst.later for work done ahead in any app (False, run it now, where the app is not
    an InputFirst)."""
    app = node.app
    return isinstance(app, InputFirst) and app.later(work, wait) is not None


HOLD_LOOK = 0.001  # seconds between looks at whether a key held back may go on
HOLD_MAX = 2.0  # seconds a key is held back at most (a screen that never comes)


class AppKeysAtOnce(App[None]):
    """An app that answers its own key bindings (the studio's screen keys) as the key comes,
    where nothing between the focused widget and the app binds the key or handles keys; and
    that keeps keys in their order where Textual does not (below).

    Textual sends a key down to the focused widget and bubbles it back up, one loop turn per
    widget, to the app, which only then looks up its bindings. A turn is every mounting widget's
    piece of work while screens are built at start-up: a key took up to 58 ms to come back to
    the app (issue 14). Here such a key goes straight on to where it would have come back: the
    app's own handling of a key that bubbled up (its bindings, its `key_` methods and handlers).
    The usual way stays for a key a widget on the way binds or might take (an Input, a handler
    of keys), for the app's priority bindings (Textual's own way looks them up), on a modal or a
    maximized screen, and while input sent down before may still be on its way: a key until it
    is back at the app or stopped (STALE at most), a click for STALE. Answered at once, the key
    would overtake it: `s g` would run Generate's `s`, and a click on the nav bar then a key
    would switch to the key's screen first.

    Textual sends each key to the widget focused as the app takes it: a key right behind one
    whose binding moves the focus (tab, bubbling back up, a loop turn per widget) or opens a
    dialog (its field focused once it is composed) went to the old field, or to the dialog not
    yet composed, which dropped it. `ab<tab>cd` typed at once put `abcd` in one field, and `o`
    with a path typed or pasted behind it opened an empty dialog, where enter loaded the default
    corpus. Here a key waits (is held, then posted again in its order) while one sent down
    before it may still move the focus, and while the screen on show is not yet composed. Keys
    typed into a text field go on at once behind the ones before them: the field takes them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Keys sent down and not back at the app nor stopped: (key, when, the focused widget).
        self._keys_on_their_way: list[tuple[events.Key, float, Widget | None]] = []
        self._clicked_at = float("-inf")  # a button pressed or let go (monotonic)
        # Keys bubbled up from the screen to the app, in its queue: Textual marks one stopped as
        # it leaves the screen for the app (the app is its sender), before its bindings run.
        self._keys_coming_back: list[events.Key] = []
        self._held: list[tuple[events.Key, float]] = []  # keys waiting their turn, in order
        self._released: events.Key | None = None  # the held key posted again, not yet taken
        self._looking = False  # a look at the held keys is due
        self._answering = 0  # keys back at the app whose bindings are running

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.MouseDown | events.MouseUp) and not event.is_forwarded:
            self._clicked_at = time.monotonic()
        if not isinstance(event, events.Key):
            await super().on_event(event)
        elif event.is_forwarded:  # back at the app: on its way until its bindings have run
            # (Textual marks it stopped as its binding starts: an action that awaits, a field
            # mounted then focused, is not done yet.)
            self._keys_coming_back = [k for k in self._keys_coming_back if k is not event]
            self._answering += 1
            try:
                await super().on_event(event)
            finally:
                self._answering -= 1
            self._keys_on_their_way = [k for k in self._keys_on_their_way if k[0] is not event]
        elif self._holds(event):
            return
        elif self._app_alone_takes(event):
            self.app_focus = True
            clear_tooltip = getattr(self.screen, "_clear_tooltip", None)
            if self.focused and callable(clear_tooltip):
                clear_tooltip()
            # As it comes back up: the app's bindings, then its key handlers. (No priority
            # binding to look up first: one for this key would be on the way, or the app's.)
            event._set_forwarded()
            await super().on_event(event)
        else:
            await super().on_event(event)
            if event.is_forwarded:  # sent down to the focused widget
                self._keys_on_their_way.append((event, time.monotonic(), self.focused))

    def post_message(self, message: Message) -> bool:
        if isinstance(message, events.Key) and message.is_forwarded:  # bubbled up to the app
            self._keys_coming_back.append(message)
        return super().post_message(message)

    def _keys_still_on_their_way(self) -> bool:
        """Keys sent down and not stopped on the way (a widget took them), nor back at the app.
        One stopped as it left the screen for the app is on its way still: a key held behind
        `n`, whose action mounts a field and focuses it, went on to the old focus while `n`
        waited in the app's queue, and was lost (each time, on a 2-core Zen 2)."""
        now = time.monotonic()
        coming_back = {id(key) for key in self._keys_coming_back}
        self._keys_on_their_way = [
            (key, sent, to) for key, sent, to in self._keys_on_their_way
            if now - sent < STALE
            and (not getattr(key, "_stop_propagation", False) or id(key) in coming_back)
        ]  # fmt: skip
        on_their_way = {id(key) for key, _, _ in self._keys_on_their_way}
        self._keys_coming_back = [k for k in self._keys_coming_back if id(k) in on_their_way]
        return bool(self._keys_on_their_way)

    def _must_wait(self, key: events.Key) -> bool:
        """Whether `key` taken now might go where the keys before it would not have sent it:
        one sent down before may yet move the focus (all of them but characters typed into the
        focused text field), the screen on show is not composed (its focus not set), or it is
        an enter for a command palette whose list is not yet of what was typed."""
        try:
            screen = self.screen
            if not screen.is_mounted:
                return True
        except Exception:  # no screen yet
            return False
        if key.key == "enter" and palette_catching_up(screen):
            return True
        if self._answering:
            return True
        if not self._keys_still_on_their_way():
            return False
        focused = self.focused
        return not isinstance(focused, Input) or not all(
            key.is_printable and to is focused for key, _, to in self._keys_on_their_way
        )

    def _holds(self, event: events.Key) -> bool:
        """Hold the key back where it must wait its turn (or others are held before it)."""
        if event is self._released:  # its turn
            self._released = None
            return False
        if not self._held and not self._must_wait(event):
            return False
        self._held.append((event, time.monotonic()))
        self._look_soon()
        return True

    def _look_soon(self) -> None:
        if not self._looking:
            self._looking = True
            asyncio.get_running_loop().call_later(HOLD_LOOK, self._look_at_held)

    def _look_at_held(self) -> None:
        """Post the first held key again once it may go on (once the one posted before it has
        been taken): the app takes it as it took the keys before it."""
        self._looking = False
        if not self._held or not self.is_running:
            return
        key, since = self._held[0]
        if self._released is None and (
            time.monotonic() - since >= HOLD_MAX or not self._must_wait(key)
        ):
            self._held.pop(0)
            if self.post_message(key):  # (not once the app is closing)
                self._released = key
        if self._held:  # (the next goes once the one posted is taken: _holds)
            self._look_soon()

    def _app_alone_takes(self, event: events.Key) -> bool:
        now = time.monotonic()
        if self._keys_still_on_their_way() or now - self._clicked_at < STALE:
            return False
        if not callable(getattr(event, "_set_forwarded", None)):
            return False  # renamed: no way to hand it on as a key that came back
        try:
            screen = self.screen
            chain = screen._modal_binding_chain
        except Exception:  # no screen yet, or Textual's chain renamed: the usual way
            return False
        if screen.maximized is not None:  # escape minimizes first (App.on_event)
            return False
        handlers = [f"{prefix}key_{name}" for name in event.name_aliases for prefix in ("", "_")]
        for node, bindings in chain:
            bound = bindings.key_to_bindings.get(event.key, ())
            if node is self:
                return bool(bound) and not any(binding.priority for binding in bound)
            if bound or may_take_keys(type(node), handlers):
                return False
        return False  # a modal screen: its chain ends before the app


def palette_catching_up(screen: Screen[Any]) -> bool:
    """A command palette whose list is not yet of the text typed in it: the text's change is
    still on its way up to the palette (a widget's queue), or its search is under way. Textual's
    enter picks what is highlighted then, in the list of the text before: "Models: Rescan"
    typed fast, then enter, ran the unfiltered list's first command. False where Textual's
    palette has changed (its field, its search's worker group)."""
    from textual.command import CommandInput, CommandPalette

    if not isinstance(screen, CommandPalette):
        return False
    group = getattr(CommandPalette, "_GATHER_COMMANDS_GROUP", None)
    try:
        node: DOMNode | None = screen.query_one(CommandInput)
        while node is not None:
            if node._message_queue.qsize():
                return True
            node = None if node is screen else node.parent
    except Exception:
        return False
    return any(
        worker.node is screen and worker.group == group and not worker.is_finished
        for worker in screen.app.workers
    )


_KEY_MESSAGE_TYPES = tuple(t for t in events.Key.__mro__ if issubclass(t, Message))


def may_take_keys(cls: type, handlers: list[str]) -> bool:
    """Whether a widget of this class might take a key before it bubbles on: a handler of its
    own for Key events (or any of their bases), or for this key."""
    return (
        getattr(cls, "_on_key", None) is not Widget._on_key
        or getattr(cls, "handle_key", None) is not Widget.handle_key
        or hasattr(cls, "on_key")
        or getattr(cls, "on_event", None) is not Widget.on_event
        or getattr(cls, "_on_message", None) is not Widget._on_message
        or any(hasattr(cls, name) for name in handlers)
        or any(
            kind in vars(c).get("_decorated_handlers", {})
            for c in cls.__mro__
            for kind in _KEY_MESSAGE_TYPES
        )
    )


class StyledWhenMounted(App[None]):
    """An app whose widgets are styled as they are mounted, not before. Textual styles a widget
    at each change of its classes, made or mounted (`update_styles`), and its mount styles it
    whole again (`App._register`): an Input sets its classes twice as it is made (compact,
    then valid or not), so Train's 17 fields took 17-29 ms to make, most of it styling them,
    in one piece of the UI thread's work that a key waited for (issue 14); 5 without."""

    def update_styles(self, node: DOMNode, animate: bool = True) -> None:
        if node is self or node.is_attached:
            super().update_styles(node, animate)


class QuickModeSwitch(App[None]):
    """An app whose mode switch is drawn at once, and answers keys while a screen is built.

    Textual holds every mode switch back for 50 ms (`switch_mode` calls `delay_update` first) to
    hide a screen still being built; ours are built ahead, or draw their frame first and their
    fields after (Deferred), so they need no hiding. This leans on `switch_mode` calling
    `delay_update` synchronously: if it stops doing so, the hold simply stays."""

    showing_built_mode = False  # within switch_mode, showing a screen built before

    def switch_mode(self, mode: str) -> AwaitMount:
        """Switch to `mode`'s screen, building it first if need be (without holding the app's
        keys: build_mode), and show it at once, a screen still being built as its parts come.
        Awaited, it waits until the screen is built (Textual's own returns at once for a screen
        still being built ahead, which then had no widgets to find)."""
        if mode != self.current_mode and mode in self.MODES and mode not in built_modes(self):
            build_mode(self, mode)
        self.showing_built_mode = mode in built_modes(self)
        try:
            super().switch_mode(mode)
        finally:
            self.showing_built_mode = False
        stack = getattr(self, "_screen_stacks", {}).get(mode)
        return AwaitShown(stack[-1] if stack else self.screen)

    def delay_update(self, delay: float = 0.05) -> None:
        if not self.showing_built_mode:
            super().delay_update(delay)


class AwaitShown(AwaitMount):
    """QuickModeSwitch.switch_mode's: awaited, it waits until the screen is built, and for a
    screen with a `ready` event (asyncio.Event), until it is set: such a screen may mount
    parts after its first draw and set itself up once they are in."""

    def __init__(self, screen: Screen[Any]) -> None:
        super().__init__(screen, [])
        self._screen = screen

    def __await__(self) -> Generator[None, None, None]:
        async def shown() -> None:
            ready = getattr(self._screen, "ready", None)
            if isinstance(ready, asyncio.Event):
                await ready.wait()
            elif not self._screen.is_mounted:
                await AwaitMount(self._screen, [self._screen])

        return shown().__await__()


class QuickShowScreen(Screen[None]):
    """A screen drawn at once when shown: its frame clock started as it is mounted
    (start_frame_clock), and shown again without laying it out again when nothing asked for a
    layout.

    Textual's `switch_mode` lays out the screen it shows (`_screen_resized`: its whole
    arrangement, each widget sized, the changed regions drawn) before the frame that draws it all
    anyway: a third of a show's work (Train's 60 widgets: ~6 of ~17 ms). A screen that was laid
    out at this size (shown before, or laid out ahead) and to which no widget has posted a Layout
    since (Textual keeps those in `_layout_required` / `_layout_widgets`, hidden or not) is
    shown as it was laid out. A Layout that comes after the show lays it out at the next frame,
    as Textual does for any change. One that came while it was hidden (the Train log's lines,
    written while Generate is shown) lays it out in `switch_mode`, but what the layout changed
    is not drawn then, nor is it laid out again in the frame that draws the screen whole: the
    show took twice its time when Textual did both. Without those fields, Textual's own way."""

    def on_mount(self) -> None:  # Textual calls a subclass's on_mount as well
        start_frame_clock(self)

    def _screen_resized(self, size: Size) -> None:
        if laid_out_for(self, size):
            return
        if not (isinstance(self.app, QuickModeSwitch) and self.app.showing_built_mode):
            super()._screen_resized(size)  # a terminal resize, or a build ahead (not drawn)
            return
        # Shown by a mode switch: its ScreenResume repaints the whole screen at the next frame
        # (Screen's refresh), so what the layout changed need not be drawn first; nor need it be
        # laid out again in that frame (Textual clears its flag only in a frame's own layout).
        with self.app.batch_update():  # the layout's own draw is put off to a queued call...
            super()._screen_resized(size)
        drop_dirty_regions(self)  # ...which then has nothing to draw
        _laid_out(self)


def drop_dirty_regions(screen: Screen[Any]) -> None:
    """Forget what the screen's compositor was to draw of its changes: only for a screen that is
    about to be drawn whole. Without the field, the changes are drawn first, as usual."""
    dirty = getattr(getattr(screen, "_compositor", None), "_dirty_regions", None)
    if isinstance(dirty, set):
        dirty.clear()


def laid_out_for(screen: Screen[Any], size: Size) -> bool:
    """The screen is laid out at `size` and no widget of it has posted a Layout since (one
    asked for and not posted yet lays it out at its next frame)."""
    laid_out = getattr(screen, "_size", None)
    required = getattr(screen, "_layout_required", None)
    waiting = getattr(screen, "_layout_widgets", None)
    if not isinstance(laid_out, Size) or not isinstance(required, bool):
        return False
    return laid_out == size and not required and isinstance(waiting, dict) and not waiting


def styled_as_built(screen: Screen[Any]) -> None:
    """Tell Textual that a screen needs no CSS refresh: its widgets are styled as they are
    mounted, with the stylesheet as it is. Call it from the screen's constructor and again once
    it is mounted. Textual marks a new screen's CSS as out of date (`_css_update_count` -1), so
    building a mode's screen re-parsed the CSS, restyled every widget of every screen built
    before and laid out the one shown (30-100 ms of each screen's first build, and of a key that
    shows a screen not yet built), and the first screen, left out of date, cost all that again
    when it was first shown again. After a theme change Textual still refreshes a screen when
    it is next shown: the count it compares is the app's, copied here. The app's first screen
    is refreshed once as Textual does while it is built: that styles the app itself (the
    colours every widget inherits). Without the field, Textual refreshes as usual."""
    stacks = getattr(screen.app, "_screen_stacks", None)
    if not isinstance(stacks, dict) or not any(stacks.values()):  # the first screen
        return
    count = getattr(screen.app, "_css_update_count", None)
    if isinstance(count, int) and hasattr(screen, "_css_update_count"):
        screen._css_update_count = count


def app_ending(widget: Widget) -> bool:
    """The app is ending, and Textual mounts no more widgets: a screen still being built (ahead
    of its first show) is mounted only in part, its widgets' set-up must not look for the rest.
    `exit()` detaches every widget (is_attached), the screens' widgets first while the screen
    being pruned (`_pruning`) still looks attached; a shutdown without it (the pilot's run_test
    ends so) only stops the app running (is_running)."""
    pruning = getattr(widget, "_pruning", False) is True
    return pruning or not widget.is_attached or not widget.app.is_running


def take_composed_children(widget: Widget) -> list[Widget]:
    """The children a `with` block gave `widget` (compose_add_child), taken from it, to be
    mounted into it later by hand (Deferred mounts a part in pieces). Textual keeps them in a
    private list that its compose mounts with the widget."""
    children = list(widget._pending_children)
    widget._pending_children.clear()
    return children


SETTLE = 0.01  # seconds for a screen's widgets to take their Resize and Show (a few ms)
DRAW_SLICE = 0.004  # seconds of drawing ahead between two looks at the keys


_LAYING_OUT: WeakKeyDictionary[App[Any], set[Screen[Any]]] = WeakKeyDictionary()


def laying_out_ahead(app: App[Any]) -> bool:
    """A screen of the app is being laid out and drawn ahead (lay_out_ahead), or is about to be
    (lay_out_ahead_soon): its draw not done yet."""
    return bool(_LAYING_OUT.get(app))


_WHEN_DRAWN: WeakKeyDictionary[Screen[Any], list[Callable[[], object]]] = WeakKeyDictionary()


def _laying_out(screen: Screen[Any], busy: bool) -> None:
    under_way = _LAYING_OUT.setdefault(screen.app, set())
    if busy:
        under_way.add(screen)
    else:
        under_way.discard(screen)
        for then in _WHEN_DRAWN.pop(screen, []):
            then()


def lay_out_ahead_soon(screen: Screen[Any], then: Callable[[], object] | None = None) -> None:
    """lay_out_ahead once the screen's loop has run what is queued (a screen just set up), the
    screen counted as laid out ahead (laying_out_ahead) from now; `then` is called once its
    draw is done, or given up (the screen shown or gone)."""
    _laying_out(screen, True)
    if then is not None:
        _WHEN_DRAWN.setdefault(screen, []).append(then)
    screen.call_later(lay_out_ahead, screen)


def lay_out_ahead(screen: Screen[Any]) -> None:
    """Lay out and draw (into nothing) a screen built ahead and not shown yet, so that its first
    show costs what a later one does: Textual lays a screen out when first shown (its size was
    none), every widget then arranges and draws its lines for the first time, and the widgets'
    own changes once shown (Resize, Show) lay it out again: 1.5-3 times a later show's work
    (Python calls: Train 279k against 77k; 111k laid out ahead). Laid out now, then again once
    the widgets have had their Resize and Show, then each widget drawn (its lines kept for the
    show) a few at a time, with the event loop between: drawn whole, Train took ~20 ms, and a
    key that came meanwhile waited for all of it; a key that came before the draw (it waited a
    50 ms timer then) paid it in its show, 30-45 ms in all (issue 14). `_refresh_layout` and
    the compositor's `visible_widgets` are what a show runs and draws; without them the screen
    is laid out and drawn when shown, as usual. Until its draw is done (or given up: the screen
    shown or gone), it counts in laying_out_ahead."""
    refresh_layout: Callable[[Size], object] | None = getattr(screen, "_refresh_layout", None)
    compositor: object = getattr(screen, "_compositor", None)
    if screen.is_current or not screen.is_attached or refresh_layout is None:
        _laying_out(screen, False)
        return
    _laying_out(screen, True)
    if after_input(screen, lambda: lay_out_ahead(screen)):
        return
    refresh_layout(screen.app.size)
    _laid_out(screen)

    def still_ahead(work: Callable[[], None]) -> bool:
        """Still hidden and attached, and no key answered (else `work` is asked again later)."""
        if screen.is_current or not screen.is_attached:
            _laying_out(screen, False)
            return False
        return not after_input(screen, work)

    def lay_out_again() -> None:
        if still_ahead(lay_out_again):
            refresh_layout(screen.app.size)  # again: what the widgets changed as they were shown
            _laid_out(screen)
            visible = getattr(compositor, "visible_widgets", None)  # {widget: (region, clip)}
            if isinstance(visible, dict):
                widgets[:] = visible.items()
                screen.set_timer(0.001, draw)
                return
            _laying_out(screen, False)

    widgets: list[tuple[Widget, tuple[Region, Region]]] = []  # still to draw

    def draw() -> None:
        if not still_ahead(draw):
            return
        started = time.perf_counter()
        while widgets:  # one widget at least, then more while the slice lasts
            widget, (region, clip) = widgets.pop()
            x, y, width, height = region.intersection(clip)  # as the compositor crops it
            if widget.is_attached and width and height:
                widget.render_lines(Region(x - region.x, y - region.y, width, height))
            if time.perf_counter() - started >= DRAW_SLICE:
                break
        if widgets:  # a timer, not a call_later: the loop, and a key, run between
            screen.set_timer(0.001, draw)
        else:
            _laying_out(screen, False)

    screen.set_timer(SETTLE, lay_out_again)


def start_frame_clock(screen: Screen[Any]) -> None:
    """Start a screen's frame clock as it is built, so that its first show is drawn at once.
    Textual draws a screen's changes at the tick of its update timer (one a frame, paused while
    nothing changes), made when first needed; a new timer's first tick comes a whole frame after
    it is first resumed, so every screen's first show (a key's) waited a frame (8 ms at 120
    frames a second) with nothing to do. Resumed now, it ticks once, hidden (the screen's update
    pauses it and draws nothing), and a later resume past its next tick draws at once. Without
    the property, the first show waits its frame, as usual."""
    timer = getattr(screen, "_update_timer", None)
    if isinstance(timer, Timer):
        timer.resume()


def _laid_out(screen: Screen[Any]) -> None:
    """A hidden screen was just laid out whole: what its widgets asked for before is done.
    Textual clears the flag in the frame that lays out the screen shown, never for a hidden one,
    whose first show then laid it out once more (QuickShowScreen reads the flag)."""
    if isinstance(getattr(screen, "_layout_required", None), bool):
        screen._layout_required = False


def skip_restyle(event: ScreenResume) -> None:
    """Tell Textual not to restyle every widget of a screen coming back (~80 ms for ours).

    Called from a screen's `on_screen_resume`, which Textual runs before `Screen`'s own
    `_on_screen_resume` (handlers go from the subclass to the base), where `refresh_styles` is
    read. Without that field the screen is restyled as Textual does by default."""
    if hasattr(event, "refresh_styles"):
        event.refresh_styles = False


def set_virtual_size_quietly(widget: Widget, size: Size) -> None:
    """Change a scrolling widget's virtual size without laying out its screen: Textual's
    `virtual_size` reactive lays out the whole screen (most of a Library filter keystroke beyond
    the filter itself). Only for a widget whose scrollbars never come or go (`overflow-y:
    scroll`), whose own size a new virtual size cannot change; `_scroll_update` is what a layout
    would do for its scrollbars. Without it, the reactive is set the usual way."""
    update: Callable[[Size], object] | None = getattr(widget, "_scroll_update", None)
    if update is None or not callable(update):
        widget.virtual_size = size
        return
    widget.set_reactive(Widget.virtual_size, size)
    update(size)


_PARSED_CAP = 512  # parsed sources kept (each source once per theme used)


def share_parsed_css() -> None:
    """Parse each CSS source once per set of theme variables, for the whole process.

    Textual keeps parsed rules per Stylesheet object and drops them whenever it sets the
    variables (each theme change, each first build of a screen) or re-parses, which it does in a
    fresh Stylesheet: before the first frame it parsed every source four times, our folkgen.tcss
    included (a third of the frame's work). `_parse_rules` (one source in, its rules out) is
    what they all call; here it keeps what it made, keyed by the source and the variables it was
    parsed with. Without `_parse_rules`, Textual parses as it always has."""
    original = getattr(Stylesheet, "_parse_rules", None)
    if original is None or getattr(original, "shared", False):
        return
    parsed: dict[tuple[object, ...], Any] = {}
    variables_seen: list[tuple[dict[str, str], frozenset[tuple[str, str]]]] = []

    def variables_key(stylesheet: Stylesheet) -> object:
        variables = getattr(stylesheet, "_variables", None)
        if not isinstance(variables, dict):
            return None
        for seen, key in variables_seen:
            if seen is variables:
                return key
        key = frozenset(variables.items())
        variables_seen[:] = [*variables_seen[-7:], (variables, key)]
        return key

    def _parse_rules(self: Stylesheet, *args: Any, **kwargs: Any) -> Any:
        variables = variables_key(self)
        if variables is None:
            return original(self, *args, **kwargs)
        key = (variables, args, tuple(sorted(kwargs.items())))
        rules = parsed.get(key)
        if rules is None:
            rules = original(self, *args, **kwargs)
            if len(parsed) >= _PARSED_CAP:
                parsed.clear()
            parsed[key] = rules
        return rules

    _parse_rules.shared = True  # type: ignore[attr-defined]
    Stylesheet._parse_rules = _parse_rules  # type: ignore[method-assign]
