"""mobb.scm.gitlab_personal_access_token through ansible-playbook against the local GitLab."""
from __future__ import annotations

import datetime

import pytest

from gitlab_plays import (GitLabPlays, advance_clock, call, failure, issue, public, registered,
                          requests_between, sha256, snapshot, writes)

BROKER = dict(user='mobb-broker', name='mobb-broker')
# GitLab's rotate API, and create-then-revoke for a replacement (the default is create_new).
ROTATE = dict(BROKER, rotation_method='rotate')


@pytest.fixture
def plays(run_playbook, gitlab):
    gitlab.seed(users=[{'username': 'mobb-broker'}, {'username': 'alice'}])
    return GitLabPlays(run_playbook, gitlab)


def today(gitlab):
    return datetime.date.fromisoformat(gitlab.now()[:10])


def in_days(gitlab, days):
    return (today(gitlab) + datetime.timedelta(days=days)).isoformat()


def calls(entries):
    return [(entry['method'], entry['path']) for entry in entries]


def test_create_returns_a_working_token_and_a_rerun_changes_nothing(plays, gitlab):
    run = plays.run([
        snapshot('start'),
        *issue('create', 'personal', **BROKER, expires_in_days=30, description='Mobb broker'),
        snapshot('created'),
        *issue('rerun', 'personal', **BROKER, expires_in_days=30, description='Mobb broker'),
        snapshot('rerun done'),
    ])
    created = public(run, 'create')
    assert (created['changed'], created['action'], created['previous_token_id']) == (True, 'created', None)
    assert created['scopes'] == ['api', 'read_user']
    assert created['expires_at'] == in_days(gitlab, 30) and created['days_left'] == 30
    assert created['duplicate_token_ids'] == [] and created['previous_token_active'] is False
    status, me = plays.whoami(plays.secret(created['token_sha256']))
    assert status == 200
    assert (me['id'], me['user_id'], me['name']) == (created['token_id'], created['user_id'], 'mobb-broker')
    assert sorted(me['scopes']) == ['api', 'read_user'] and me['expires_at'] == created['expires_at']
    assert plays.token(created['token_id'])['description'] == 'Mobb broker'
    assert plays.token(created['token_id'])['username'] == 'mobb-broker'

    rerun = public(run, 'rerun')
    assert (rerun['changed'], rerun['action'], rerun['token_sha256']) == (False, 'none', None)
    assert rerun['token_id'] == created['token_id'] and rerun['days_left'] == 30

    assert calls(requests_between(run, 'start', 'created')) == [
        ('GET', '/api/v4/users'), ('GET', '/api/v4/personal_access_tokens'),
        ('POST', f'/api/v4/users/{created["user_id"]}/personal_access_tokens')]
    noop = requests_between(run, 'created', 'rerun done')
    assert len(noop) == 2 and writes(noop) == []
    assert noop[1]['query'] == {'per_page': '100', 'user_id': str(created['user_id']),
                                'search': 'mobb-broker', 'state': 'active'}


def test_default_user_is_the_api_tokens_user(plays, gitlab):
    run = plays.run([*issue('own token', 'personal', name='ops')])
    own = public(run, 'own token')
    assert own['action'] == 'created' and plays.token(own['token_id'])['username'] == 'root'


def test_rotation_starts_when_days_left_reach_rotate_before_days(plays, gitlab):
    run = plays.run([
        *issue('create', 'personal', **ROTATE, expires_in_days=30, rotate_before_days=7),
        advance_clock(22),
        *issue('8 days left', 'personal', **ROTATE, expires_in_days=30, rotate_before_days=7),
        advance_clock(1),
        snapshot('due'),
        *issue('7 days left', 'personal', **ROTATE, expires_in_days=30, rotate_before_days=7),
        snapshot('rotated'),
        *issue('after rotation', 'personal', **ROTATE, expires_in_days=30, rotate_before_days=7),
    ])
    created = public(run, 'create')
    not_yet = public(run, '8 days left')
    assert (not_yet['action'], not_yet['days_left'], not_yet['token_id']) == ('none', 8, created['token_id'])
    rotated = public(run, '7 days left')
    assert (rotated['changed'], rotated['action']) == (True, 'rotated')
    assert rotated['previous_token_id'] == created['token_id'] and rotated['previous_token_active'] is False
    assert rotated['token_id'] != created['token_id']
    assert rotated['expires_at'] == in_days(gitlab, 30) and rotated['days_left'] == 30
    old, new = plays.token(created['token_id']), plays.token(rotated['token_id'])
    assert old['revoked'] is True
    assert (new['previous_id'], new['name'], new['active']) == (created['token_id'], 'mobb-broker', True)
    assert plays.whoami(plays.secret(rotated['token_sha256']))[1]['id'] == rotated['token_id']
    assert calls(requests_between(run, 'due', 'rotated')) == [
        ('GET', '/api/v4/users'), ('GET', '/api/v4/personal_access_tokens'),
        ('POST', f'/api/v4/personal_access_tokens/{created["token_id"]}/rotate')]
    assert public(run, 'after rotation')['action'] == 'none'


