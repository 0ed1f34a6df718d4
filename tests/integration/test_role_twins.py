"""Twin tokens (two kept tokens that feed one Mobb integration) and servers the inventory
cannot tell apart: refused before any request, by the role over the whole play; reported as
problems by mobb.scm.check. Every run is checked for leaks (rotation_fleet.Fleet.run)."""
from __future__ import annotations

import pytest
import yaml

from rotation_fleet import Fleet, results, token_env

PROJECT = {'token_type': 'project', 'project': 'team/app'}
# The one task per host: its result holds the host's records.
HOST_RESULT = 'mobb.scm.gitlab_token_rotation : Give this server its status, results and diff'


@pytest.fixture
def fleet(run_playbook, mobb, gitlab_hub, tmp_path):
    gitlabs = gitlab_hub.new_instances(2)
    yield Fleet(run_playbook, mobb, gitlabs, tmp_path, brokered=gitlabs)
    for instance in gitlabs:
        gitlab_hub.remove_instance(instance)


def write_inventory(fleet, tmp_path, hosts):
    """``hosts``: {name: (GitLab instance index, extra host variables)}; secrets as lookups."""
    def lookup(index):
        return f"{{{{ lookup('ansible.builtin.env', '{token_env(index)}') }}}}"

    document = {'fleet': {'hosts': {
        name: dict(gitlab_token_rotation_gitlab_url=fleet.gitlabs[index].url,
                   gitlab_token_rotation_gitlab_api_token=lookup(index), **extra)
        for name, (index, extra) in hosts.items()}, 'vars': {
        'gitlab_token_rotation_mobb_api_url': fleet.mobb.graphql_url,
        'gitlab_token_rotation_verify_delay': 0}}}
    path = tmp_path / f'fleet-{len(list(tmp_path.glob("fleet-*.yml")))}.yml'
    path.write_text(yaml.safe_dump(document))
    return path


def playbook(fleet, inventory, name, extra_vars=None, **options):
    return fleet.run([{'import_playbook': f'mobb.scm.{name}'}], args=['-i', str(inventory), '-f', '2'],
                     extra_vars=dict(extra_vars or {}, mobb_scm_hosts='fleet'), **options)


def kept(run):
    """{host: [the record of each token]}."""
    by_host = {}
    for entry in run.results:
        if entry['task'] == HOST_RESULT:
            by_host[entry['host']] = list(entry['result']['ansible_facts']['gitlab_token_rotation_results'])
    return by_host


def assert_nothing_written(fleet):
    assert fleet.gitlab_writes() == [] and fleet.mobb.writes() == []


def test_two_entries_for_one_integration_are_both_refused_before_any_request(fleet):
    run = fleet.run(fleet.role_play(gitlab_token_rotation_tokens=[{'user': 'alice'}, PROJECT]))
    assert run.rc == 2
    recorded = results(run)
    assert [record['outcome'] for record in recorded] == ['invalid_settings', 'invalid_settings']
    url = fleet.gitlabs[0].url
    for record in recorded:
        assert ('twin tokens: host localhost token personal:alice/mobb-broker and host localhost token '
                f'project:team/app/mobb-broker feed one Mobb integration, {url} (Mobb API '
                f'{fleet.mobb.graphql_url}, one API key)') in record['msg']
        assert record['msg'].endswith('Nothing was changed.')
    assert_nothing_written(fleet)
    assert fleet.gitlabs[0].requests() == [] and fleet.mobb.requests() == []


def test_two_hosts_with_one_gitlab_url_are_both_refused(fleet, tmp_path):
    inventory = write_inventory(fleet, tmp_path, {'a.example': (0, {'gitlab_token_rotation_user': 'alice'}),
                                                  'b.example': (0, {'gitlab_token_rotation_token_type': 'project',
                                                                    'gitlab_token_rotation_project': 'team/app'})})
    run = playbook(fleet, inventory, 'rotate')
    assert run.rc == 2
    for name, results_of_host in kept(run).items():
        assert [item['outcome'] for item in results_of_host] == ['invalid_settings'], name
        assert ('host a.example token personal:alice/mobb-broker and host b.example token '
                'project:team/app/mobb-broker feed one Mobb integration, %s' % fleet.gitlabs[0].url
                ) in results_of_host[0]['msg']
    assert sorted(kept(run)) == ['a.example', 'b.example']
    assert_nothing_written(fleet)


