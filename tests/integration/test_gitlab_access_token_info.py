"""mobb.scm.gitlab_access_token_info against the local GitLab."""
from __future__ import annotations

import pytest

from gitlab_plays import GitLabPlays, call, failure, requests_between, snapshot, writes


@pytest.fixture
def plays(run_playbook, gitlab):
    return GitLabPlays(run_playbook, gitlab)


@pytest.fixture
def seeded(gitlab):
    tokens = gitlab.seed(
        users=[{'username': 'mobb-broker'}], projects=[{'path': 'acme/payments'}], groups=[{'path': 'acme'}],
        tokens=[
            {'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb', 'expires_in_days': 12,
             'description': 'Mobb broker'},
            {'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb', 'expires_in_days': -3},
            {'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb', 'revoked': True},
            {'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb-ci', 'expires_in_days': 0},
            {'kind': 'project', 'project': 'acme/payments', 'name': 'mobb', 'access_level': 30},
            {'kind': 'group', 'group': 'acme', 'name': 'other', 'access_level': 50},
        ])['tokens']
    return dict(zip(('active', 'expired', 'revoked', 'expires today', 'project', 'group'), tokens))


def ids(result):
    return [token['id'] for token in result['access_tokens']]


def test_lists_with_state_days_left_and_no_secret(plays, gitlab, seeded):
    run = plays.run([
        snapshot('start'),
        call('all', 'info', user='mobb-broker'),
        snapshot('listed'),
        call('active', 'info', user='mobb-broker', state='active'),
        call('inactive', 'info', user='mobb-broker', state='inactive'),
        call('named', 'info', user='mobb-broker', name='mobb'),
        call('nothing', 'info', user='mobb-broker', name='absent'),
        snapshot('end'),
    ], check=True)
    listing = run.task('all')
    assert listing['changed'] is False
    by_id = {token['id']: token for token in listing['access_tokens']}
    assert ids(listing) == sorted(by_id)
    assert [by_id[seeded[name]['id']]['state'] for name in ('active', 'expired', 'revoked', 'expires today')] == [
        'active', 'expired', 'revoked', 'expired']
    active = by_id[seeded['active']['id']]
    assert (active['days_left'], active['active'], active['revoked'], active['description']) == (
        12, True, False, 'Mobb broker')
    assert set(active) == {'id', 'name', 'description', 'scopes', 'user_id', 'created_at', 'last_used_at',
                           'expires_at', 'days_left', 'state', 'revoked', 'active'}
    assert by_id[seeded['expired']['id']]['days_left'] == -3
    assert ids(run.task('active')) == [seeded['active']['id']]
    assert ids(run.task('inactive')) == [seeded[name]['id'] for name in ('expired', 'revoked', 'expires today')]
    assert ids(run.task('named')) == [seeded[name]['id'] for name in ('active', 'expired', 'revoked')]
    assert run.task('nothing')['access_tokens'] == []
    assert len(requests_between(run, 'start', 'listed')) == 2
    assert writes(requests_between(run, 'start', 'end')) == []


def test_project_and_group_tokens_carry_their_role(plays, gitlab, seeded):
    run = plays.run([call('project', 'info', project='acme/payments'), call('group', 'info', group='acme')])
    project = run.task('project')['access_tokens']
    assert [(token['id'], token['access_level'], token['state']) for token in project] == [
        (seeded['project']['id'], 30, 'active')]
    assert [(token['id'], token['access_level']) for token in run.task('group')['access_tokens']] == [
        (seeded['group']['id'], 50)]


def test_without_an_owner_lists_the_api_tokens_own_tokens(plays, gitlab, seeded):
    run = plays.run([call('mine', 'info')])
    assert [token['name'] for token in run.task('mine')['access_tokens']] == ['admin']


def test_one_owner_at_a_time(plays, gitlab):
    run = plays.run([call('two owners', 'info', user='root', project='acme/payments')])
    assert failure(run, 'two owners') == 'parameters are mutually exclusive: user|project|group'