def test_expired_and_revoked_tokens_are_replaced_by_new_ones(plays, gitlab):
    seeded = gitlab.seed(tokens=[
        {'kind': 'personal', 'user': 'mobb-broker', 'name': 'expired', 'expires_in_days': -1},
        {'kind': 'personal', 'user': 'mobb-broker', 'name': 'revoked', 'revoked': True},
        {'kind': 'personal', 'user': 'mobb-broker', 'name': 'expires today', 'expires_in_days': 0},
    ])['tokens']
    run = plays.run([
        *issue('after expiry', 'personal', user='mobb-broker', name='expired'),
        *issue('after revocation', 'personal', user='mobb-broker', name='revoked'),
        *issue('on the expiry day', 'personal', user='mobb-broker', name='expires today'),
    ])
    for title, old in zip(('after expiry', 'after revocation', 'on the expiry day'), seeded):
        result = public(run, title)
        assert (result['action'], result['previous_token_id']) == ('created', None), title
        assert result['token_id'] != old['id'] and plays.token(result['token_id'])['active'] is True


def test_scope_drift_is_replaced_create_then_revoke(plays, gitlab):
    old = gitlab.seed(tokens=[{'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb-broker',
                               'scopes': ['api'], 'expires_in_days': 200}])['tokens'][0]
    run = plays.run([snapshot('start'), *issue('drift', 'personal', **ROTATE), snapshot('end')])
    drift = public(run, 'drift')
    assert (drift['action'], drift['previous_token_id'], drift['previous_token_active']) == (
        'replaced', old['id'], False)
    assert drift['scopes'] == ['api', 'read_user'] and drift['expires_at'] == in_days(gitlab, 30)
    assert plays.token(old['id'])['revoked'] is True
    # The new token exists before the old one goes: no moment without a working token.
    assert calls(writes(requests_between(run, 'start', 'end'))) == [
        ('POST', f'/api/v4/users/{old["user_id"]}/personal_access_tokens'),
        ('DELETE', f'/api/v4/personal_access_tokens/{old["id"]}')]


def test_create_new_is_the_default_and_keeps_the_old_token_until_it_is_revoked_by_id(plays, gitlab):
    old = gitlab.seed(tokens=[{'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb-broker',
                               'expires_in_days': 3}])['tokens'][0]
    run = plays.run([
        snapshot('start'),
        *issue('create new', 'personal', **BROKER),
        snapshot('created'),
        call('revoke previous', 'personal', **BROKER, state='absent',
             token_id=f"{{{{ {registered('create new')}.previous_token_id }}}}"),
        call('revoke previous again', 'personal', **BROKER, state='absent',
             token_id=f"{{{{ {registered('create new')}.previous_token_id }}}}"),
    ])
    new = public(run, 'create new')
    assert (new['action'], new['previous_token_id'], new['previous_token_active']) == ('rotated', old['id'], True)
    assert plays.whoami(plays.secret(new['token_sha256']))[1]['id'] == new['token_id']
    assert calls(writes(requests_between(run, 'start', 'created'))) == [
        ('POST', f'/api/v4/users/{old["user_id"]}/personal_access_tokens')]
    revoked = run.task('revoke previous')
    assert (revoked['changed'], revoked['action'], revoked['revoked_token_ids']) == (True, 'revoked', [old['id']])
    assert plays.token(old['id'])['revoked'] is True and plays.token(new['token_id'])['active'] is True
    again = run.task('revoke previous again')
    assert (again['changed'], again['action'], again['revoked_token_ids']) == (False, 'none', [])


def test_create_new_replaces_drifted_scopes_and_keeps_the_old_token(plays, gitlab):
    old = gitlab.seed(tokens=[{'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb-broker',
                               'scopes': ['read_api']}])['tokens'][0]
    run = plays.run([*issue('create new', 'personal', **BROKER, rotation_method='create_new')])
    new = public(run, 'create new')
    assert (new['action'], new['previous_token_id'], new['previous_token_active']) == ('replaced', old['id'], True)
    assert plays.token(old['id'])['active'] is True


