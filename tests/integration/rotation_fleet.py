"""Helpers for the rotation role and playbook tests: GitLab instances and Mobb, seeded.

A ``Fleet`` seeds each GitLab instance with a user, a group and a project, and Mobb with
one organization (its broker serving the instances named as brokered) and an Admin whose
API key the modules read from MOBB_API_KEY. Each instance's admin token reaches the role
through an environment variable and a lookup, so no secret is ever written to a file.
``Fleet.run`` clears both servers' request logs, runs the plays, and proves that no value
either server issued appears in the -vvvv output or in any file under the test's
temporary directory. ``Fleet.start`` starts the plays as a run whose processes the test can
pause or kill at a moment a server's request log shows (``strike_while_held``), and
``Fleet.check`` then makes the same leak checks on what the run printed and left behind.
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import urllib.parse

ADMIN_KEY = 'admin@acme.example'
PERSONAL = {'gitlab_token_rotation_token_type': 'personal', 'gitlab_token_rotation_user': 'alice'}
CHECK_QUERY = 'query check($url: String!) { checkScmConnectionStatus(scmUrl: $url) { status } }'


def token_env(index):
    return f'MOBB_TEST_GITLAB_ADMIN_TOKEN_{index}'


def host(url):
    return urllib.parse.urlsplit(url).netloc


class Fleet:
    def __init__(self, run_playbook, mobb, gitlabs, tmp_path, brokered=(), start_playbook=None):
        self._run_playbook = run_playbook
        self._start_playbook = start_playbook
        self.mobb = mobb
        self.gitlabs = list(gitlabs)
        self.tmp_path = tmp_path
        brokers = [{'real_domain': host(gitlab.url), 'virtual_domain': f'vd-{gitlab.name}'}
                   for gitlab in self.gitlabs if gitlab in brokered]
        seeded = mobb.seed(
            organizations=[{'name': 'acme', 'broker_hosts': brokers}],
            users=[{'email': ADMIN_KEY, 'organization': 'acme', 'role': 'Admin'}])
        self.api_key = seeded['users'][0]['api_key']
        for gitlab in self.gitlabs:
            gitlab.seed(users=[{'username': 'alice'}], groups=[{'path': 'team'}],
                        projects=[{'path': 'team/app'}],
                        members=[{'username': 'alice', 'group': 'team', 'access_level': 50}])

    # -- running ---------------------------------------------------------------------------
    def env(self, extra=None):
        environment = {'MOBB_API_KEY': self.api_key,
                       'ANSIBLE_REMOTE_TEMP': str(self.tmp_path / 'remote-tmp')}
        environment.update({token_env(index): gitlab.admin_token for index, gitlab in enumerate(self.gitlabs)})
        environment.update(extra or {})
        return environment

    def connection_vars(self, index):
        """Role variables that connect it to instance ``index`` and to Mobb."""
        return {
            'gitlab_token_rotation_gitlab_url': self.gitlabs[index].url,
            'gitlab_token_rotation_gitlab_api_token': f"{{{{ lookup('ansible.builtin.env', '{token_env(index)}') }}}}",
            'gitlab_token_rotation_mobb_api_url': self.mobb.graphql_url,
            'gitlab_token_rotation_verify_retries': 2,
            'gitlab_token_rotation_verify_delay': 0,
        }

    def role_play(self, index=0, **role_vars):
        """A play on localhost that applies the role to instance ``index``, then shows the
        results it recorded (task ``results``), even when the role failed."""
        variables = self.connection_vars(index)
        variables.update(role_vars)
        return [{'name': 'keep the token', 'hosts': 'localhost', 'gather_facts': False, 'tasks': [{
            'name': 'apply the role',
            'block': [{'name': 'role', 'ansible.builtin.include_role': {'name': 'mobb.scm.gitlab_token_rotation'},
                       'vars': variables}],
            'always': [
                {'name': 'results', 'ansible.builtin.debug': {
                    'var': 'gitlab_token_rotation_results | default(None)'}},
                # Whatever the role left in the host's variables: printed here, a token value
                # among them fails every run's leak check.
                {'name': 'host variables after the role', 'ansible.builtin.debug': {
                    'var': 'hostvars[inventory_hostname]'}},
            ],
        }]}]

    def run(self, plays, env=None, watch=None, output_may_show=(), **options):
        """Run the plays with both request logs cleared first. ``watch``, a tuple for
        ``when_seen`` (poll, matches, action), strikes mid-run; ``run.fired`` says whether it did.
        The run is checked for leaks (``check``)."""
        self.clear_requests()
        with when_seen(*watch) if watch else contextlib.nullcontext([]) as fired:
            run = self._run_playbook(plays, env=self.env(env), **options)
        run.fired = bool(fired)
        return self.check(run, output_may_show)

    def start(self, plays, env=None, clear=True, **options):
        """Start the plays (``clear``: both request logs cleared first) and return the
        RunningPlaybook; ``check`` its PlaybookRun once it ended."""
        if clear:
            self.clear_requests()
        return self._start_playbook(plays, env=self.env(env), **options)

    def clear_requests(self):
        for gitlab in self.gitlabs:
            gitlab.clear_requests()
        self.mobb.clear_requests()

    def check(self, run, output_may_show=()):
        """The leak checks of every run: no value either server issued or received in the
        output or the recorded results, nor in any file under the test's temporary directory.
        ``output_may_show`` are values the output alone may hold (ANSIBLE_DEBUG prints task
        arguments, the credentials given to the role among them)."""
        secrets = self.secrets()
        assert secrets, 'the servers report no secrets: the leak check would prove nothing'
        shown = set(output_may_show)
        run.assert_no_secrets([secret for secret in secrets if secret not in shown])
        recorded = json.dumps(run.results)
        assert not [secret for secret in secrets if secret in recorded], 'a task result holds a secret'
        self.assert_no_secret_files(secrets)
        return run

    def settle(self, timeout=30):
        """Wait until both servers answered the requests they held: a request held by a
        ``delay`` fault is still served after its client was killed (a write still lands)."""
        deadline = time.monotonic() + timeout
        while True:
            pending = [entry for gitlab in self.gitlabs for entry in gitlab.requests() if entry['status'] is None]
            pending += [entry for entry in self.mobb.requests() if mobb_pending(entry)]
            if not pending:
                return
            assert time.monotonic() < deadline, f'requests still unanswered after {timeout} s: {pending}'
            time.sleep(0.05)

    def secrets(self):
        values = list(self.mobb.secrets())
        for gitlab in self.gitlabs:
            values += gitlab.secrets()
        return values

    def assert_no_secret_files(self, secrets, root=None):
        leaked = sorted(self.secret_files(secrets, root))
        assert not leaked, f'files left behind hold secrets: {leaked}'

    def secret_files(self, secrets, root=None):
        """{path: [the secrets it holds]} of the files under ``root`` (the test's temporary
        directory) that hold any of ``secrets``."""
        leaked = {}
        for folder, _dirs, files in os.walk(root or self.tmp_path):
            for name in files:
                with open(os.path.join(folder, name), 'rb') as handle:
                    content = handle.read()
                held = [secret for secret in secrets if secret.encode() in content]
                if held:
                    leaked[os.path.join(folder, name)] = held
        return leaked

    def near_expiry(self, **role_vars):
        """A first run of alice's personal token, then GitLab's clock moved to 6 days
        before it expires: the next run rotates. Returns the token's record."""
        run = self.run(self.role_play(**PERSONAL, **role_vars))
        assert run.rc == 0, run.output[-3000:]
        self.gitlabs[0].advance_clock(24)
        return self.active()[0]

    def assert_converges(self, action, **role_vars):
        """The next run, with no fault left, does ``action`` and leaves one active token with
        the name, the one Mobb connects with. Returns the run's result."""
        self.gitlabs[0].clear_faults()
        self.mobb.clear_faults()
        run = self.run(self.role_play(**PERSONAL, **role_vars))
        assert run.rc == 0, run.output[-3000:]
        recorded = results(run)
        assert len(recorded) == 1 and recorded[0]['action'] == action, recorded
        active = self.active()
        assert len(active) == 1, active
        assert recorded[0]['token_id'] == active[0]['id']
        assert self.mobb_uses() == (True, active[0]['id'])
        return recorded[0]

    # -- what the servers hold ---------------------------------------------------------------
    def active(self, index=0, name='mobb-broker'):
        """Active token records with this name on instance ``index``, oldest first."""
        return sorted((t for t in self.gitlabs[index].tokens() if t['name'] == name and t['active']),
                      key=lambda t: t['id'])

    def token(self, index, token_id):
        return next(t for t in self.gitlabs[index].tokens() if t['id'] == token_id)

    def config(self, index=0):
        """Mobb's stored integration for instance ``index`` (None when there is none)."""
        url = self.gitlabs[index].url.rstrip('/').lower()
        configs = [c for c in self.mobb.scm_configs() if c['scm_url'] == url]
        assert len(configs) <= 1
        return configs[0] if configs else None

    def mobb_uses(self, index=0):
        """(connected, GitLab token id) of Mobb's own connection check for instance ``index``.

        The id is the one GitLab's request log records for the check's calls, so it proves
        which token Mobb holds without any secret.
        """
        gitlab = self.gitlabs[index]
        seen = max((entry['seq'] for entry in gitlab.requests()), default=0)
        answer = self.mobb.graphql(CHECK_QUERY, {'url': gitlab.url}, api_key=self.api_key).json()
        connected = (answer.get('data') or {}).get('checkScmConnectionStatus', {}) == {'status': 'OK'}
        used = {entry['token_id'] for entry in gitlab.requests()
                if entry['seq'] > seen and entry['path'] == '/api/v4/user'}
        assert len(used) <= 1, used
        return connected, (used.pop() if used else None)

    def gitlab_writes(self, index=None):
        targets = self.gitlabs if index is None else [self.gitlabs[index]]
        return [entry for gitlab in targets for entry in gitlab.writes()]


