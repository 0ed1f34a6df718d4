"""The fleet playbooks, mobb.scm.rotate and mobb.scm.check, against several local GitLab
instances (one reached through Mobb's broker) and Mobb, with an inventory where each host
is a GitLab server. Every run is checked for leaks, report files included."""
from __future__ import annotations

import json

import pytest
import yaml

from rotation_fleet import Fleet, host, token_env

TOKENS = [
    {'gitlab_token_rotation_user': 'alice'},
    {'gitlab_token_rotation_token_type': 'project', 'gitlab_token_rotation_project': 'team/app'},
    {'gitlab_token_rotation_token_type': 'group', 'gitlab_token_rotation_group': 'team'},
]
LABELS = ['personal:alice/mobb-broker', 'project:team/app/mobb-broker', 'group:team/mobb-broker']


@pytest.fixture
def fleet(run_playbook, mobb, gitlab_hub, tmp_path):
    gitlabs = gitlab_hub.new_instances(3)
    yield Fleet(run_playbook, mobb, gitlabs, tmp_path, brokered=[gitlabs[2]])
    for instance in gitlabs:
        gitlab_hub.remove_instance(instance)


@pytest.fixture
def inventory(fleet, tmp_path):
    """One host per GitLab server; secrets only as lookups of environment variables."""
    hosts = {}
    for index, gitlab in enumerate(fleet.gitlabs):
        hosts[f'gitlab{index}.example'] = dict(
            TOKENS[index], gitlab_token_rotation_gitlab_url=gitlab.url,
            gitlab_token_rotation_gitlab_api_token=f"{{{{ lookup('ansible.builtin.env', '{token_env(index)}') }}}}")
    document = {'fleet': {'hosts': hosts, 'vars': {
        'gitlab_token_rotation_mobb_api_url': fleet.mobb.graphql_url,
        'gitlab_token_rotation_verify_delay': 0}}}
    path = tmp_path / 'fleet.yml'
    path.write_text(yaml.safe_dump(document))
    return path


def playbook(fleet, inventory, name, **options):
    extra_vars = {'mobb_scm_hosts': 'fleet'}
    extra_vars.update(options.pop('extra_vars', {}))
    return fleet.run([{'import_playbook': f'mobb.scm.{name}'}], args=['-i', str(inventory), '-f', '3'],
                     extra_vars=extra_vars, **options)


def table(run):
    """The report's lines, as the report task printed them."""
    return run.task('mobb.scm.gitlab_token_rotation : Show the report')['msg']


def rows(run):
    return {line.split()[0]: line.split() for line in table(run)[2:] if not line.startswith('- ')}


def assert_each_server_ok(fleet):
    for index in range(3):
        active = fleet.active(index)
        assert len(active) == 1 and fleet.mobb_uses(index) == (True, active[0]['id'])


def test_rotate_keeps_a_fleet_fresh_and_a_daily_run_is_a_no_op(fleet, inventory):
    first = playbook(fleet, inventory, 'rotate')
    assert first.rc == 0, first.output[-4000:]
    lines = table(first)
    assert lines[0] == 'GitLab tokens kept for Mobb - 3 token(s) on 3 host(s): created: 3'
    assert lines[1].split() == ['Host', 'Token', 'Action', 'Token', 'id', 'Expires', 'Days', 'left', 'Next',
                                'rotation', 'Mobb']
    assert [row[1:3] for row in rows(first).values()] == [[label, 'created'] for label in LABELS]
    assert_each_server_ok(fleet)

    daily = playbook(fleet, inventory, 'rotate')
    assert daily.rc == 0, daily.output[-4000:]
    assert table(daily)[0].endswith('3 token(s) on 3 host(s): none: 3')
    assert fleet.gitlab_writes() == [] and fleet.mobb.writes() == []

    for gitlab in fleet.gitlabs:
        gitlab.advance_clock(24)
    rotated = playbook(fleet, inventory, 'rotate')
    assert rotated.rc == 0, rotated.output[-4000:]
    assert table(rotated)[0].endswith('rotated: 3')
    notes = table(rotated)[5:]
    assert len(notes) == 3 and all('days left, threshold 7)' in note for note in notes)
    assert_each_server_ok(fleet)