def test_self_rotate_needs_no_administrator(plays, gitlab):
    old = gitlab.seed(tokens=[{'kind': 'personal', 'user': 'alice', 'name': 'mobb-broker', 'scopes': ['api', 'read_user'],
                               'expires_in_days': 5}])['tokens'][0]
    run = plays.run([
        snapshot('start'),
        *issue('self rotate', 'personal', name='mobb-broker', rotation_method='self_rotate', expires_in_days=60),
        snapshot('end'),
    ], token=old['token'])
    rotated = public(run, 'self rotate')
    assert (rotated['action'], rotated['previous_token_id'], rotated['user_id']) == ('rotated', old['id'], old['user_id'])
    assert rotated['expires_at'] == in_days(gitlab, 60)
    assert calls(requests_between(run, 'start', 'end')) == [
        ('GET', '/api/v4/personal_access_tokens/self'), ('POST', '/api/v4/personal_access_tokens/self/rotate')]
    status, me = plays.whoami(plays.secret(rotated['token_sha256']))
    assert status == 200 and (me['id'], me['user_id']) == (rotated['token_id'], old['user_id'])
    assert plays.whoami(old['token'])[0] == 401


def test_self_rotate_no_op_costs_one_request(plays, gitlab):
    own = gitlab.seed(tokens=[{'kind': 'personal', 'user': 'alice', 'name': 'mobb-broker',
                               'expires_in_days': 60}])['tokens'][0]
    run = plays.run([snapshot('start'),
                     *issue('self rotate', 'personal', name='mobb-broker', rotation_method='self_rotate'),
                     snapshot('end')], token=own['token'])
    assert public(run, 'self rotate')['action'] == 'none'
    assert calls(requests_between(run, 'start', 'end')) == [('GET', '/api/v4/personal_access_tokens/self')]


def test_duplicates_act_on_the_newest_and_report_the_others(plays, gitlab):
    older, newer = gitlab.seed(tokens=[
        {'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb-broker', 'created_days_ago': 20, 'expires_in_days': 4},
        {'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb-broker', 'created_days_ago': 2, 'expires_in_days': 4},
    ])['tokens']
    run = plays.run([*issue('rotate newest', 'personal', **ROTATE)])
    result = public(run, 'rotate newest')
    assert (result['action'], result['previous_token_id'], result['duplicate_token_ids']) == (
        'rotated', newer['id'], [older['id']])
    assert f"besides the newest (id {newer['id']}), which this run manages: ids {older['id']}" in ' '.join(run.output.split())
    assert plays.token(older['id'])['active'] is True and plays.token(newer['id'])['revoked'] is True


def test_absent_revokes_every_active_token_with_the_name_and_nothing_else(plays, gitlab):
    first, second, other = gitlab.seed(tokens=[
        {'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb-broker', 'created_days_ago': 3},
        {'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb-broker'},
        {'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb-broker-2'},
    ])['tokens']
    run = plays.run([
        call('absent', 'personal', **BROKER, state='absent'),
        call('absent again', 'personal', **BROKER, state='absent'),
    ])
    absent = run.task('absent')
    assert (absent['changed'], absent['action'], absent['token_id']) == (True, 'revoked', second['id'])
    assert absent['revoked_token_ids'] == [second['id'], first['id']]
    assert 'token' not in absent
    assert plays.token(first['id'])['revoked'] and plays.token(second['id'])['revoked']
    assert plays.token(other['id'])['active'] is True
    assert (run.task('absent again')['changed'], run.task('absent again')['action']) == (False, 'none')


def test_token_id_of_another_name_is_never_revoked(plays, gitlab):
    other = gitlab.seed(tokens=[{'kind': 'personal', 'user': 'mobb-broker', 'name': 'ci'}])['tokens'][0]
    run = plays.run([call('absent', 'personal', **BROKER, state='absent', token_id=other['id'])])
    assert run.task('absent')['action'] == 'none' and plays.token(other['id'])['active'] is True


