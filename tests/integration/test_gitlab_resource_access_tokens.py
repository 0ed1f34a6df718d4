"""mobb.scm.gitlab_project_access_token and gitlab_group_access_token against the local GitLab.

The two modules share everything but the owner, so every test runs for both.
"""
from __future__ import annotations

import datetime

import pytest

from gitlab_plays import (GitLabPlays, advance_clock, call, failure, issue, public, requests_between,
                          snapshot, writes)

PATHS = {'project': 'acme/payments', 'group': 'acme'}
ENCODED = {'project': 'acme%2Fpayments', 'group': 'acme'}


@pytest.fixture(params=['project', 'group'])
def kind(request):
    return request.param


@pytest.fixture
def plays(run_playbook, gitlab):
    gitlab.seed(users=[{'username': 'maintainer'}], groups=[{'path': 'acme'}],
                projects=[{'path': 'acme/payments'}],
                members=[{'username': 'maintainer', 'project': 'acme/payments', 'access_level': 40},
                         {'username': 'maintainer', 'group': 'acme', 'access_level': 50}])
    return GitLabPlays(run_playbook, gitlab)


def owner(kind, **args):
    return dict({kind: PATHS[kind], 'name': 'mobb'}, **args)


def in_days(gitlab, days):
    return (datetime.date.fromisoformat(gitlab.now()[:10]) + datetime.timedelta(days=days)).isoformat()


def resource_id(gitlab, kind):
    return next(record for record in gitlab.tokens() if record['kind'] == kind)['resource_id']


def test_create_rerun_and_rotation_keep_the_bot_user_and_role(plays, gitlab, kind):
    base = f'/api/v4/{kind}s/{ENCODED[kind]}/access_tokens'
    run = plays.run([
        snapshot('start'),
        *issue('create', kind, **owner(kind, expires_in_days=90, rotate_before_days=14)),
        snapshot('created'),
        *issue('rerun', kind, **owner(kind, expires_in_days=90, rotate_before_days=14)),
        snapshot('rerun done'),
        advance_clock(77),
        *issue('rotate', kind, **owner(kind, expires_in_days=90, rotate_before_days=14, rotation_method='rotate')),
        snapshot('rotated'),
    ])
    created = public(run, 'create')
    assert (created['action'], created['access_level'], created['scopes']) == ('created', 30, ['api'])
    assert created[f'{kind}_id'] == resource_id(gitlab, kind) and created['user_id'] is not None
    assert [(entry['method'], entry['path']) for entry in requests_between(run, 'start', 'created')] == [
        ('GET', base), ('POST', base)]

    rerun = public(run, 'rerun')
    assert (rerun['action'], rerun['changed'], rerun['token_sha256']) == ('none', False, None)
    noop = requests_between(run, 'created', 'rerun done')
    assert [(entry['method'], entry['path']) for entry in noop] == [('GET', base)]

    rotated = public(run, 'rotate')
    assert (rotated['action'], rotated['previous_token_id']) == ('rotated', created['token_id'])
    assert (rotated['user_id'], rotated['access_level']) == (created['user_id'], 30)
    assert rotated['expires_at'] == in_days(gitlab, 90)
    assert [(entry['method'], entry['path']) for entry in requests_between(run, 'rerun done', 'rotated')] == [
        ('GET', base), ('POST', f'{base}/{created["token_id"]}/rotate')]
    assert plays.token(created['token_id'])['revoked'] is True
    assert plays.whoami(plays.secret(created['token_sha256']))[0] == 401
    status, me = plays.whoami(plays.secret(rotated['token_sha256']))
    assert status == 200 and (me['id'], me['user_id']) == (rotated['token_id'], created['user_id'])


def test_role_drift_is_replaced_and_role_names_in_any_case_or_numbers_all_work(plays, gitlab, kind):
    old = gitlab.seed(tokens=[{'kind': kind, kind: PATHS[kind], 'name': 'mobb', 'access_level': 30}])['tokens'][0]
    run = plays.run([
        *issue('same role by number', kind, **owner(kind, access_level=30)),
        *issue('same role by name', kind, **owner(kind, access_level='Developer')),
        *issue('maintainer', kind, **owner(kind, access_level='MAINTAINER', rotation_method='rotate')),
    ])
    assert public(run, 'same role by number')['action'] == 'none'
    assert public(run, 'same role by name')['action'] == 'none'
    replaced = public(run, 'maintainer')
    assert (replaced['action'], replaced['previous_token_id'], replaced['access_level']) == ('replaced', old['id'], 40)
    assert replaced['user_id'] != old['user_id']
    assert plays.token(old['id'])['revoked'] is True
    assert plays.token(replaced['token_id'])['access_level'] == 40


def test_scope_drift_with_the_default_create_new_keeps_the_old_token(plays, gitlab, kind):
    old = gitlab.seed(tokens=[{'kind': kind, kind: PATHS[kind], 'name': 'mobb', 'scopes': ['read_api'],
                               'access_level': 30}])['tokens'][0]
    run = plays.run([*issue('create new', kind, **owner(kind))])
    new = public(run, 'create new')
    assert (new['action'], new['previous_token_id'], new['previous_token_active']) == ('replaced', old['id'], True)
    assert plays.token(old['id'])['active'] is True and new['scopes'] == ['api']


