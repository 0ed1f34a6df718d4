"""The gitlab_token_rotation role keeping a group service account's token, through ansible-playbook.

The role runs with the token of alice, Owner of the top-level group team and no
administrator, with the instance setting that lets a group's Owner create its service
accounts. Every run is checked for leaks (rotation_fleet.Fleet.run).
"""
from __future__ import annotations

import pytest

from rotation_fleet import Fleet, results

ALICE_TOKEN = 'MOBB_TEST_ALICE_TOKEN'
SERVICE_ACCOUNT = {
    'gitlab_token_rotation_gitlab_api_token': f"{{{{ lookup('ansible.builtin.env', '{ALICE_TOKEN}') }}}}",
    'gitlab_token_rotation_token_type': 'service_account',
    'gitlab_token_rotation_group': 'team',
    'gitlab_token_rotation_service_account': 'mobb-bot',
    'gitlab_token_rotation_service_account_memberships': [{'project': 'team/app', 'access_level': 'developer'}],
}
CREATE = dict(SERVICE_ACCOUNT, gitlab_token_rotation_service_account_create=True,
              gitlab_token_rotation_service_account_name='Mobb')


@pytest.fixture
def fleet(run_playbook, mobb, gitlab, tmp_path):
    fleet = Fleet(run_playbook, mobb, [gitlab], tmp_path)
    gitlab.settings(allow_top_level_group_owners_to_create_service_accounts=True)
    fleet.alice = gitlab.seed(tokens=[{'kind': 'personal', 'user': 'alice', 'name': 'ops'}])['tokens'][0]
    return fleet


def run_role(fleet, role_vars, **options):
    return fleet.run(fleet.role_play(**role_vars), env={ALICE_TOKEN: fleet.alice['token']}, **options)


def only(run):
    recorded = results(run)
    assert recorded is not None and len(recorded) == 1, recorded
    return recorded[0]


def service_accounts(fleet):
    return [user for user in fleet.gitlabs[0].users() if user['user_type'] == 'service_account']


def test_a_group_service_account_is_created_stored_kept_and_rotated(fleet):
    first = run_role(fleet, CREATE)
    assert first.rc == 0, first.output[-3000:]
    result = only(first)
    account = service_accounts(fleet)[0]
    assert (result['action'], result['label']) == ('created', 'service_account:team/mobb-bot/mobb-broker')
    assert result['service_account'] == {
        'username': 'mobb-bot', 'group': 'team', 'id': account['id'], 'created': True,
        'memberships_added': [{'project': 'team/app', 'access_level': 30, 'previous_access_level': None}]}
    assert (account['username'], account['name']) == ('mobb-bot', 'Mobb')
    assert [(m['source_path'], m['access_level']) for m in fleet.gitlabs[0].members()
            if m['user_id'] == account['id']] == [('team/app', 30)]
    token = fleet.active()[0]
    assert token['user_id'] == account['id'] and sorted(token['scopes']) == ['api', 'read_user']
    assert fleet.mobb_uses() == (True, token['id'])
    assert [entry['operation'] for entry in fleet.mobb.writes()] == ['updateScmToken']

    again = run_role(fleet, CREATE)
    assert again.rc == 0, again.output[-3000:]
    assert (only(again)['action'], only(again)['token_id']) == ('none', token['id'])
    assert fleet.gitlab_writes() == [] and fleet.mobb.writes() == []
    # The no-op: the group's accounts, the account's tokens; no membership read.
    assert [entry['path'] for entry in fleet.gitlabs[0].requests() if entry['token_id'] == fleet.alice['id']] == [
        '/api/v4/groups/team/service_accounts',
        f'/api/v4/groups/team/service_accounts/{account["id"]}/personal_access_tokens']

    fleet.gitlabs[0].advance_clock(23)
    rotated = run_role(fleet, CREATE)
    assert rotated.rc == 0, rotated.output[-3000:]
    result = only(rotated)
    assert result['action'] == 'rotated' and result['revoked_token_ids'] == [token['id']]
    assert result['days_left'] == 30 and result['service_account']['created'] is False
    new = fleet.active()[0]
    assert len(fleet.active()) == 1 and new['id'] != token['id'] and new['user_id'] == account['id']
    assert fleet.mobb_uses() == (True, new['id'])


def test_a_token_entry_takes_the_service_account_keys_and_check_mode_predicts_the_account(fleet):
    entry = {'token_type': 'service_account', 'group': 'team', 'service_account': 'mobb-bot',
             'service_account_memberships': [{'project': 'team/app'}], 'service_account_create': True,
             'gitlab_api_token': SERVICE_ACCOUNT['gitlab_token_rotation_gitlab_api_token']}
    run = run_role(fleet, {'gitlab_token_rotation_tokens': [entry]}, check=True)
    assert run.rc == 0, run.output[-3000:]
    result = only(run)
    assert result['action'] == 'would_create' and result['service_account']['created'] is True
    assert result['service_account']['memberships_added'] == [
        {'project': 'team/app', 'access_level': 30, 'previous_access_level': None}]
    assert fleet.gitlab_writes() == [] and fleet.mobb.writes() == [] and service_accounts(fleet) == []


def test_a_missing_membership_fails_the_role_before_any_write(fleet):
    fleet.gitlabs[0].seed(service_accounts=[{'username': 'mobb-bot', 'group': 'team'}])
    run = run_role(fleet, SERVICE_ACCOUNT)
    assert run.rc != 0
    result = only(run)
    assert result['outcome'] == 'membership_missing'
    assert ("service account 'mobb-bot' of group 'team' lacks the developer role in project 'team/app' "
            '(not a member)') in result['msg']
    assert 'gitlab_token_rotation_service_account_create' in result['msg']
    assert fleet.gitlab_writes() == [] and fleet.mobb.writes() == [] and fleet.active() == []


def test_a_subgroup_fails_the_role_before_any_request(fleet):
    run = run_role(fleet, dict(SERVICE_ACCOUNT, gitlab_token_rotation_group='team/app-group'))
    assert run.rc != 0
    assert only(run)['outcome'] == 'invalid_settings'
    assert "'team/app-group' is a subgroup: use 'team'" in only(run)['msg']
    assert fleet.gitlabs[0].requests() == [] and fleet.mobb.requests() == []


@pytest.mark.parametrize('memberships, named, check', [
    ([{'project': 'team/nope'}], "project 'team/nope'", False),
    ([{'group': 'gone'}], "group 'gone'", True),
    ([{'project': 'team/app'}, {'project': 'team/nope'}, {'group': 'team'}], "project 'team/nope'", False),
    ([{'project': 'team/app'}, {'project': 'team/nope'}, {'group': 'team'}], "project 'team/nope'", True),
], ids=['unknown project', 'unknown group in check mode', 'one unknown among two good',
        'one unknown among two good in check mode'])
def test_an_unknown_membership_target_fails_the_role_before_the_account_is_created(fleet, memberships, named, check):
    run = run_role(fleet, dict(CREATE, gitlab_token_rotation_service_account_memberships=memberships), check=check)
    assert run.rc != 0
    result = only(run)
    assert (result['outcome'], result['action'], result['changed']) == ('target_missing', 'failed', False)
    assert (f'service_account_memberships: {named} not found or not visible to the token: check the full path (or id) '
            'of each') in result['msg']
    assert 'gitlab_token_rotation_service_account_memberships' in result['msg']
    assert result['service_account']['created'] is False and result['service_account']['memberships_added'] == []
    assert fleet.gitlab_writes() == [] and fleet.mobb.writes() == [] and service_accounts(fleet) == []
