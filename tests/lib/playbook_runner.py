"""pytest plugin (loaded by pytest.ini as ``-p playbook_runner``): run playbooks through ansible-core itself.

``run_playbook`` writes a playbook, runs ``ansible-playbook`` in a subprocess with the
collection on ANSIBLE_COLLECTIONS_PATH, and returns the exit code, the whole output
(``-vvvv`` by default, so leak checks see everything Ansible prints) and every task result.
The integration tests use it against the local servers, the live tests against the
GitLab and Mobb named in the environment.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys

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


@pytest.fixture
def run_playbook(tmp_path):
    """Return a function that runs a playbook (YAML text, or a list of plays) and its result."""
    counter = iter(range(1000))

    def run(playbook, *, check=False, diff=False, verbosity=4, extra_vars=None, env=None, args=()):
        index = next(counter)
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
        completed = subprocess.run(command, env=environment, capture_output=True, text=True,
                                   timeout=600, check=False)
        results = []
        if results_path.exists():
            results = [json.loads(line) for line in results_path.read_text().splitlines()]
            results_path.unlink()  # it may hold secrets a task returned; leave none behind
        return PlaybookRun(completed.returncode, completed.stdout + completed.stderr, results)

    return run
