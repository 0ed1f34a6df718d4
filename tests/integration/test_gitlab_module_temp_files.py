"""What a killed run of the GitLab token modules leaves on disk, with and without pipelining.

Without pipelining, Ansible writes each module call to an ``AnsiballZ_<module>.py`` file in
the remote temporary folder (on the controller too, for localhost), the task's arguments
in it, and removes the folder when the module returns. A run killed while the module runs
(SIGKILL of every process: ansible-playbook, its worker, the module) leaves the file, and
with it the ``api_token`` the task was given: here the token an earlier task issued, as in
the modules' own example of a token that rotates itself. With ``ANSIBLE_PIPELINING=True``
the module is fed to Python on its standard input and never written.
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from rotation_fleet import Fleet, strike_while_held, token_env

HOLD = 1.5
MODULE = 'mobb.scm.gitlab_personal_access_token'


@pytest.fixture
def fleet(run_playbook, start_playbook, mobb, gitlab, tmp_path):
    return Fleet(run_playbook, mobb, [gitlab], tmp_path, start_playbook=start_playbook)


def plays(fleet):
    """The admin issues alice a token; then the token rotates itself, given as api_token."""
    connection = {'api_url': fleet.gitlabs[0].url}
    return [{'name': 'token modules', 'hosts': 'localhost', 'gather_facts': False, 'tasks': [
        {'name': 'issue', MODULE: dict(connection, api_token=f"{{{{ lookup('ansible.builtin.env', '{token_env(0)}') }}}}",
                                       user='alice', name='mobb-broker', expires_in_days=30),
         'register': 'mobb_pat', 'no_log': True},
        {'name': 'rotate itself', MODULE: dict(connection, api_token='{{ mobb_pat.token }}', name='mobb-broker',
                                               rotation_method='self_rotate', force=True),
         'register': 'rotated', 'no_log': True},
    ]}]


def killed_while_rotating(fleet, pipelining):
    """Run the plays and SIGKILL every process while GitLab holds the self-rotation."""
    gitlab = fleet.gitlabs[0]
    gitlab.fault('delay', method='POST', path='self/rotate$', seconds=HOLD)
    since = time.monotonic()
    running = fleet.start(plays(fleet), env={'ANSIBLE_PIPELINING': str(pipelining)})
    strike_while_held(gitlab.requests, lambda e: e['method'] == 'POST' and e['path'].endswith('/self/rotate'),
                      HOLD, lambda _entry: running.kill(), since, alive=lambda: running.running)
    run = running.wait(60)
    assert run.rc == -signal.SIGKILL and 'TASK [rotate itself]' in run.output and 'PLAY RECAP' not in run.output
    fleet.settle()
    # The rotation GitLab held lands after the kill: the issued token is revoked, its successor an orphan.
    writes = [(e['path'].split('/')[-1], e['status']) for e in gitlab.writes()]
    assert writes == [('personal_access_tokens', 201), ('rotate', 200)]
    secrets = fleet.secrets()
    run.assert_no_secrets(secrets)
    return secrets


def test_without_pipelining_a_killed_module_leaves_its_arguments_on_disk(fleet):
    secrets = killed_while_rotating(fleet, pipelining=False)
    leaked = fleet.secret_files(secrets)
    assert leaked, 'no file left behind holds a secret: this test cannot tell pipelining from its absence'
    # The module's AnsiballZ file in the remote temporary folder, holding the token the first
    # task issued (its api_token), not the admin's, which that task read from the environment.
    remote_tmp = str(fleet.tmp_path / 'remote-tmp') + os.sep
    assert [(path.startswith(remote_tmp), os.path.basename(path)) for path in leaked] == [
        (True, 'AnsiballZ_gitlab_personal_access_token.py')]
    (held,) = leaked.values()
    assert len(held) == 1 and held[0] != fleet.gitlabs[0].admin_token


def test_with_pipelining_a_killed_module_leaves_no_secret_on_disk(fleet):
    secrets = killed_while_rotating(fleet, pipelining=True)
    fleet.assert_no_secret_files(secrets)
    written = [name for _folder, _dirs, files in os.walk(fleet.tmp_path) for name in files]
    assert not [name for name in written if name.startswith('AnsiballZ_')], written