def test_rotate_in_check_mode_writes_nothing(fleet, inventory):
    run = playbook(fleet, inventory, 'rotate', check=True)
    assert run.rc == 0, run.output[-4000:]
    assert table(run)[0].endswith('would_create: 3')
    assert fleet.gitlab_writes() == [] and fleet.mobb.writes() == []


def test_rotate_reports_every_server_then_fails_those_that_failed(fleet, inventory):
    fleet.mobb.set_broker(host(fleet.gitlabs[2].url), False)
    run = playbook(fleet, inventory, 'rotate')
    assert run.rc == 2
    assert table(run)[0].endswith('created: 2, failed: 1')
    assert rows(run)['gitlab2.example'][2] == 'failed'
    failed = [entry for entry in run.results if entry['status'] == 'failed'
              and entry['task'] == 'mobb.scm.gitlab_token_rotation : Give this server its status, results and diff']
    assert [entry['host'] for entry in failed] == ['gitlab2.example']
    assert 'Rolled back: the new token is revoked: GitLab had no active token named mobb-broker' in failed[0]['result']['msg']
    assert fleet.active(2) == [] and fleet.config(2) is None


def test_check_reports_and_fails_on_expiry_within_the_window_or_disconnection(fleet, inventory, tmp_path):
    assert playbook(fleet, inventory, 'rotate').rc == 0
    reports = tmp_path / 'reports'
    healthy = playbook(fleet, inventory, 'check', extra_vars={'mobb_scm_report_dir': str(reports)})
    assert healthy.rc == 0, healthy.output[-4000:]
    assert table(healthy)[0] == 'GitLab token check - 3 token(s) on 3 host(s): ok: 3'
    assert fleet.gitlab_writes() == [] and fleet.mobb.writes() == []
    report = json.loads((reports / 'gitlab-token-report.json').read_text())
    assert report['summary'] == {'hosts': 3, 'tokens': 3, 'actions': {'ok': 3}, 'failed': 0,
                                 'with_problems': 0, 'changed': 0}
    assert [(t['host'], t['label'], t['days_left'], t['connected']) for t in report['tokens']] == [
        (f'gitlab{index}.example', LABELS[index], 30, True) for index in range(3)]
    markdown = (reports / 'gitlab-token-report.md').read_text()
    assert markdown.startswith('# GitLab token check\n')
    assert '| gitlab1.example | project:team/app/mobb-broker | ok |' in markdown

    # 12 days left: not yet rotated (threshold 7), but within the check's 14 days.
    for gitlab in fleet.gitlabs:
        gitlab.advance_clock(18)
    fleet.mobb.set_broker(host(fleet.gitlabs[2].url), False)
    failing = playbook(fleet, inventory, 'check', extra_vars={'mobb_scm_report_dir': str(reports)})
    assert failing.rc == 2
    assert rows(failing)['gitlab2.example'][-1] == 'DISCONNECTED'
    report = json.loads((reports / 'gitlab-token-report.json').read_text())
    assert report['summary']['with_problems'] == 3
    problems = {t['host']: t['problems'] for t in report['tokens']}
    assert problems['gitlab0.example'] == [
        f'token {fleet.active(0)[0]["id"]} expires on {fleet.active(0)[0]["expires_at"]} (12 days left, threshold 14)']
    assert problems['gitlab2.example'][1].startswith('Mobb cannot reach ' + fleet.gitlabs[2].url)
    failed = sorted(entry['host'] for entry in failing.results
                    if entry['status'] == 'failed' and entry['task'] == 'Fail the servers with problems')
    assert failed == ['gitlab0.example', 'gitlab1.example', 'gitlab2.example']
    assert '## Notes' in (reports / 'gitlab-token-report.md').read_text()
    assert fleet.gitlab_writes() == [] and fleet.mobb.writes() == []


