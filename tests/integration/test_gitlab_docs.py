"""The GitLab modules' documentation: ansible-doc renders it and every EXAMPLES block runs."""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest
import yaml

COLLECTIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                               '.cache', 'collections')

MODULES = ['gitlab_personal_access_token', 'gitlab_project_access_token', 'gitlab_group_access_token',
           'gitlab_access_token_info']


def ansible_doc(*args):
    command = [os.path.join(os.path.dirname(sys.executable), 'ansible-doc'), *args]
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_DIR, ANSIBLE_NOCOLOR='1')
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize('module', MODULES)
def test_ansible_doc_renders_the_merged_documentation(module):
    rendered = ansible_doc(f'mobb.scm.{module}')
    assert rendered.returncode == 0, rendered.stderr
    for heading in ('OPTIONS', 'ATTRIBUTES', 'NOTES', 'REQUIREMENTS', 'SEE ALSO', 'EXAMPLES', 'RETURN VALUES'):
        assert heading in rendered.stdout, heading
    assert '[WARNING]' not in rendered.stderr

    described = ansible_doc('--json', f'mobb.scm.{module}')
    assert described.returncode == 0, described.stderr
    doc = json.loads(described.stdout)[f'mobb.scm.{module}']['doc']
    assert doc['version_added'] == '0.1.0' and doc['version_added_collection'] == 'mobb.scm'
    assert {'api_url', 'api_token', 'api_oauth_token', 'api_job_token', 'validate_certs', 'ca_path',
            'timeout', 'retries'} <= set(doc['options'])
    assert doc['attributes']['action_group']['membership'] == ['mobb.scm.gitlab']
    assert doc['attributes']['check_mode']['support'] == 'full'
    assert doc['attributes']['check_mode']['description']


def example_tasks(module):
    source = importlib.import_module(f'ansible_collections.mobb.scm.plugins.modules.{module}')
    return yaml.safe_load(source.EXAMPLES)


@pytest.mark.parametrize('module', MODULES)
def test_examples_run_against_gitlab(run_playbook, gitlab, module):
    gitlab.seed(users=[{'username': 'mobb-broker'}], groups=[{'path': 'acme'}], projects=[{'path': 'acme/payments'}],
                tokens=[{'kind': 'project', 'project': 'acme/payments', 'name': 'mobb', 'access_level': 30,
                         'expires_in_days': 10}] if module == 'gitlab_access_token_info' else [])
    tasks = example_tasks(module)
    # The admin token travels in the environment: -vvvv prints extra vars.
    play = {'name': f'{module} examples', 'hosts': 'localhost', 'gather_facts': False,
            'vars': {'gitlab_url': gitlab.url, 'gitlab_admin_token': "{{ lookup('env', 'EXAMPLE_ADMIN_TOKEN') }}"},
            'tasks': tasks}
    run = run_playbook([play], env={'EXAMPLE_ADMIN_TOKEN': gitlab.admin_token})
    run.assert_no_secrets(gitlab.secrets())
    assert run.rc == 0, run.output[-3000:]
    statuses = {entry['task']: entry['status'] for entry in run.results}
    names = [task['name'] for task in tasks]
    for task in tasks:
        names += [inner['name'] for inner in task.get('block', [])]
    assert set(names) - {task['name'] for task in tasks if 'block' in task} <= set(statuses)
    assert 'failed' not in statuses.values() and 'skipped' not in statuses.values()
    if module != 'gitlab_access_token_info':
        # Every example that names the token ends with "revoke every active token".
        assert not [record for record in gitlab.tokens() if record['name'] in ('mobb', 'mobb-broker')
                    and record['active']]
    else:
        warned = run.task('Warn about tokens that expire within two weeks')
        assert [item['msg'] for item in warned['results']] == [
            f'Token mobb ({warned["results"][0]["item"]["id"]}) expires in 10 days']
