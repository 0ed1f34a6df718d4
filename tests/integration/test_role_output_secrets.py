"""No token value in anything a rotation prints or writes, whatever Ansible is told to show.

ansible-core ships no ``json`` stdout callback (that one is ansible.posix's, not installed
here): its ``default`` callback shows task results as JSON or YAML
(ANSIBLE_CALLBACK_RESULT_FORMAT), and its ``tree`` and ``junit`` callbacks write every
result to files, as JSON and as XML. A rotation runs with each result format, both file
callbacks on, at -vvvv, and a play that prints the host's variables after the role
(rotation_fleet's role_play); Fleet.run searches the output, the results and every file
for every value either server issued or received. With ANSIBLE_DEBUG=1 Ansible prints
every task's arguments (its own limit of no_log), so the credentials given to the role may
show there: no token the run issued and stored may.
"""
from __future__ import annotations

import pytest

from rotation_fleet import PERSONAL, Fleet, results


@pytest.fixture
def fleet(run_playbook, mobb, gitlab, tmp_path):
    return Fleet(run_playbook, mobb, [gitlab], tmp_path)


def rotated(run):
    assert run.rc == 0, run.output[-3000:]
    recorded = results(run)
    assert [entry['action'] for entry in recorded] == ['rotated']
    return recorded[0]


@pytest.mark.parametrize('result_format', ['json', 'yaml'])
def test_no_token_in_the_output_results_or_callback_files(fleet, tmp_path, result_format):
    old = fleet.near_expiry()
    tree, junit = tmp_path / 'tree', tmp_path / 'junit'
    run = fleet.run(fleet.role_play(**PERSONAL), env={
        'ANSIBLE_CALLBACK_RESULT_FORMAT': result_format,
        'ANSIBLE_CALLBACKS_ENABLED': 'record_results,ansible.builtin.tree,ansible.builtin.junit',
        'ANSIBLE_CALLBACK_TREE_DIR': str(tree),
        'JUNIT_OUTPUT_DIR': str(junit),
    })
    result = rotated(run)
    assert result['previous_token_id'] == old['id'] and result['new_token_fingerprint']
    # The format took effect, and the callbacks wrote their files (which Fleet.run searched).
    shown = 'ok: [localhost] => \n' if result_format == 'yaml' else 'ok: [localhost] => {\n'
    assert shown in run.output
    assert (tree / 'localhost').read_text() and list(junit.glob('*.xml'))
    # The host's variables, printed after the role, hold its results: ids and fingerprints.
    host_vars = run.task('host variables after the role')['hostvars[inventory_hostname]']
    assert host_vars['gitlab_token_rotation_result']['new_token_fingerprint'] == result['new_token_fingerprint']


def test_ansible_debug_shows_no_token_the_run_issued(fleet):
    fleet.near_expiry()
    gitlab = fleet.gitlabs[0]
    # ANSIBLE_DEBUG shows the task's arguments: the admin token (from a lookup) and the Mobb
    # API key (from the environment) may appear, as the role's README says.
    given = [gitlab.admin_token, fleet.api_key]
    run = fleet.run(fleet.role_play(**PERSONAL), env={'ANSIBLE_DEBUG': '1'}, output_may_show=given)
    rotated(run)
    # Debug output it is, from the rotation's task.
    assert ': entering _queue_task() for localhost/mobb.scm.gitlab_fleet_tokens\n' in run.output
    issued = [secret for secret in fleet.secrets() if secret not in given]
    assert len(issued) >= 2  # the first run's token and this run's
