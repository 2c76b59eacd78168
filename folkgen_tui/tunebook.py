"""The app's one connection to the tunebook database (core.library), kept on its own thread.

The database is opened lazily, on first use, on that thread: the first frame never waits for
sqlite, and every call goes through the same thread in order (a tune's `add` always lands
before the `keep` that follows it), whatever thread rules the connection has. Results come
back to the UI thread as messages (`deliver`, the app's thread-safe `call_later`), so they run
inside the app's message loop as any handler does, without blocking either side."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from core.judge import Judgement
    from core.library import Library
    from folkgen_tui.state import TuneRecord

T = TypeVar("T")


class Tunebook:
    """`call(job, done, failed)`: `job(library)` runs on the tunebook's thread; `done(result)` or
    `failed(message)` then runs on the UI thread. `on_open(tunebook)` runs (on the UI thread)
    once the database is open, with what it had to recover from."""

    def __init__(self, deliver: Callable[..., object], path: Path | None = None) -> None:
        self.deliver = deliver  # deliver(fn, *args) runs fn(*args) on the UI thread, later
        self.path = path  # None: core.library's place in the data folder
        self.error: str | None = None  # why it could not be opened at all
        self.recovered_from: Path | None = None
        self._library: Library | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._hashes: dict[tuple[str, int, int], str] = {}
        self.on_open: Callable[[Tunebook], None] | None = None  # set by the app
        self.on_error: Callable[[str], None] | None = None  # for calls given no `failed`
        self._reported = ""  # the last error reported through on_error (said once, not per tune)
        self._closed = False

    def call(
        self,
        job: Callable[[Library], T],
        done: Callable[[T], None] | None = None,
        failed: Callable[[str], None] | None = None,
    ) -> None:
        if self._closed:  # the app is ending: a timer's last call opens nothing again
            return
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor  # not before the first frame

            # Its thread lets go of the interpreter as it starts: the UI thread, waiting in
            # Thread.start for it to run, took the interpreter back only at CPython's switch
            # interval (5 ms), as the thread went on into the database's imports (Library's
            # set-up, built ahead at start-up: 8 ms of keys' time).
            self._executor = ThreadPoolExecutor(
                1, thread_name_prefix="folkgen-tunebook", initializer=time.sleep, initargs=(0,)
            )

        def back(fn: Callable[..., None], *args: object) -> None:
            with contextlib.suppress(RuntimeError):  # the app has closed its loop
                self.deliver(fn, *args)

        def run() -> None:
            first = self._library is None and self.error is None
            try:
                library = self._open()
                result = job(library)
            except Exception as e:  # LibraryError, sqlite3 and OS errors: a sentence, no trace
                message = message_of(e)
                if failed is not None:
                    back(failed, message)
                elif self.on_error is not None and message != self._reported:
                    self._reported = message
                    back(self.on_error, message)
                return
            finally:
                if first and self.on_open is not None:
                    back(self.on_open, self)
            if done is not None:
                back(done, result)

        self._executor.submit(run)

    def _open(self) -> Library:
        if self._library is None:
            if self.error is not None:
                raise RuntimeError(self.error)
            from core.library import Library

            try:
                self._library = Library.open(self.path)
            except Exception as e:
                self.error = self._reported = message_of(e)  # said once, by on_open
                raise
            self.recovered_from = self._library.recovered_from
        return self._library

    def model_hash(self, path: Path) -> str:
        """The checkpoint's content hash, once per file version (tunebook thread only)."""
        from core.library import model_hash

        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in self._hashes:
            self._hashes[key] = model_hash(path)
        return self._hashes[key]

    def _add(self, library: Library, record: TuneRecord, verdict: Judgement | None) -> int:
        """The tune into the history once (tunebook thread: the calls come in order)."""
        if record.library_id is None:
            path = record.model_path
            digest = self.model_hash(path) if path is not None and path.is_file() else ""
            record.library_id = library.add(
                record.text, model_name=record.model_label, model_hash=digest, seed=record.seed,
                temperature=record.temperature, top_k=record.top_k, prompt=record.prompt,
                max_chars=record.max_chars, grammar=True,  # the app samples with the grammar
                verdict=verdict,  # the app's own check: abc2midi does not run again
            )  # fmt: skip
        return record.library_id

    def remember(self, record: TuneRecord, verdict: Judgement) -> None:
        """A tune generated and checked in the app goes into the session history, with what
        made it and its verdict."""
        self.call(lambda library: self._add(library, record, verdict))

    def keep(self, record: TuneRecord, files: list[Path]) -> None:
        """Saving a tune keeps it in the tunebook, with its saved files (added first when the
        save came before its check ended)."""
        def keep(library: Library) -> None:
            tune_id = self._add(library, record, None)
            if not library.holds(tune_id):  # merged into another entry (Library's k), or deleted
                record.library_id = None
                tune_id = self._add(library, record, None)
            # The tunebook's entry when it held this music already (the history row merged).
            record.library_id = library.keep(tune_id, files)

        self.call(keep)

    def close(self, wait: bool = True) -> None:
        """Close the database on its thread and end the thread (when the app ends)."""
        self._closed = True
        executor, self._executor = self._executor, None
        if executor is None:
            return

        def close() -> None:
            if self._library is not None:
                with contextlib.suppress(Exception):
                    self._library.close()
                self._library = None

        executor.submit(close)
        executor.shutdown(wait=wait)


def message_of(error: BaseException) -> str:
    if type(error).__module__ == "sqlite3":  # sqlite3 not imported here: the first frame
        return f"the tunebook database failed: {error}"
    return str(error) or type(error).__name__