def test_check_mode_decides_the_same_and_writes_nothing(plays, gitlab):
    due, drifted, doomed = gitlab.seed(tokens=[
        {'kind': 'personal', 'user': 'mobb-broker', 'name': 'due', 'expires_in_days': 2},
        {'kind': 'personal', 'user': 'mobb-broker', 'name': 'drifted', 'scopes': ['read_api']},
        {'kind': 'personal', 'user': 'mobb-broker', 'name': 'doomed'},
    ])['tokens']
    before = plays.token_records()
    run = plays.run([
        snapshot('start'),
        *issue('create', 'personal', user='mobb-broker', name='missing'),
        *issue('rotate', 'personal', user='mobb-broker', name='due', rotation_method='rotate'),
        *issue('create new', 'personal', user='mobb-broker', name='due'),
        *issue('replace', 'personal', user='mobb-broker', name='drifted', rotation_method='rotate'),
        call('revoke', 'personal', user='mobb-broker', name='doomed', state='absent'),
        snapshot('end'),
    ], check=True)
    assert writes(requests_between(run, 'start', 'end')) == []
    assert plays.token_records() == before
    expected = {
        'create': ('created', None, None, False),
        'rotate': ('rotated', None, due['id'], False),
        'create new': ('rotated', None, due['id'], True),
        'replace': ('replaced', None, drifted['id'], False),
    }
    for title, (action, token_id, previous, previous_active) in expected.items():
        result = public(run, title)
        assert (result['action'], result['changed'], result['token_sha256']) == (action, True, None), title
        assert (result['token_id'], result['previous_token_id'], result['previous_token_active']) == (
            token_id, previous, previous_active), title
        assert result['expires_at'] == in_days(gitlab, 30), title
    assert public(run, 'create')['user_id'] == due['user_id']
    assert public(run, 'replace')['scopes'] == ['api', 'read_user']
    revoke = run.task('revoke')
    assert (revoke['action'], revoke['changed'], revoke['revoked_token_ids']) == ('revoked', True, [doomed['id']])


def test_diff_shows_ids_expiry_scopes_and_state_never_a_secret(plays, gitlab):
    due = gitlab.seed(tokens=[{'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb-broker',
                               'expires_in_days': 2}])['tokens'][0]
    before = {'id': due['id'], 'expires_at': due['expires_at'], 'scopes': ['api', 'read_user'], 'active': True}
    preview = plays.run([call('preview', 'personal', **BROKER),
                         call('preview revoke', 'personal', **BROKER, state='absent')], check=True, diff=True)
    assert preview.task('preview')['diff'] == {
        'before': before,
        'after': {'id': None, 'expires_at': in_days(gitlab, 30), 'scopes': ['api', 'read_user'], 'active': True}}
    assert preview.task('preview revoke')['diff'] == {'before': before, 'after': dict(before, active=False)}
    # The default callback prints the diff as a unified diff of the two views.
    assert '--- before' in preview.output and '+++ after' in preview.output
    assert f'-    "expires_at": "{due["expires_at"]}"' in preview.output
    assert f'+    "expires_at": "{in_days(gitlab, 30)}"' in preview.output

    run = plays.run([*issue('rotate', 'personal', **BROKER)], diff=True)
    rotated = public(run, 'rotate')
    assert rotated['diff'] == {'before': before, 'after': {
        'id': rotated['token_id'], 'expires_at': in_days(gitlab, 30), 'scopes': ['api', 'read_user'],
        'active': True}}


def test_a_task_that_issues_a_token_without_no_log_is_warned(plays, gitlab):
    # At verbosity 0 Ansible prints no task result, so the token stays out of the output
    # even here; with -v it would be printed, which is what the warning is about.
    run = plays.run([call('no no_log', 'personal', **BROKER)], verbosity=0)
    result = run.task('no no_log')
    assert result['action'] == 'created' and plays.secret(sha256(result['token']))
    assert ('This result holds the new token and the task does not set no_log: true, so Ansible may '
            'print it; set no_log on the task.') in ' '.join(run.output.split())


def test_the_exact_name_is_found_past_the_first_page_of_search_results(plays, gitlab):
    gitlab.seed(tokens=[{'kind': 'personal', 'user': 'mobb-broker', 'name': f'mobb-broker-{index}'}
                        for index in range(120)])
    wanted = gitlab.seed(tokens=[{'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb-broker',
                                  'expires_in_days': 60}])['tokens'][0]
    run = plays.run([snapshot('start'), *issue('no change', 'personal', **BROKER), snapshot('end')])
    result = public(run, 'no change')
    assert (result['action'], result['token_id'], result['duplicate_token_ids']) == ('none', wanted['id'], [])
    pages = [entry['query'].get('page', '1') for entry in requests_between(run, 'start', 'end')
             if entry['path'] == '/api/v4/personal_access_tokens']
    assert pages == ['1', '2']


