"""Helpers for the rotation role and playbook tests: GitLab instances and Mobb, seeded.

A ``Fleet`` seeds each GitLab instance with a user, a group and a project, and Mobb with
one organization (its broker serving the instances named as brokered) and an Admin whose
API key the modules read from MOBB_API_KEY. Each instance's admin token reaches the role
through an environment variable and a lookup, so no secret is ever written to a file.
``Fleet.run`` clears both servers' request logs, runs the plays, and proves that no value
either server issued appears in the -vvvv output or in any file under the test's
temporary directory.
"""
from __future__ import annotations

import contextlib
import os
import threading
import urllib.parse

ADMIN_KEY = 'admin@acme.example'
CHECK_QUERY = 'query check($url: String!) { checkScmConnectionStatus(scmUrl: $url) { status } }'


def token_env(index):
    return f'MOBB_TEST_GITLAB_ADMIN_TOKEN_{index}'


def host(url):
    return urllib.parse.urlsplit(url).netloc


class Fleet:
    def __init__(self, run_playbook, mobb, gitlabs, tmp_path, brokered=()):
        self._run_playbook = run_playbook
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

    def run(self, plays, env=None, watch=None, **options):
        """Run the plays with both request logs cleared first. ``watch``, a tuple for
        ``when_seen`` (poll, matches, action), strikes mid-run; ``run.fired`` says whether it did."""
        for gitlab in self.gitlabs:
            gitlab.clear_requests()
        self.mobb.clear_requests()
        with when_seen(*watch) if watch else contextlib.nullcontext([]) as fired:
            run = self._run_playbook(plays, env=self.env(env), **options)
        run.fired = bool(fired)
        secrets = self.secrets()
        assert secrets, 'the servers report no secrets: the leak check would prove nothing'
        run.assert_no_secrets(secrets)
        self.assert_no_secret_files(secrets)
        return run

    def secrets(self):
        values = list(self.mobb.secrets())
        for gitlab in self.gitlabs:
            values += gitlab.secrets()
        return values

    def assert_no_secret_files(self, secrets, root=None):
        leaked = []
        for folder, _dirs, files in os.walk(root or self.tmp_path):
            for name in files:
                with open(os.path.join(folder, name), 'rb') as handle:
                    content = handle.read()
                if any(secret.encode() in content for secret in secrets):
                    leaked.append(os.path.join(folder, name))
        assert not leaked, f'files left behind hold secrets: {leaked}'

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


def results(run):
    """What the role recorded in gitlab_token_rotation_results (shown by role_play)."""
    return run.task('results')['gitlab_token_rotation_results | default(None)']
