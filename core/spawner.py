"""Engines forked from a process that has imported torch already. Importing torch takes seconds
(2.6 s on an AVX2 laptop-class CPU); the app's first engine waits for it once, and every later
one (a training run, a restart after the model's process was killed) starts in milliseconds. The
tests, which start an app and its engine a hundred times, pay the import once.

`python -m core.spawner FD` is started by the app's process on first need, in a session of its own;
it imports torch and the modules the engines use, then forks one child per request received on the
socket FD. Nothing in it starts a thread or runs a torch operation before forking (a thread pool
does not survive a fork). A request carries the engine's module, arguments and environment (the
app's at that moment, not the spawner's) and two descriptors: the engine's end of its pipe, and
the file its output goes to. Each child starts a session of its own (closing the terminal does not
kill a run before it saves) and runs the module's `main(argv)`; the spawner tells the app each
child's pid and, once reaped, its exit status. The spawner ends when the app's end of its socket
closes; the engines then end as they do, through their own pipes.

Both ends are this program: the messages are pickles on a SOCK_SEQPACKET socket (one record a
message, with its descriptors)."""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

PRELOAD = ("torch", "core.generation", "core.train", "core.engine")
RECORD = 1 << 20  # bytes: the largest message (an environment is a few kB)
SPAWNER_MODULE = "core.spawner"


@dataclass(frozen=True)
class Spawn:
    """Fork a child running `module.main(argv)` with `env` as its environment."""

    token: int
    module: str
    argv: list[str]
    env: dict[str, str]


# --- the app's side ----------------------------------------------------------------------------


class Child:
    """A process forked by the spawner, with the part of subprocess.Popen's interface engines
    use. Its pid comes a moment after it is asked for; a kill asked for before is done then (the
    child would end anyway: its pipe's other end is closed by then)."""

    def __init__(self, spawner: Spawner) -> None:
        self._spawner = spawner
        self.pid: int | None = None
        self.returncode: int | None = None
        self._kill_asked = False

    def poll(self) -> int | None:
        with self._spawner.changed:
            self._spawner.probe_orphan(self)
            return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        until = None if timeout is None else time.monotonic() + timeout
        with self._spawner.changed:
            while self.returncode is None:
                self._spawner.probe_orphan(self)
                left = None if until is None else until - time.monotonic()
                if left is not None and left <= 0:
                    raise subprocess.TimeoutExpired(SPAWNER_MODULE, timeout or 0.0)
                self._spawner.changed.wait(0.05 if left is None else min(left, 0.05))
            return self.returncode

    def kill(self) -> None:
        with self._spawner.changed:
            if self.returncode is not None:
                return
            if self.pid is None:
                self._kill_asked = True
                return
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)

    def _born(self, pid: int) -> None:  # under `changed`
        self.pid = pid
        if self._kill_asked:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


