"""pytest plugin (loaded by pytest.ini as ``-p playbook_runner``): run playbooks through ansible-core itself.

``run_playbook`` writes a playbook, runs ``ansible-playbook`` in a subprocess with the
collection on ANSIBLE_COLLECTIONS_PATH, and returns the exit code, the whole output
(``-vvvv`` by default, so leak checks see everything Ansible prints) and every task result.
``start_playbook`` starts the same command in a process group of its own and returns a
handle that can pause, resume or SIGKILL the whole group (as an OOM killer or a stopped
container does) before it collects the same result. The integration tests use them against
the local servers, the live tests against the GitLab and Mobb named in the environment.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS_DIR = os.path.join(REPO_ROOT, '.cache', 'collections')


@dataclasses.dataclass
class PlaybookRun:
    rc: int
    # Out of the repr, so that a failed assertion on a run never prints what it may have leaked.
    output: str = dataclasses.field(repr=False)
    results: list = dataclasses.field(repr=False)

    def task(self, name):
        """The last result of the task with this name."""
        matches = [entry for entry in self.results if entry['task'] == name]
        assert matches, f'no result for task {name!r}; tasks run: {[e["task"] for e in self.results]}'
        return matches[-1]['result']

    def assert_no_secrets(self, secrets):
        """Fail when any of these secret values appears anywhere in the output."""
        leaked = [s for s in secrets if s and s in self.output]
        assert not leaked, f'{len(leaked)} secret value(s) appear in the output'

    def assert_no_fingerprinted_secrets(self, fingerprints):
        """Fail when a secret known only as ``(sha256 hex, length)`` appears in the output or results.

        Every window of that length is hashed, so this finds exactly what ``secret in text``
        would, for values that exist only inside the playbook run (registered with no_log).
        """
        text = self.output + json.dumps(self.results)
        wanted = {}
        for digest, length in fingerprints:
            wanted.setdefault(length, set()).add(digest)
        found = []
        for length, digests in wanted.items():
            for start in range(len(text) - length + 1):
                if hashlib.sha256(text[start:start + length].encode()).hexdigest() in digests:
                    found.append(start)
        assert not found, f'{len(found)} occurrence(s) of fingerprinted secrets in the output, at offsets {found}'


def _inventory():
    return (
        'localhost ansible_connection=local '
        f'ansible_python_interpreter={sys.executable}\n'
    )


class _Playbooks:
    """Writes each playbook of a test under its tmp_path and builds the command and
    environment that run it; ``run_playbook`` and ``start_playbook`` share one per test."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.counter = iter(range(1000))

    def prepare(self, playbook, *, check=False, diff=False, verbosity=4, extra_vars=None, env=None, args=()):
        """(command, environment, results file) for one run of ``playbook``."""
        tmp_path = self.tmp_path
        index = next(self.counter)
        playbook_path = tmp_path / f'playbook_{index}.yml'
        results_path = tmp_path / f'results_{index}.jsonl'
        inventory_path = tmp_path / 'inventory.ini'
        inventory_path.write_text(_inventory())
        text = playbook if isinstance(playbook, str) else yaml.safe_dump(playbook, sort_keys=False)
        playbook_path.write_text(text)
        command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
                   '-i', str(inventory_path), str(playbook_path)]
        if verbosity:
            command.append('-' + 'v' * verbosity)
        if check:
            command.append('--check')
        if diff:
            command.append('--diff')
        if extra_vars:
            command += ['-e', json.dumps(extra_vars)]
        command += list(args)
        environment = dict(os.environ)
        environment.update({
            'ANSIBLE_COLLECTIONS_PATH': COLLECTIONS_DIR,
            'ANSIBLE_CALLBACK_PLUGINS': os.path.join(HERE, 'callback_plugins'),
            'ANSIBLE_CALLBACKS_ENABLED': 'record_results',
            'ANSIBLE_HOST_KEY_CHECKING': 'False',
            'ANSIBLE_NOCOLOR': '1',
            'ANSIBLE_RETRY_FILES_ENABLED': 'False',
            'ANSIBLE_LOCAL_TEMP': str(tmp_path / 'ansible-tmp'),
            'RECORD_RESULTS_FILE': str(results_path),
        })
        environment.update(env or {})
        return command, environment, results_path