def test_a_maintainer_or_owner_manages_tokens_without_an_administrator(plays, gitlab, kind):
    member = gitlab.seed(tokens=[{'kind': 'personal', 'user': 'maintainer', 'name': 'automation',
                                  'scopes': ['api']}])['tokens'][0]
    run = plays.run([*issue('create', kind, **owner(kind)), call('revoke', kind, **owner(kind, state='absent'))],
                    token=member['token'])
    assert public(run, 'create')['action'] == 'created'
    assert run.task('revoke')['action'] == 'revoked'


def test_a_token_rotates_itself(plays, gitlab, kind):
    own = gitlab.seed(tokens=[{'kind': kind, kind: PATHS[kind], 'name': 'mobb', 'access_level': 30,
                               'expires_in_days': 3}])['tokens'][0]
    run = plays.run([
        snapshot('start'),
        *issue('self rotate', kind, **owner(kind, rotation_method='self_rotate')),
        snapshot('end'),
    ], token=own['token'])
    rotated = public(run, 'self rotate')
    assert (rotated['action'], rotated['previous_token_id'], rotated['user_id']) == ('rotated', own['id'], own['user_id'])
    assert rotated['access_level'] == 30
    assert [(entry['method'], entry['path']) for entry in requests_between(run, 'start', 'end')] == [
        ('GET', '/api/v4/personal_access_tokens/self'),
        ('POST', f'/api/v4/{kind}s/{ENCODED[kind]}/access_tokens/self/rotate')]
    assert plays.whoami(own['token'])[0] == 401
    assert plays.whoami(plays.secret(rotated['token_sha256']))[1]['id'] == rotated['token_id']


def test_numeric_id_addresses_the_same_tokens(plays, gitlab, kind):
    seeded = gitlab.seed(tokens=[{'kind': kind, kind: PATHS[kind], 'name': 'mobb', 'access_level': 30}])['tokens'][0]
    numeric = str(resource_id(gitlab, kind))
    run = plays.run([*issue('by id', kind, **dict(owner(kind), **{kind: numeric}))])
    result = public(run, 'by id')
    assert (result['action'], result['token_id'], result[f'{kind}_id']) == ('none', seeded['id'], int(numeric))


def test_check_mode_and_absent(plays, gitlab, kind):
    seeded = gitlab.seed(tokens=[{'kind': kind, kind: PATHS[kind], 'name': 'mobb', 'access_level': 30,
                                  'expires_in_days': 2}])['tokens'][0]
    before = plays.token_records()
    preview = plays.run([
        snapshot('start'),
        *issue('rotate', kind, **owner(kind, rotation_method='rotate')),
        *issue('replace', kind, **owner(kind, access_level='reporter', rotation_method='rotate')),
        call('revoke', kind, **owner(kind, state='absent')),
        snapshot('end'),
    ], check=True, diff=True)
    assert writes(requests_between(preview, 'start', 'end')) == [] and plays.token_records() == before
    rotate = public(preview, 'rotate')
    assert (rotate['action'], rotate['token_id'], rotate['access_level'], rotate['user_id']) == (
        'rotated', None, 30, seeded['user_id'])
    replace = public(preview, 'replace')
    assert (replace['action'], replace['access_level'], replace['user_id']) == ('replaced', 20, None)
    assert replace['diff']['before']['access_level'] == 30 and replace['diff']['after']['access_level'] == 20
    assert preview.task('revoke')['revoked_token_ids'] == [seeded['id']]

    run = plays.run([call('revoke', kind, **owner(kind, state='absent')),
                     call('revoke again', kind, **owner(kind, state='absent'))])
    assert run.task('revoke')['action'] == 'revoked' and plays.token(seeded['id'])['revoked'] is True
    assert run.task('revoke again')['action'] == 'none'


def test_a_revoke_answered_by_a_proxy_page_fails_and_the_token_stays_active(plays, gitlab, kind):
    seeded = gitlab.seed(tokens=[{'kind': kind, kind: PATHS[kind], 'name': 'mobb', 'access_level': 30}])['tokens'][0]
    gitlab.fault('html200', method='DELETE')
    run = plays.run([snapshot('start'), call('revoke', kind, **owner(kind, state='absent')), snapshot('end')])
    assert failure(run, 'revoke').startswith(
        f"Could not revoke {kind} access token {seeded['id']} ('mobb') of {kind} '{PATHS[kind]}': it is STILL "
        'ACTIVE. GitLab answered HTTP 200 with an HTML page titled "502 Bad Gateway", not 204 No Content, and '
        'reading the token back shows it active.')
    assert plays.token(seeded['id'])['active'] is True and plays.whoami(seeded['token'])[0] == 200
    path = f'/api/v4/{kind}s/{ENCODED[kind]}/access_tokens/{seeded["id"]}'
    assert [(entry['method'], entry['path'], entry['fault']) for entry in requests_between(run, 'start', 'end')][1:] == [
        ('DELETE', path, 'html200'), ('GET', path, None)]