def metric_samples(path):
    """{family: {(host, token): value}} of the metrics file, parsed as OpenMetrics."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    return {family.name: {(s.labels.get('host'), s.labels.get('token')): s.value for s in family.samples}
            for family in text_string_to_metric_families(path.read_text())}


def test_check_and_rotate_write_metrics_for_the_textfile_collector(fleet, inventory, tmp_path):
    metrics = tmp_path / 'textfile' / 'mobb_scm.prom'
    metrics.parent.mkdir()
    first = playbook(fleet, inventory, 'rotate', extra_vars={'mobb_scm_metrics_file': str(metrics)})
    assert first.rc == 0, first.output[-4000:]
    rotated = metric_samples(metrics)
    success = rotated['mobb_scm_last_success_timestamp_seconds'][(None, None)]

    for gitlab in fleet.gitlabs:
        gitlab.advance_clock(18)
    fleet.mobb.set_broker(host(fleet.gitlabs[2].url), False)
    check = playbook(fleet, inventory, 'check', extra_vars={'mobb_scm_metrics_file': str(metrics),
                                                            'mobb_scm_report_dir': str(tmp_path / 'reports')})
    assert check.rc == 2
    parsed = metric_samples(metrics)
    keys = [(f'gitlab{index}.example', LABELS[index]) for index in range(3)]
    assert parsed['mobb_scm_token_remaining_days'] == dict.fromkeys(keys, 12)
    expiry = parsed['mobb_scm_token_expiry_timestamp_seconds']
    assert set(expiry) == set(keys) and len(set(expiry.values())) == 1
    # 12 days left, threshold rotate_before_days 7: planned five days on, 7 days before the expiry.
    assert parsed['mobb_scm_token_next_rotation_timestamp_seconds'] == {
        key: expiry[key] - 7 * 86400 for key in keys}
    assert parsed['mobb_scm_connected'] == {keys[0]: 1, keys[1]: 1, keys[2]: 0}
    assert parsed['mobb_scm_holds_managed_token'] == dict.fromkeys(keys, 1)
    assert parsed['mobb_scm_token_failed'] == dict.fromkeys(keys, 0)
    assert set(parsed['mobb_scm_token_last_update_timestamp_seconds']) == set(keys)
    # A check that finds problems still ran to its end: it is a success of the run.
    assert parsed['mobb_scm_last_success_timestamp_seconds'][(None, None)] >= success
    text = metrics.read_text()
    assert text.endswith('# EOF\n')
    # No token id as a value or label, no partial file left behind (the leak check covers secrets).
    for token in fleet.active(0) + fleet.active(1) + fleet.active(2):
        assert f'"{token["id"]}"' not in text
    assert sorted(path.name for path in metrics.parent.iterdir()) == ['mobb_scm.prom']

    # A rotation that fails keeps the previous success time.
    before = parsed['mobb_scm_last_success_timestamp_seconds'][(None, None)]
    fleet.gitlabs[2].advance_clock(10)
    failed = playbook(fleet, inventory, 'rotate', extra_vars={'mobb_scm_metrics_file': str(metrics)})
    assert failed.rc == 2
    after = metric_samples(metrics)
    assert after['mobb_scm_token_failed'][keys[2]] == 1
    assert after['mobb_scm_last_success_timestamp_seconds'][(None, None)] == before
    assert secrets_absent(fleet, metrics.read_text())


def secrets_absent(fleet, text):
    secrets = list(fleet.mobb.secrets()) + [s for gitlab in fleet.gitlabs for s in gitlab.secrets()]
    assert secrets
    return not [secret for secret in secrets if secret in text]
