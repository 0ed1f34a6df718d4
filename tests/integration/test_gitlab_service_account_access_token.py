"""mobb.scm.gitlab_service_account_access_token through ansible-playbook against the local GitLab.

A group service account's token is kept with the api_token of the group's Owner (alice, no
administrator); an instance service account's with the administrator's.
"""
from __future__ import annotations

import datetime

import pytest

from gitlab_plays import (GitLabPlays, advance_clock, call, failure, issue, public, requests_between, snapshot,
                          writes)

GROUP_BOT = dict(group='acme', service_account='mobb-bot', name='mobb-broker')
INSTANCE_BOT = dict(service_account='mobb-instance-bot', name='mobb-broker')
MODULE = 'service_account_token'


@pytest.fixture
def seeded(gitlab):
    """Group acme (alice is its Owner) with service account mobb-bot, and instance account mobb-instance-bot."""
    return gitlab.seed(
        users=[{'username': 'alice'}], groups=[{'path': 'acme'}, {'path': 'acme/platform'}],
        service_accounts=[{'username': 'mobb-bot', 'group': 'acme'}, {'username': 'mobb-instance-bot'}],
        members=[{'username': 'alice', 'group': 'acme', 'access_level': 50}],
        tokens=[{'kind': 'personal', 'user': 'alice', 'name': 'alice'}])


@pytest.fixture
def plays(run_playbook, gitlab, seeded):
    return GitLabPlays(run_playbook, gitlab)


def alice(seeded):
    return seeded['tokens'][0]['token']


def account_id(seeded, username):
    return next(account['id'] for account in seeded['service_accounts'] if account['username'] == username)


def in_days(gitlab, days):
    return (datetime.date.fromisoformat(gitlab.now()[:10]) + datetime.timedelta(days=days)).isoformat()


def calls(entries):
    return [(entry['method'], entry['path']) for entry in entries]


def test_group_owner_creates_a_working_token_and_a_rerun_changes_nothing(plays, gitlab, seeded):
    bot = account_id(seeded, 'mobb-bot')
    run = plays.run([
        snapshot('start'),
        *issue('create', MODULE, **GROUP_BOT, description='Mobb broker'),
        snapshot('created'),
        *issue('rerun', MODULE, **GROUP_BOT),
        snapshot('rerun done'),
    ], token=alice(seeded))
    created = public(run, 'create')
    assert (created['changed'], created['action'], created['user_id']) == (True, 'created', bot)
    assert created['scopes'] == ['api', 'read_user'] and created['expires_at'] == in_days(gitlab, 30)
    status, me = plays.whoami(plays.secret(created['token_sha256']))
    assert status == 200 and (me['id'], me['user_id']) == (created['token_id'], bot)
    assert plays.token(created['token_id'])['description'] == 'Mobb broker'
    tokens = f'/api/v4/groups/acme/service_accounts/{bot}/personal_access_tokens'
    assert calls(requests_between(run, 'start', 'created')) == [
        ('GET', '/api/v4/groups/acme/service_accounts'), ('GET', tokens), ('POST', tokens)]

    rerun = public(run, 'rerun')
    assert (rerun['changed'], rerun['action'], rerun['token_id'], rerun['token_sha256']) == (
        False, 'none', created['token_id'], None)
    noop = requests_between(run, 'created', 'rerun done')
    assert calls(noop) == [('GET', '/api/v4/groups/acme/service_accounts'), ('GET', tokens)]
    assert noop[1]['query'] == {'per_page': '100', 'search': 'mobb-broker', 'state': 'active'}


def test_administrator_keeps_an_instance_accounts_token(plays, gitlab, seeded):
    bot = account_id(seeded, 'mobb-instance-bot')
    run = plays.run([snapshot('start'), *issue('create', MODULE, **INSTANCE_BOT), snapshot('end')])
    created = public(run, 'create')
    assert (created['action'], created['user_id']) == ('created', bot)
    assert plays.whoami(plays.secret(created['token_sha256']))[1]['user_id'] == bot
    assert calls(requests_between(run, 'start', 'end')) == [
        ('GET', '/api/v4/service_accounts'), ('GET', f'/api/v4/users/{bot}'),
        ('GET', '/api/v4/personal_access_tokens'), ('POST', f'/api/v4/users/{bot}/personal_access_tokens')]