@pytest.mark.parametrize('apart', ['mobb_api_key', 'mobb_scm_url'])
def test_two_hosts_of_one_gitlab_url_that_feed_different_integrations_are_kept(fleet, tmp_path, apart):
    if apart == 'mobb_api_key':
        seeded = fleet.mobb.seed(organizations=[{'name': 'other'}],
                                 users=[{'email': 'admin@other.example', 'organization': 'other', 'role': 'Admin'}])
        env = {'MOBB_TEST_OTHER_KEY': seeded['users'][0]['api_key']}
        second = {'gitlab_token_rotation_mobb_api_key': "{{ lookup('ansible.builtin.env', 'MOBB_TEST_OTHER_KEY') }}"}
    else:
        env = {}
        second = {'gitlab_token_rotation_mobb_scm_url': fleet.gitlabs[0].url.replace('127.0.0.1', 'localhost')}
        assert second['gitlab_token_rotation_mobb_scm_url'] != fleet.gitlabs[0].url
    inventory = write_inventory(fleet, tmp_path, {
        'a.example': (0, {'gitlab_token_rotation_user': 'alice'}),
        'b.example': (0, dict(second, gitlab_token_rotation_token_type='project',
                              gitlab_token_rotation_project='team/app'))})
    run = playbook(fleet, inventory, 'rotate', check=True, env=env)
    assert run.rc == 0, run.output[-4000:]
    assert {name: [item['outcome'] for item in items] for name, items in kept(run).items()} == {
        'a.example': ['would_create'], 'b.example': ['would_create']}


def test_check_reports_twins_as_problems_of_each_twin(fleet, tmp_path):
    inventory = write_inventory(fleet, tmp_path, {'a.example': (0, {'gitlab_token_rotation_user': 'alice'}),
                                                  'b.example': (0, {'gitlab_token_rotation_user': 'alice',
                                                                    'gitlab_token_rotation_token_name': 'other'})})
    run = playbook(fleet, inventory, 'check', extra_vars={'mobb_scm_report_dir': str(tmp_path / 'reports')})
    assert run.rc == 2
    for name, items in kept(run).items():
        assert [item['outcome'] for item in items] == ['problem'], name
        assert items[0]['problems'][0].startswith(
            'twin tokens: host a.example token personal:alice/mobb-broker and host b.example token '
            'personal:alice/other feed one Mobb integration')
        # Read, not refused: the check still says what GitLab and Mobb hold.
        assert items[0]['connected'] is not None
    failed = sorted(entry['host'] for entry in run.results
                    if entry['status'] == 'failed' and entry['task'] == 'Fail the servers with problems')
    assert failed == ['a.example', 'b.example']
    assert_nothing_written(fleet)


def test_check_says_when_mobb_holds_the_token_of_another_mobb_scm_rotation(fleet, tmp_path):
    alice = write_inventory(fleet, tmp_path, {'a.example': (0, {'gitlab_token_rotation_user': 'alice'})})
    project = write_inventory(fleet, tmp_path, {'b.example': (0, {'gitlab_token_rotation_token_type': 'project',
                                                                  'gitlab_token_rotation_project': 'team/app'})})
    assert playbook(fleet, alice, 'rotate').rc == 0
    # Another inventory keeps another token for the same integration: Mobb now holds that one.
    assert playbook(fleet, project, 'rotate').rc == 0
    run = playbook(fleet, alice, 'check', extra_vars={'mobb_scm_report_dir': str(tmp_path / 'reports')})
    assert run.rc == 2
    [item] = kept(run)['a.example']
    assert item['mobb_token']['identity'] == 'other'
    assert any(problem.startswith('another mobb.scm rotation keeps token %s (' % item['mobb_token']['token_id'])
               and 'two managed tokens feed this integration' in problem for problem in item['problems'])
    assert_nothing_written(fleet)


def test_a_server_the_inventory_cannot_tell_apart_fails_with_its_problem_and_the_others_go_on(fleet, tmp_path):
    problem = ('mobb_integrations: %s has 2 GitLab Server integrations in Mobb that this inventory cannot tell '
               'apart' % fleet.gitlabs[1].url)
    inventory = write_inventory(fleet, tmp_path, {
        'a.example': (0, {'gitlab_token_rotation_user': 'alice'}),
        'b.example': (1, {'gitlab_token_rotation_user': 'alice', 'mobb_scm_inventory_problem': problem})})
    run = playbook(fleet, inventory, 'rotate')
    assert run.rc == 2
    outcomes = kept(run)
    assert [item['outcome'] for item in outcomes['a.example']] == ['created']
    [refused] = outcomes['b.example']
    assert refused['outcome'] == 'invalid_settings' and problem in refused['msg']
    assert fleet.gitlabs[1].requests() == []
    assert fleet.gitlab_writes(1) == [] and len(fleet.active(0)) == 1