def _collect_results(results_path):
    results = []
    if results_path.exists():
        results = [json.loads(line) for line in results_path.read_text().splitlines()]
        results_path.unlink()  # it may hold secrets a task returned; leave none behind
    return results


@pytest.fixture
def _playbooks(tmp_path):
    return _Playbooks(tmp_path)


@pytest.fixture
def run_playbook(_playbooks):
    """Return a function that runs a playbook (YAML text, or a list of plays) and its result."""

    def run(playbook, **options):
        command, environment, results_path = _playbooks.prepare(playbook, **options)
        completed = subprocess.run(command, env=environment, capture_output=True, text=True,
                                   timeout=600, check=False)
        return PlaybookRun(completed.returncode, completed.stdout + completed.stderr, _collect_results(results_path))

    return run


def _children():
    """{parent pid: [child pids]} of every process now, from /proc."""
    children = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open(f'/proc/{name}/stat', encoding='ascii', errors='replace') as stat:
                # pid (comm) state ppid ...: comm may hold spaces and parentheses.
                ppid = int(stat.read().rsplit(')', 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(ppid, []).append(int(name))
    return children


class RunningPlaybook:
    """An ``ansible-playbook`` started in a session (and process group) of its own. Its
    workers call setsid() (ansible-core's WorkerProcess._detach), so they and the modules
    they run are in sessions of their own: pause, resume and kill signal every process
    descended from ansible-playbook, not only its group, as a stopped container's SIGKILL
    reaches every process in it. The output is read as it comes, so a full pipe never
    holds the run up."""

    def __init__(self, command, environment, results_path):
        self._results_path = results_path
        self.process = subprocess.Popen(command, env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self._chunks = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for chunk in iter(lambda: self.process.stdout.read1(65536), b''):
            self._chunks.append(chunk)

    @property
    def pgid(self):
        return self.process.pid  # a session leader leads its own process group

    def processes(self):
        """ansible-playbook and every process descended from it, now."""
        children = _children()
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += children.get(pid, [])
        return found

    @staticmethod
    def _send(pids, signum):
        for pid in pids:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def pause(self):
        """SIGSTOP every process of the run; once they all stop, none can fork another."""
        stopped = set()
        while True:
            pids = set(self.processes()) - stopped
            if not pids:
                return
            self._send(pids, signal.SIGSTOP)
            stopped |= pids

    def resume(self):
        self._send(self.processes(), signal.SIGCONT)

    def kill(self):
        """SIGKILL every process of the run at once, as an OOM kill of the whole job or a
        stopped container does: none gets to clean up."""
        self.pause()
        pids = self.processes()
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._send(pids, signal.SIGKILL)

    @property
    def running(self):
        return self.process.poll() is None

    def wait(self, timeout=600):
        """Wait for the end (an exit or the kill) and return the PlaybookRun; rc is -9 after kill()."""
        self.process.wait(timeout)
        self._reader.join(timeout)
        output = b''.join(self._chunks).decode('utf-8', 'replace')
        return PlaybookRun(self.process.returncode, output, _collect_results(self._results_path))


@pytest.fixture
def start_playbook(_playbooks):
    """Return a function that starts a playbook (the options of ``run_playbook``) and
    returns its RunningPlaybook; groups still alive when the test ends are killed."""
    started = []

    def start(playbook, **options):
        running = RunningPlaybook(*_playbooks.prepare(playbook, **options))
        started.append(running)
        return running

    yield start
    for running in started:
        if running.running:
            running.kill()
            running.wait(60)