@pytest.mark.parametrize('bot, owner', [(GROUP_BOT, 'alice'), (INSTANCE_BOT, 'admin')], ids=['group', 'instance'])
def test_rotates_near_expiry_with_an_explicit_expiry(plays, gitlab, seeded, bot, owner):
    rotate = dict(bot, rotation_method='rotate', expires_in_days=30, rotate_before_days=7)
    run = plays.run([
        *issue('create', MODULE, **rotate),
        advance_clock(22),
        *issue('8 days left', MODULE, **rotate),
        advance_clock(1),
        snapshot('due'),
        *issue('7 days left', MODULE, **rotate),
        snapshot('rotated'),
    ], token=alice(seeded) if owner == 'alice' else None)
    created = public(run, '8 days left')
    assert (created['action'], created['days_left']) == ('none', 8)
    rotated = public(run, '7 days left')
    assert (rotated['action'], rotated['previous_token_id']) == ('rotated', created['token_id'])
    # GitLab would give a service account's token rotated without a date one week.
    assert rotated['expires_at'] == in_days(gitlab, 30) and rotated['days_left'] == 30
    assert plays.token(created['token_id'])['revoked'] is True
    assert plays.token(rotated['token_id'])['previous_id'] == created['token_id']
    assert [entry['path'].endswith(f'/{created["token_id"]}/rotate')
            for entry in writes(requests_between(run, 'due', 'rotated'))] == [True]
    assert plays.whoami(plays.secret(rotated['token_sha256']))[0] == 200


def test_check_mode_decides_the_same_and_writes_nothing_and_diff_shows_no_secret(plays, gitlab, seeded):
    due, doomed = gitlab.seed(tokens=[
        {'kind': 'personal', 'user': 'mobb-bot', 'name': 'mobb-broker', 'expires_in_days': 2},
        {'kind': 'personal', 'user': 'mobb-bot', 'name': 'doomed'},
    ])['tokens']
    before = plays.token_records()
    run = plays.run([
        snapshot('start'),
        *issue('create', MODULE, **{**GROUP_BOT, 'name': 'missing'}),
        *issue('rotate', MODULE, **GROUP_BOT, rotation_method='rotate'),
        call('revoke', MODULE, **{**GROUP_BOT, 'name': 'doomed'}, state='absent'),
        snapshot('end'),
    ], token=alice(seeded), check=True, diff=True)
    assert writes(requests_between(run, 'start', 'end')) == [] and plays.token_records() == before
    assert (public(run, 'create')['action'], public(run, 'create')['token_id']) == ('created', None)
    rotated = public(run, 'rotate')
    assert (rotated['action'], rotated['previous_token_id'], rotated['token_sha256']) == ('rotated', due['id'], None)
    assert rotated['diff'] == {
        'before': {'id': due['id'], 'expires_at': due['expires_at'], 'scopes': ['api', 'read_user'], 'active': True},
        'after': {'id': None, 'expires_at': in_days(gitlab, 30), 'scopes': ['api', 'read_user'], 'active': True}}
    revoke = run.task('revoke')
    assert (revoke['action'], revoke['revoked_token_ids']) == ('revoked', [doomed['id']])
    assert revoke['diff']['after']['active'] is False


def test_absent_counts_a_revoke_only_on_204_or_a_read_back(plays, gitlab, seeded):
    token = gitlab.seed(tokens=[{'kind': 'personal', 'user': 'mobb-bot', 'name': 'mobb-broker'}])['tokens'][0]
    gitlab.fault('html200', method='DELETE')
    run = plays.run([
        snapshot('start'),
        call('absent', MODULE, **GROUP_BOT, state='absent'),
        snapshot('end'),
        call('absent again', MODULE, **GROUP_BOT, state='absent'),
        call('absent once more', MODULE, **GROUP_BOT, state='absent'),
    ], token=alice(seeded))
    message = failure(run, 'absent')
    assert message.startswith(f"Could not revoke personal access token {token['id']} ('mobb-broker') of service "
                              "account 'mobb-bot' of group 'acme': it is STILL ACTIVE. GitLab answered HTTP 200 "
                              'with an HTML page')
    assert 'reading the token back shows it active' in message
    # The group's token API has no single GET: the read-back is the account's token list.
    tokens = f'/api/v4/groups/acme/service_accounts/{token["user_id"]}/personal_access_tokens'
    assert [(entry['method'], entry['path'], entry['fault']) for entry in requests_between(run, 'start', 'end')] == [
        ('GET', '/api/v4/groups/acme/service_accounts', None), ('GET', tokens, None),
        ('DELETE', f'{tokens}/{token["id"]}', 'html200'), ('GET', tokens, None)]
    again = run.task('absent again')
    assert (again['changed'], again['action'], again['revoked_token_ids']) == (True, 'revoked', [token['id']])
    assert plays.token(token['id'])['revoked'] is True
    assert run.task('absent once more')['action'] == 'none'


