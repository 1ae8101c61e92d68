"""The real `openstack` CLI as a person uses it, for the compatibility suite.

An `openstack` process costs 1-2 s of start-up before it sends a request, so a
Session keeps one interactive process open (commands typed on its standard input)
and `run` hands it a batch: markers echoed to both output streams between the
commands split what each printed and what it said on standard error. The test
waits (with python-troveclient) between batches, the process still running.
An interactive session does not tell a command's exit status: `one_shot` runs
commands as processes of their own, side by side, for the tests that check it."""
from __future__ import annotations

import json
import os
import queue
import re
import shlex
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

OPENSTACK = str(Path(sys.executable).with_name("openstack"))
MARK = "@@coffer-output "
BATCH_TIMEOUT = 300


@dataclass
class Printed:
    """What one command printed (`out`) and said on standard error (`err`);
    `status` only for a command run as a process of its own."""
    command: str
    out: str
    err: str
    status: int | None = None

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError:
            raise AssertionError(f"`{self.command}` printed {self.out!r}; it said: {self.err[-2000:]}") from None

    def table(self) -> list[list[str]]:
        """The rows of the tables it printed, as lists of cells."""
        return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in self.out.splitlines()
                if line.startswith("|")]

    @property
    def silent(self) -> bool:
        """Printed nothing and said nothing: how a command that was accepted ends."""
        return self.out.strip() == "" and self.err.strip() == ""


def _typed(argument: str) -> str:
    """`argument` as typed in a session: cmd2 takes one level of quotes off, then
    cliff splits the rest again as a shell would (shlex), so quoted twice."""
    if shlex.quote(argument) == argument:
        return argument
    if "'" in argument:
        raise ValueError(f"an argument with a single quote cannot be typed in a session: {argument!r}")
    return "'\"" + re.sub(r'(["\\])', r'\\\1', argument) + "\"'"


def _command_line(command: list[str]) -> str:
    return " ".join(_typed(a) for a in command)


class Session:
    """One interactive `openstack` process, logged in as given by `args` and `env`."""

    def __init__(self, args: list[str], env: dict):
        self.proc = subprocess.Popen(
            [OPENSTACK, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            bufsize=1, env={**os.environ, **env, "PYTHONUNBUFFERED": "1"})  # in order with the markers
        self.streams = {"out": queue.Queue(), "err": queue.Queue()}
        for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            threading.Thread(target=self._read, args=(stream, self.streams[name]), daemon=True).start()
        self.batches = 0

    @staticmethod
    def _read(stream, lines: queue.Queue) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)  # the process ended

    def _until(self, name: str, end: str) -> str:
        text = []
        while True:
            try:
                line = self.streams[name].get(timeout=BATCH_TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"openstack printed no {end!r} in {BATCH_TIMEOUT} s: {''.join(text)[-2000:]}")
            if line is None:
                raise AssertionError(f"openstack stopped early: {''.join(text)[-2000:]}")
            if line.strip() == end:
                return "".join(text)
            text.append(line)

    def run(self, *commands: list[str]) -> list[Printed]:
        """What each of `commands` printed, typed one after the other."""
        self.batches += 1
        marks = [f"{MARK}{self.batches}.{i}" for i in range(len(commands) + 1)]
        echo = 'shell sh -c "echo {0}; echo {0} >&2"\n'.format  # cmd2 would take a bare ; or > itself
        script = "".join(echo(mark) + _command_line(command) + "\n" for mark, command in zip(marks, commands))
        script += echo(marks[-1])
        self.proc.stdin.write(script)
        self.proc.stdin.flush()
        printed = {}
        for name in ("out", "err"):
            self._until(name, marks[0])
            printed[name] = [self._until(name, mark) for mark in marks[1:]]
        return [Printed(shlex.join(c), out, err) for c, out, err in zip(commands, printed["out"], printed["err"])]

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def one_shot(*runs: tuple[list[str], dict, list[str]]) -> list[Printed]:
    """Each (login arguments, environment, command) as an `openstack` process of its
    own, all at once, with its exit status."""
    def run(login_args: list[str], env: dict, command: list[str]) -> Printed:
        done = subprocess.run([OPENSTACK, *login_args, *command], capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL, env={**os.environ, **env})
        return Printed(shlex.join(command), done.stdout, done.stderr, done.returncode)
    with ThreadPoolExecutor(len(runs)) as pool:
        return list(pool.map(lambda each: run(*each), runs))