def test_when_the_old_token_cannot_be_revoked_the_new_one_is_still_returned(plays, gitlab):
    old = gitlab.seed(tokens=[{'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb-broker',
                               'scopes': ['api']}])['tokens'][0]
    gitlab.fault('status', count=2, method='DELETE', path='/personal_access_tokens/', status=503)
    run = plays.run([*issue('replace', 'personal', **ROTATE)], defaults={'retries': 1})
    replaced = public(run, 'replace')
    assert (replaced['action'], replaced['previous_token_id'], replaced['previous_token_active']) == (
        'replaced', old['id'], True)
    assert plays.whoami(plays.secret(replaced['token_sha256']))[0] == 200
    assert plays.token(old['id'])['active'] is True
    assert replaced['warnings'] == [
        f"The new token was issued but the old one is still active: Could not revoke personal access token "
        f"{old['id']} ('mobb-broker') of user 'mobb-broker': GitLab answered 503: Service Unavailable. GitLab "
        'still failed after 1 retries: try again later']


def test_a_revoke_answered_by_a_proxy_page_fails_and_names_the_token_still_active(plays, gitlab):
    older, newer = gitlab.seed(tokens=[
        {'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb-broker', 'created_days_ago': 3},
        {'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb-broker'},
    ])['tokens']
    # The newest goes first and is revoked; the answer to the older one's DELETE is a proxy's page.
    gitlab.fault('html200', method='DELETE', path=f'/personal_access_tokens/{older["id"]}$')
    run = plays.run([call('absent', 'personal', **BROKER, state='absent'),
                     call('absent again', 'personal', **BROKER, state='absent')])
    message = failure(run, 'absent')
    assert message == (
        f"Revoked token(s) {newer['id']}, then: Could not revoke personal access token {older['id']} "
        "('mobb-broker') of user 'mobb-broker': it is STILL ACTIVE. GitLab answered HTTP 200 with an HTML page "
        'titled "502 Bad Gateway", not 204 No Content, and reading the token back shows it active. Check that '
        "api_url is GitLab's own address and that no proxy or login page answers in its place, then revoke it "
        f"again (state=absent, token_id={older['id']})")
    assert plays.token(newer['id'])['revoked'] is True
    # The first run left it active; the second, without the proxy page, revokes it.
    again = run.task('absent again')
    assert (again['action'], again['revoked_token_ids']) == ('revoked', [older['id']])
    assert plays.token(older['id'])['revoked'] is True


def test_a_single_revoke_answered_by_a_proxy_page_fails_and_leaves_the_token_active(plays, gitlab):
    token = gitlab.seed(tokens=[{'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb-broker'}])['tokens'][0]
    gitlab.fault('html200', method='DELETE')
    run = plays.run([snapshot('start'), call('absent', 'personal', **BROKER, state='absent',
                                             token_id=token['id']), snapshot('end')])
    message = failure(run, 'absent')
    assert message.startswith(f"Could not revoke personal access token {token['id']} ('mobb-broker') of user "
                              "'mobb-broker': it is STILL ACTIVE. GitLab answered HTTP 200 with an HTML page")
    assert plays.token(token['id'])['active'] is True
    status, me = plays.whoami(token['token'])
    assert (status, me['id']) == (200, token['id'])
    assert [(entry['method'], entry['fault']) for entry in requests_between(run, 'start', 'end')] == [
        ('GET', None), ('GET', None), ('DELETE', 'html200'), ('GET', None)]


def test_a_replacement_whose_revoke_gets_a_proxy_page_returns_the_new_token_and_the_old_one_active(plays, gitlab):
    old = gitlab.seed(tokens=[{'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb-broker',
                               'scopes': ['api']}])['tokens'][0]
    gitlab.fault('html200', method='DELETE')
    run = plays.run([*issue('replace', 'personal', **ROTATE)])
    replaced = public(run, 'replace')
    assert (replaced['action'], replaced['previous_token_id'], replaced['previous_token_active']) == (
        'replaced', old['id'], True)
    assert plays.whoami(plays.secret(replaced['token_sha256']))[0] == 200
    assert plays.token(old['id'])['active'] is True and plays.whoami(old['token'])[0] == 200
    assert replaced['warnings'] == [
        f"The new token was issued but the old one is still active: Could not revoke personal access token "
        f"{old['id']} ('mobb-broker') of user 'mobb-broker': it is STILL ACTIVE. GitLab answered HTTP 200 with an "
        'HTML page titled "502 Bad Gateway", not 204 No Content, and reading the token back shows it active. '
        "Check that api_url is GitLab's own address and that no proxy or login page answers in its place, then "
        f"revoke it again (state=absent, token_id={old['id']})"]