def test_self_rotate_needs_neither_owner_nor_administrator(plays, gitlab, seeded):
    own = gitlab.seed(tokens=[{'kind': 'personal', 'user': 'mobb-bot', 'name': 'mobb-broker',
                               'expires_in_days': 5}])['tokens'][0]
    run = plays.run([
        snapshot('start'),
        *issue('self rotate', MODULE, **GROUP_BOT, rotation_method='self_rotate', expires_in_days=60),
        snapshot('end'),
    ], token=own['token'])
    rotated = public(run, 'self rotate')
    assert (rotated['action'], rotated['previous_token_id']) == ('rotated', own['id'])
    assert rotated['user_id'] == own['user_id']
    assert rotated['expires_at'] == in_days(gitlab, 60)
    assert calls(requests_between(run, 'start', 'end')) == [
        ('GET', '/api/v4/personal_access_tokens/self'), ('GET', '/api/v4/user'),
        ('POST', '/api/v4/personal_access_tokens/self/rotate')]
    assert plays.whoami(own['token'])[0] == 401


def test_self_rotate_refuses_a_token_of_another_user(plays, gitlab, seeded):
    gitlab.seed(tokens=[{'kind': 'personal', 'user': 'alice', 'name': 'mobb-broker'}])
    other = gitlab.seed(tokens=[{'kind': 'personal', 'user': 'alice', 'name': 'mobb-broker'}])['tokens'][0]
    run = plays.run([snapshot('start'),
                     call('self rotate', MODULE, **GROUP_BOT, rotation_method='self_rotate', force=True),
                     snapshot('end')], token=other['token'])
    assert failure(run, 'self rotate') == (
        "rotation_method=self_rotate rotates the api_token itself, but api_token belongs to user 'alice', not to "
        "service account 'mobb-bot'")
    assert writes(requests_between(run, 'start', 'end')) == []


@pytest.mark.parametrize('args, token, expected, requests_made', [
    (INSTANCE_BOT, 'alice', 'Could not list the service accounts of the instance: GitLab answered 403: Forbidden. '
                            'Only administrators manage instance service accounts', True),
    (dict(GROUP_BOT, group='nope'), 'alice', "Could not list the service accounts of group 'nope': GitLab answered "
                                             '404: Group Not Found', True),
    (dict(GROUP_BOT, group='acme/platform'), 'alice', "group: service accounts belong to top-level groups, and "
                                                      "'acme/platform' is a subgroup: use 'acme'", False),
    (dict(GROUP_BOT, service_account='mobb-typo'), 'alice',
     "GitLab has no service account 'mobb-typo' in group 'acme' (or the api_token cannot see it): create it with "
     'mobb.scm.gitlab_service_account', True),
    (dict(INSTANCE_BOT, service_account='mobb-bot'), None,
     "service account 'mobb-bot' (id {bot}) belongs to group", True),
], ids=['non-admin on an instance account', 'unknown group', 'subgroup', 'unknown account', "a group's account"])
def test_bad_input_fails_clearly_and_writes_nothing(plays, gitlab, seeded, args, token, expected, requests_made):
    run = plays.run([snapshot('start'), call('bad', MODULE, **args), snapshot('end')],
                    token=alice(seeded) if token == 'alice' else None)
    message = failure(run, 'bad')
    assert message.startswith(expected.format(bot=account_id(seeded, 'mobb-bot'))), message
    made = requests_between(run, 'start', 'end')
    assert writes(made) == [] and bool(made) is requests_made