class Spawner:
    """The app's end of the spawner process (one per app process: `spawner()`)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock = ours
        self._log: IO[bytes] = tempfile.TemporaryFile(prefix="folkgen-spawner-")  # noqa: SIM115
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)  # where `core` is, for the child
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", SPAWNER_MODULE, str(theirs.fileno())],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=self._log, env=env, start_new_session=True,
        )  # fmt: skip
        theirs.close()
        self.changed = threading.Condition()
        self._send_lock = threading.Lock()
        self._next = 0
        self._children: dict[int, Child] = {}  # by token until reaped
        self._by_pid: dict[int, Child] = {}
        self.gone = False
        threading.Thread(target=self._read, name="folkgen-spawner", daemon=True).start()

    def spawn(self, module: str, argv: list[str], fds: list[int]) -> Child:
        """Fork a child running `module.main(argv)`; `fds` (the child's pipe, its output file)
        are its descriptors 3, 4, …  in the order given, once there. Raises OSError if the
        spawner has gone."""
        child = Child(self)
        with self.changed:
            if self.gone:
                raise OSError("the spawner has ended")
            self._next += 1
            token = self._next
            self._children[token] = child
        record = pickle.dumps(Spawn(token, module, argv, dict(os.environ)))
        try:
            with self._send_lock:
                socket.send_fds(self._sock, [record], fds)
        except OSError:
            with self.changed:
                self._children.pop(token, None)
            raise
        return child

    def probe_orphan(self, child: Child) -> None:
        """Once the spawner has gone (killed), nobody reaps its children for us: a child is
        taken as ended when its pid is no more. Under `changed`."""
        if self.gone and child.returncode is None:
            if child.pid is None:
                child.returncode = -signal.SIGKILL  # never forked: the request died with it
                return
            with contextlib.suppress(ChildProcessError):  # adopted here (a subreaper): reap it
                os.waitpid(child.pid, os.WNOHANG)
            try:
                with open(f"/proc/{child.pid}/stat", "rb") as f:
                    ended = f.read().rsplit(b")", 1)[1].split()[0] == b"Z"  # a zombie
            except OSError:
                ended = True
            if ended:
                child.returncode = -signal.SIGKILL  # its status went with the spawner

    def _read(self) -> None:
        while True:
            try:
                record = self._sock.recv(RECORD)
            except OSError:
                record = b""
            if not record:
                break
            kind, token_or_pid, value = pickle.loads(record)
            with self.changed:
                if kind == "pid":
                    child = self._children.pop(token_or_pid, None)
                    if child is not None:
                        child._born(value)
                        self._by_pid[value] = child
                else:  # "exit"
                    child = self._by_pid.pop(token_or_pid, None)
                    if child is not None:
                        child.returncode = value
                self.changed.notify_all()
        with self.changed:
            self.gone = True
            self.changed.notify_all()
        with contextlib.suppress(OSError):
            self._sock.close()
        with contextlib.suppress(OSError):
            self.process.wait(timeout=1)


_spawner: Spawner | None = None
_spawner_lock = threading.Lock()


def spawner() -> Spawner:
    """This process's spawner, started on first use (again if the last one has gone), and
    ended with this process."""
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            atexit.register(_end_spawner)
        if _spawner is None or _spawner.gone or _spawner.process.poll() is not None:
            _spawner = Spawner()
        return _spawner


def _end_spawner() -> None:
    """At exit: end the spawner and reap it (else it outlived this process for a moment, a
    zombie for whoever adopts it). The engines it forked are in sessions of their own and end
    through their pipes; a run still saving finishes."""
    if _spawner is not None:
        with contextlib.suppress(OSError):
            _spawner.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            _spawner.process.wait(timeout=1)


# --- the spawner's side ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """`python -m core.spawner FD`, started by Spawner."""
    args = sys.argv[1:] if argv is None else argv
    sock = socket.socket(fileno=int(args[0]))
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN if sig != signal.SIGTERM else signal.SIG_DFL)
    _name("folkgen-spawner")
    for name in PRELOAD:
        with contextlib.suppress(ImportError):  # the engine says what is missing, as it would
            importlib.import_module(name)
    wake_r, wake_w = socket.socketpair()
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno())
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # wakes the select below
    while True:
        ready, _, _ = select.select([sock, wake_r], [], [])
        if wake_r in ready:
            with contextlib.suppress(BlockingIOError, InterruptedError):
                wake_r.recv(4096)
            _reap(sock)
        if sock in ready:
            try:
                record, fds, _, _ = socket.recv_fds(sock, RECORD, 8)
            except OSError:
                record, fds = b"", []
            if not record:
                os._exit(0)  # the app has gone; its engines end through their own pipes
            request = pickle.loads(record)
            pid = os.fork()
            if pid == 0:
                sock.close()
                _child(request, fds, (wake_r, wake_w))
            for fd in fds:
                os.close(fd)
            _say(sock, ("pid", request.token, pid))


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _say(sock, ("exit", pid, os.waitstatus_to_exitcode(status)))


def _name(name: str) -> None:
    """The name `top` and `ps -o comm` show (Linux; 15 bytes): both run as `python -m
    core.spawner`."""
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as f:
        f.write(name[:15])


def _say(sock: socket.socket, message: tuple[str, int, int]) -> None:
    with contextlib.suppress(OSError):
        sock.send(pickle.dumps(message))


def _child(request: Spawn, fds: list[int], spawner_fds: tuple[socket.socket, ...]) -> None:
    """In the forked child: the spawner's state dropped, a session and environment of its own,
    descriptors in place; then the module's main. Never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        for end in spawner_fds:
            end.close()
        os.setsid()
        _name("folkgen-" + request.module.rsplit(".", 1)[-1])
        conn_fd, out_fd = fds[0], fds[1]
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(out_fd)
        os.environ.clear()
        os.environ.update(request.env)
        argv = [a.replace("{fd}", str(conn_fd)) for a in request.argv]
        sys.argv = [request.module, *argv]
        importlib.import_module(request.module).main(argv)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":  # run as core.spawner, so that Spawn is this module's class
    from core.spawner import main as spawner_main

    spawner_main()
