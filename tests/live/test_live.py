"""The collection's modules, unchanged, against the GitLab and Mobb named in the environment.

Run with ``make live`` (see README.md, "Testing against a real GitLab and Mobb"). Every run is
searched for GITLAB_TOKEN, MOBB_API_KEY and, by fingerprint, every token it issued.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets

import gitlab as python_gitlab
import pytest

pytestmark = pytest.mark.live

LIFECYCLE_PLAYBOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'token_lifecycle.yml')
FINGERPRINT_TASK = 'Fingerprint the issued tokens'
MOBB_WRITE_TASKS = (
    'Write the issued token to Mobb\'s integration',
    'Ask Mobb whether it reaches GitLab with the issued token',
    'Write the rotated token to Mobb\'s integration',
    'Ask Mobb whether it reaches GitLab with the rotated token',
)


def gitlab_project(live):
    """The scratch project through python-gitlab, to check and clean up independently of the modules."""
    url = live.gitlab_url.rstrip('/').removesuffix('/api/v4')
    client = python_gitlab.Gitlab(url, private_token=live.gitlab_token, ssl_verify=live.gitlab_ca_path or True,
                                  timeout=30)
    return client.projects.get(live.project, lazy=True)


def active_tokens(project, name):
    return [token for token in project.access_tokens.list(get_all=True) if token.name == name and token.active]


def fingerprint(secret):
    return hashlib.sha256(secret.encode()).hexdigest(), len(secret)


def assert_credentials_not_leaked(run, live):
    """Neither credential in the output or the task results, checked before anything prints either."""
    run.assert_no_fingerprinted_secrets([fingerprint(live.gitlab_token), fingerprint(live.mobb_api_key)])


def failures(run):
    """Failed tasks and their messages (no_log tasks' messages arrive censored)."""
    return [(entry['task'], entry['result'].get('msg')) for entry in run.results if entry['status'] == 'failed']


def test_mobb_reports_on_gitlab_url_read_only(live, run_playbook, record_property):
    run = run_playbook([{
        'name': 'Ask Mobb about the live GitLab',
        'hosts': 'localhost',
        'gather_facts': False,
        'tasks': [{
            'name': 'Ask Mobb whether it reaches GitLab',
            'mobb.scm.mobb_connection_info': {'scm_url': live.gitlab_url},
        }],
    }])
    assert_credentials_not_leaked(run, live)
    assert run.rc == 0, failures(run)
    result = run.task('Ask Mobb whether it reaches GitLab')
    record_property('mobb_connected', result['connected'])
    assert result['changed'] is False
    assert isinstance(result['connected'], bool) and isinstance(result['token_stored'], bool)
    assert result['status'] == ('OK' if result['connected'] else 'Error')
    assert result['connected'] <= result['token_stored']  # connected implies a token is stored
    assert result['connected'] or result['message'], 'Mobb gave no reason for not being connected'


def test_project_access_token_lifecycle(live, run_playbook, record_property):
    name = f'mobb-scm-live-{secrets.token_hex(4)}'
    record_property('token_name', name)
    project = gitlab_project(live)
    try:
        with open(LIFECYCLE_PLAYBOOK, encoding='utf-8') as stream:
            run = run_playbook(stream.read(), extra_vars={
                'live_project': live.project, 'live_token_name': name, 'live_gitlab_url': live.gitlab_url,
                'live_gitlab_ca_path': live.gitlab_ca_path, 'live_mobb_write': live.mobb_write,
            })
        # Leak checks come first, so that nothing below prints output that holds a secret.
        assert_credentials_not_leaked(run, live)
        reports = [entry['result'] for entry in run.results if entry['task'] == FINGERPRINT_TASK]
        assert reports, f'the playbook stopped before it fingerprinted its tokens (rc {run.rc}): {failures(run)}'
        fingerprints = [tuple(pair) for pair in reports[-1]['msg']]
        run.assert_no_fingerprinted_secrets(fingerprints)
        record_property('issued_token_sha256', json.dumps([pair[0] for pair in fingerprints]))
        left_active = [token.id for token in active_tokens(project, name)]

        assert (run.rc, left_active) == (0, []), f'failed tasks: {failures(run)}; active tokens left: {left_active}'
        assert len(fingerprints) == 2 and fingerprints[0] != fingerprints[1]
        mobb_statuses = [entry['status'] for entry in run.results if entry['task'] in MOBB_WRITE_TASKS]
        assert mobb_statuses == ['ok' if live.mobb_write else 'skipped'] * len(MOBB_WRITE_TASKS)
    finally:
        for token in active_tokens(project, name):
            project.access_tokens.delete(token.id)
