"""Helpers for the GitLab module tests: plays against one local GitLab instance.

Every run goes through ``GitLabPlays.run``, which checks the whole ``-vvvv`` output for
every token value the instance ever issued, so each test proves no secret leaked. The
admin token reaches the modules through the GITLAB_TOKEN environment variable (the
documented fallback), never through a file. Tasks that issue tokens run with ``no_log``
and are followed by a debug task that shows their result without the token, plus the
token's SHA-256 so tests can tell which issued value it was.
"""
from __future__ import annotations

import hashlib
import re

import requests

MODULES = {
    'personal': 'mobb.scm.gitlab_personal_access_token',
    'project': 'mobb.scm.gitlab_project_access_token',
    'group': 'mobb.scm.gitlab_group_access_token',
    'info': 'mobb.scm.gitlab_access_token_info',
    'service_account': 'mobb.scm.gitlab_service_account',
    'service_account_info': 'mobb.scm.gitlab_service_account_info',
    'service_account_token': 'mobb.scm.gitlab_service_account_access_token',
}


def registered(title):
    """The variable a task made by ``issue`` or ``call`` registers its result in."""
    return 'result_' + re.sub(r'\W+', '_', title).strip('_').lower()


def issue(title, module, **args):
    """A token-issuing task (no_log) and its public view, ``public(run, title)``."""
    register = registered(title)
    visible = (
        f"{{{{ {register} | dict2items | rejectattr('key', 'in', ['token', 'invocation']) | items2dict"
        f" | combine({{'token_sha256': ({register}.token | hash('sha256')) if {register}.token is defined"
        f" else none}}) }}}}")
    return [
        {'name': title, MODULES[module]: args, 'register': register, 'no_log': True,
         'ignore_errors': True},
        {'name': f'{title} (public)', 'ansible.builtin.debug': {'msg': visible}},
    ]


def call(title, module, **args):
    """A task whose result (or failure) is shown in full: for calls that issue no token."""
    return {'name': title, MODULES[module]: args, 'register': registered(title), 'ignore_errors': True}


def snapshot(title):
    """A task that reads the instance's request log, for ``requests_between``."""
    return {'name': title, 'ansible.builtin.uri': {'url': '{{ gitlab_url }}/_test/requests'},
            'check_mode': False}


def advance_clock(days):
    return {'name': f'advance the GitLab clock {days} days',
            'ansible.builtin.uri': {'url': '{{ gitlab_url }}/_test/clock', 'method': 'POST',
                                    'body_format': 'json', 'body': {'advance_days': days}},
            'check_mode': False}


def public(run, title):
    return run.task(f'{title} (public)')['msg']


def failure(run, title):
    """The ``msg`` of a task that must have failed."""
    entries = [entry for entry in run.results if entry['task'] == title]
    assert entries and entries[-1]['status'] == 'failed', f'{title!r} did not fail: {entries}'
    return entries[-1]['result']['msg']


def requests_between(run, first, second):
    """GitLab requests logged after snapshot ``first`` and up to snapshot ``second``."""
    before = {entry['seq'] for entry in run.task(first)['json']}
    return [entry for entry in run.task(second)['json'] if entry['seq'] not in before]


def writes(entries):
    return [entry for entry in entries if entry['method'] not in ('GET', 'HEAD')]


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


class GitLabPlays:
    """Runs plays on localhost against one local GitLab instance."""

    def __init__(self, run_playbook, instance):
        self.run_playbook = run_playbook
        self.instance = instance

    def run(self, tasks, *, token=None, defaults=None, check=False, diff=False, extra_vars=None,
            env=None, verbosity=4):
        """Run ``tasks``; ``token`` (default: the admin's) reaches the modules as GITLAB_TOKEN,
        ``defaults`` override the connection options (None removes one)."""
        connection = {'api_url': '{{ gitlab_url }}'}
        if self.instance.ca_path:
            connection['ca_path'] = self.instance.ca_path
        for key, value in (defaults or {}).items():
            if value is None:
                connection.pop(key, None)
            else:
                connection[key] = value
        play = {'name': 'GitLab modules', 'hosts': 'localhost', 'gather_facts': False,
                'vars': {'gitlab_url': self.instance.url},
                'module_defaults': {'group/mobb.scm.gitlab': connection}, 'tasks': tasks}
        environment = {'GITLAB_TOKEN': self.instance.admin_token if token is None else token}
        environment.update(env or {})
        result = self.run_playbook([play], check=check, diff=diff, extra_vars=extra_vars,
                                   env=environment, verbosity=verbosity)
        result.assert_no_secrets(self.instance.secrets())
        return result

    def secret(self, digest):
        """The issued token value whose SHA-256 is ``digest``."""
        matches = [value for value in self.instance.secrets() if sha256(value) == digest]
        assert len(matches) == 1, 'the module returned a value this GitLab never issued'
        return matches[0]

    def whoami(self, secret):
        """What GitLab says about a token value (GET /personal_access_tokens/self)."""
        response = requests.get(f'{self.instance.url}/api/v4/personal_access_tokens/self',
                                headers={'PRIVATE-TOKEN': secret}, timeout=10,
                                verify=self.instance.ca_path or True)
        return response.status_code, response.json()

    def token_records(self):
        """Every token record, without the last-use time that reads update."""
        return [{key: value for key, value in record.items() if key != 'last_used_at'}
                for record in self.instance.tokens()]

    def token(self, token_id):
        """The server's record of a token (no secret)."""
        return next(record for record in self.instance.tokens() if record['id'] == token_id)
