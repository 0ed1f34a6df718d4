"""mobb.scm.rotate and mobb.scm.check the way AWX runs them: through ansible-runner, from the
project playbooks of docs/awx.md, with the secrets injected as environment variables by its
credential types, and the results in the job's artifacts (set_stats)."""
from __future__ import annotations

import json
import os
import sys

import ansible_runner
import pytest
import yaml

from awx_docs import injected_environment, project_playbooks
from rotation_fleet import Fleet

COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           '.cache', 'collections')
HOST = 'gitlab-eu.example'
LABEL = 'personal:alice/mobb-broker'


@pytest.fixture
def fleet(run_playbook, mobb, gitlab, tmp_path):
    return Fleet(run_playbook, mobb, [gitlab], tmp_path)


@pytest.fixture
def job(fleet, tmp_path):
    """An AWX-like private data dir: the project's playbooks and an inventory without secrets."""
    private = tmp_path / 'awx-job'
    (private / 'project').mkdir(parents=True)
    (private / 'inventory').mkdir()
    playbooks = project_playbooks()
    assert sorted(playbooks) == ['check.yml', 'rotate.yml']
    for name, text in playbooks.items():
        (private / 'project' / name).write_text(text)
    (private / 'inventory' / 'hosts.yml').write_text(yaml.safe_dump({'all': {'hosts': {HOST: {
        'gitlab_token_rotation_gitlab_url': fleet.gitlabs[0].url,
        'gitlab_token_rotation_user': 'alice',
        'gitlab_token_rotation_verify_delay': 0,
        'mobb_scm_report_dir': str(tmp_path / 'reports')}}}}))
    return private


def launch(fleet, job, playbook):
    """Run a job as AWX would; the credentials' injectors give the only secrets."""
    environment = injected_environment({
        'GitLab token manager (mobb.scm)': {'gitlab_token': fleet.gitlabs[0].admin_token},
        'Mobb API key (mobb.scm)': {'mobb_api_url': fleet.mobb.graphql_url, 'mobb_api_key': fleet.api_key},
    })
    environment.update({
        'ANSIBLE_COLLECTIONS_PATH': COLLECTIONS,
        'PATH': os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'],
        'ANSIBLE_NOCOLOR': '1',
    })
    for gitlab in fleet.gitlabs:
        gitlab.clear_requests()
    fleet.mobb.clear_requests()
    # suppress_env_files: ansible-runner would otherwise keep a copy of the injected
    # environment in env/envvars (AWX deletes its private data dir after each job).
    result = ansible_runner.run(private_data_dir=str(job), playbook=playbook, envvars=environment, quiet=True,
                                suppress_env_files=True)
    stdout = result.stdout.read()
    secrets = fleet.secrets()
    assert not [secret for secret in secrets if secret in stdout], 'a secret appears in the job output'
    # ansible-runner itself records the command and environment it was given in
    # artifacts/<job id>/command, readable by its owner only; every other file must be clean.
    records = list(job.glob('artifacts/*/command'))
    assert records and all(record.stat().st_mode & 0o777 == 0o600 for record in records)
    leaked = [str(path) for path in job.rglob('*') if path.is_file() and path not in records
              and any(secret.encode() in path.read_bytes() for secret in secrets)]
    assert not leaked, f'files left behind hold secrets: {leaked}'
    return result, stdout


def artifacts(result):
    """What AWX stores as the job's artifacts: set_stats data from the stats event."""
    stats = [event for event in result.events if event['event'] == 'playbook_on_stats']
    return stats[-1]['event_data']['artifact_data']


def test_a_scheduled_job_creates_then_does_nothing_and_publishes_artifacts(fleet, job):
    first, stdout = launch(fleet, job, 'rotate.yml')
    assert (first.status, first.rc) == ('successful', 0), stdout[-3000:]
    result = artifacts(first)['gitlab_token_rotation'][HOST][LABEL]
    active = fleet.active()
    assert result['action'] == 'created' and result['token_id'] == active[0]['id']
    assert fleet.mobb_uses() == (True, active[0]['id'])
    assert 'GitLab tokens kept for Mobb - 1 token(s) on 1 host(s): created: 1' in stdout

    daily, stdout = launch(fleet, job, 'rotate.yml')
    assert (daily.status, daily.rc) == ('successful', 0), stdout[-3000:]
    assert artifacts(daily)['gitlab_token_rotation'][HOST][LABEL]['action'] == 'none'
    assert fleet.gitlab_writes() == [] and fleet.mobb.writes() == []
    assert daily.stats['changed'] == {}


def test_the_check_job_fails_when_a_token_is_about_to_expire(fleet, job, tmp_path):
    assert launch(fleet, job, 'rotate.yml')[0].rc == 0
    fleet.gitlabs[0].advance_clock(20)  # 10 days left: rotation waits, the check warns
    checked, stdout = launch(fleet, job, 'check.yml')
    assert checked.status == 'failed' and checked.rc == 2
    result = artifacts(checked)['gitlab_token_rotation'][HOST][LABEL]
    assert result['action'] == 'problem' and result['days_left'] == 10
    assert result['problems'] == [f'token {result["token_id"]} expires on {result["expires_at"]} (10 days left, threshold 14)']
    report = json.loads((tmp_path / 'reports' / 'gitlab-token-report.json').read_text())
    assert report['tokens'][0]['problems'] == result['problems']
    assert fleet.gitlab_writes() == [] and fleet.mobb.writes() == []