@contextlib.contextmanager
def when_seen(poll, matches, action, interval=0.02):
    """While the block runs, call ``action()`` once, as soon as an entry of ``poll()`` (a
    server's request log) satisfies ``matches``: a fault that strikes mid-run, at the
    moment the role reaches a given step. Yields a list that holds True once it fired."""
    stop = threading.Event()
    fired = []

    def watch():
        while not stop.is_set():
            if any(matches(entry) for entry in poll()):
                action()
                fired.append(True)
                return
            stop.wait(interval)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield fired
    finally:
        stop.set()
        watcher.join(10)


def mobb_pending(entry):
    """A Mobb request held by a ``delay`` fault and not answered yet: every answer to the
    requests these tests hold (connection checks, stores) records an error code, a result
    or the SCM checks Mobb made."""
    return entry['fault'] == 'delay' and not (entry['error_code'] or entry['result'] or entry['scm_checks'])


def strike_while_held(poll, matches, seconds, action, since, alive=None, timeout=60, interval=0.02):
    """Call ``action(entry)`` while the server still holds (a ``delay`` fault of ``seconds``)
    the request of the first entry of ``poll()`` (a request log) that satisfies ``matches``.

    The entry was logged after the last poll that did not show it began (the first poll
    counts from ``since``, a time.monotonic() taken before the run could send it), so the
    request is held at least until that moment plus ``seconds``: if ``action`` ends later
    than that, the strike may have missed and the test fails instead of testing something
    else. ``alive()`` false (the run ended) stops the wait. Returns the entry and that
    moment, the ``since`` of a later strike on a request no poll has shown yet.
    """
    before = since
    while True:
        polled = time.monotonic()
        found = next((entry for entry in poll() if matches(entry)), None)
        if found is not None:
            break
        assert alive is None or alive(), 'the run ended before the moment to strike came'
        assert polled - since < timeout, f'no matching request within {timeout} s'
        before = polled
        time.sleep(interval)
    action(found)
    late = time.monotonic() - (before + seconds)
    assert late < 0, f'the strike came {late:.2f} s after the held request may have been answered'
    return found, before


def results(run):
    """What the role recorded in gitlab_token_rotation_results (shown by role_play)."""
    return run.task('results')['gitlab_token_rotation_results | default(None)']
