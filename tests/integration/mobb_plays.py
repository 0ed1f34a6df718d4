"""Helpers for the Mobb module tests: plays on localhost against the local Mobb and GitLab.

Every run goes through ``MobbPlays.run``, which proves that no API key or token either
server issued appears in the ``-vvvv`` output or in any file the run left under the test's
temporary directory (playbooks, Ansible's local and remote temp dirs). Secrets reach the
play only through environment variables: the API key through MOBB_API_KEY (the modules'
documented fallback), GitLab tokens through lookups of MOBB_TEST_* variables.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import urllib.parse

TOKEN_ENV = {'gitlab_token': 'MOBB_TEST_GITLAB_TOKEN', 'next_gitlab_token': 'MOBB_TEST_NEXT_GITLAB_TOKEN'}


def fingerprint(token):
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def operations(mobb):
    return [entry['operation'] for entry in mobb.requests()]


def endpoints(mobb):
    """(endpoint, operation) of each request Mobb saw: endpoint ``graphql`` or ``rest``."""
    return [(entry['endpoint'], entry['operation']) for entry in mobb.requests()]


@contextlib.contextmanager
def closed_port():
    """A loopback port that is bound but not listening: connections to it are refused."""
    with socket.socket() as bound:
        bound.bind(('127.0.0.1', 0))
        yield bound.getsockname()[1]


def failure(run, name):
    """The result of task ``name``, which must have failed (callbacks see no ``failed`` key)."""
    entries = [entry for entry in run.results if entry['task'] == name]
    assert entries and entries[-1]['status'] == 'failed', f'task {name!r} did not fail: {entries}'
    return entries[-1]['result']


def warnings_of(result):
    return [warning['event']['msg'] if isinstance(warning, dict) else warning
            for warning in result.get('warnings', [])]


class MobbPlays:
    """One Mobb organization with an Admin, one GitLab user with two PATs fit for Mobb."""

    def __init__(self, run_playbook, mobb, gitlab, tmp_path):
        self._run_playbook = run_playbook
        self.mobb = mobb
        self.gitlab = gitlab
        self.tmp_path = tmp_path
        self.gitlab_host = urllib.parse.urlsplit(gitlab.url).netloc
        seeded = mobb.seed(
            organizations=[{'name': 'acme', 'broker_hosts': [{'real_domain': self.gitlab_host,
                                                              'virtual_domain': 'vd-acme'}]}],
            users=[{'email': 'admin@acme.example', 'organization': 'acme', 'role': 'Admin'}])
        self.api_key = seeded['users'][0]['api_key']
        tokens = gitlab.seed(users=[{'username': 'mobb-bot'}], tokens=[
            {'kind': 'personal', 'user': 'mobb-bot', 'name': 'mobb', 'scopes': ['api', 'read_user']},
            {'kind': 'personal', 'user': 'mobb-bot', 'name': 'mobb-next', 'scopes': ['api', 'read_user']},
        ])['tokens']
        self.token, self.next_token = (item['token'] for item in tokens)

    def secrets(self):
        return self.mobb.secrets() + self.gitlab.secrets()

    def play(self, tasks, module_defaults=None):
        """A play on localhost; module_defaults for group/mobb.scm.mobb (api_url unless given;
        False: none, so the tasks' own settings and the environment decide)."""
        play_vars = {name: f"{{{{ lookup('ansible.builtin.env', '{env}') }}}}" for name, env in TOKEN_ENV.items()}
        play_vars.update(gitlab_url=self.gitlab.url, mobb_api_url=self.mobb.graphql_url,
                         mobb_rest_url=self.mobb.rest_check_url,
                         mobb_api_key="{{ lookup('ansible.builtin.env', 'MOBB_API_KEY') }}")
        play = {'name': 'mobb', 'hosts': 'localhost', 'gather_facts': False, 'vars': play_vars, 'tasks': tasks}
        if module_defaults is not False:
            play['module_defaults'] = {'group/mobb.scm.mobb': dict({'api_url': self.mobb.graphql_url},
                                                                   **(module_defaults or {}))}
        return [play]

    def run(self, tasks, module_defaults=None, env=None, **options):
        """Run the tasks after clearing Mobb's request log; check that nothing leaked."""
        environment = {'MOBB_API_KEY': self.api_key, TOKEN_ENV['gitlab_token']: self.token,
                       TOKEN_ENV['next_gitlab_token']: self.next_token,
                       'ANSIBLE_REMOTE_TEMP': str(self.tmp_path / 'remote-tmp')}
        environment.update(env or {})
        self.mobb.clear_requests()
        run = self._run_playbook(self.play(tasks, module_defaults), env=environment, **options)
        secrets = self.secrets()
        assert secrets, 'the servers report no secrets: the leak check would prove nothing'
        run.assert_no_secrets(secrets)
        self.assert_no_secret_files(secrets)
        return run

    def assert_no_secret_files(self, secrets):
        leaked = []
        for folder, _dirs, files in os.walk(self.tmp_path):
            for name in files:
                with open(os.path.join(folder, name), 'rb') as handle:
                    content = handle.read()
                if any(secret.encode() in content for secret in secrets):
                    leaked.append(os.path.join(folder, name))
        assert not leaked, f'files left behind hold secrets: {leaked}'


def integration_task(name, **args):
    task_args = {'scm_url': '{{ gitlab_url }}', 'token': '{{ gitlab_token }}'}
    task_args.update(args)
    return {'name': name, 'mobb.scm.mobb_integration': task_args, 'ignore_errors': True}


def connection_task(name, **args):
    task_args = {'scm_url': '{{ gitlab_url }}'}
    task_args.update(args)
    return {'name': name, 'mobb.scm.mobb_connection_info': task_args, 'ignore_errors': True}
