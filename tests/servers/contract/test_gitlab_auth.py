"""Authentication: where tokens go, expiry-day semantics, revocation, scopes, reuse detection, clock."""
from __future__ import annotations

import email.utils

import gitlab as python_gitlab
import pytest

EXPIRED = {'error': 'invalid_token',
           'error_description': 'Token is expired. You can either do re-authorization or token refresh.'}
REVOKED = {'error': 'invalid_token',
           'error_description': 'Token was revoked. You have to re-authorize from the user.'}
SCOPE_DESCRIPTION = 'The request requires higher privileges than provided by the access token.'


def seed_pat(instance, **token):
    token.setdefault('kind', 'personal')
    token.setdefault('user', 'root')
    token.setdefault('name', 'probe')
    return instance.seed(tokens=[token])['tokens'][0]


def test_the_three_ways_to_present_a_token(gl_team):
    secret = gl_team.secrets['bob']
    for kwargs in ({'headers': {'PRIVATE-TOKEN': secret}}, {'params': {'private_token': secret}},
                   {'headers': {'Authorization': f'Bearer {secret}'}}):
        response = gl_team.raw('GET', '/user', **kwargs)
        assert response.status_code == 200 and response.json()['username'] == 'bob'


def test_the_token_never_reaches_the_request_log(gl_team):
    gl_team.raw('GET', '/user', params={'private_token': gl_team.secrets['bob'], 'x': '1'})
    entry = gl_team.instance.requests()[-1]
    assert entry['query'] == {'x': '1'} and entry['username'] == 'bob'
    logged = repr(gl_team.instance.requests())
    assert not [s for s in gl_team.instance.secrets() if s in logged]


def test_the_request_log_names_the_client(gl_team):
    gl_team.raw('GET', '/user', headers={'User-Agent': 'mobb.scm-test'})
    assert gl_team.instance.requests()[-1]['user_agent'] == 'mobb.scm-test'


@pytest.mark.parametrize('token', [None, 'glpat-unknownunknownxxxx'])
def test_missing_or_unknown_tokens_are_401(gl_api, token):
    response = gl_api.raw('GET', '/user', token=token)
    assert (response.status_code, response.json()) == (401, {'message': '401 Unauthorized'})


def test_a_token_expires_at_midnight_utc_on_its_expiry_date(gl_api):
    today = seed_pat(gl_api.instance, expires_in_days=0)
    tomorrow = seed_pat(gl_api.instance, expires_in_days=1, name='tomorrow')
    response = gl_api.raw('GET', '/user', token=today['token'])
    assert (response.status_code, response.json()) == (401, EXPIRED)
    assert response.headers['WWW-Authenticate'] == (
        'Bearer realm="The API", error="invalid_token", error_description="' + EXPIRED['error_description'] + '"')
    assert gl_api.raw('GET', '/user', token=tomorrow['token']).status_code == 200
    listed = {t['id']: t for t in gl_api.admin_raw('GET', '/personal_access_tokens').json()}
    assert (listed[today['id']]['active'], listed[tomorrow['id']]['active']) == (False, True)

    gl_api.instance.set_clock(f'{gl_api.day(1)}T00:00:00Z')
    assert gl_api.raw('GET', '/user', token=tomorrow['token']).json() == EXPIRED
    gl_api.instance.set_clock(f'{gl_api.day(-1)}T23:59:59Z')
    assert gl_api.raw('GET', '/user', token=tomorrow['token']).status_code == 200


def test_moving_the_clock_expires_tokens_and_moves_every_date(gl_api):
    token = seed_pat(gl_api.instance, expires_in_days=30)
    before = gl_api.today()
    gl_api.instance.advance_clock(29)
    assert gl_api.raw('GET', '/user', token=token['token']).status_code == 200
    gl_api.instance.advance_clock(1)
    assert gl_api.raw('GET', '/user', token=token['token']).json() == EXPIRED
    response = gl_api.admin_raw('GET', '/version')
    served = email.utils.parsedate_to_datetime(response.headers['Date']).date()
    assert (served - before).days == 30
    rotated = gl_api.gl().personal_access_tokens.rotate(1)
    assert rotated['expires_at'] == gl_api.day(7) and rotated['created_at'].startswith(gl_api.day(0))


def test_a_revoked_token_is_401_with_the_revoked_body(gl_api):
    token = seed_pat(gl_api.instance, revoked=True)
    response = gl_api.raw('GET', '/personal_access_tokens/self', token=token['token'])
    assert (response.status_code, response.json()) == (401, REVOKED)
    assert 'error="invalid_token"' in response.headers['WWW-Authenticate']


def test_expiry_is_checked_before_revocation(gl_api):
    token = seed_pat(gl_api.instance, revoked=True, expires_in_days=-3)
    assert gl_api.raw('GET', '/user', token=token['token']).json() == EXPIRED


def test_scopes_read_user_read_api_and_api(gl_api):
    read_user = seed_pat(gl_api.instance, scopes=['read_user'], name='ru')['token']
    read_api = seed_pat(gl_api.instance, scopes=['read_api'], name='ra')['token']
    assert gl_api.raw('GET', '/user', token=read_user).status_code == 200
    listing = gl_api.raw('GET', '/personal_access_tokens', token=read_user)
    assert (listing.status_code, listing.json()) == (403, {
        'error': 'insufficient_scope', 'error_description': SCOPE_DESCRIPTION, 'scope': 'api read_api'})
    assert listing.headers['WWW-Authenticate'] == (
        f'Bearer realm="The API", error="insufficient_scope", error_description="{SCOPE_DESCRIPTION}", '
        'scope="api read_api"')
    assert gl_api.raw('GET', '/personal_access_tokens', token=read_api).status_code == 200
    write = gl_api.raw('POST', '/personal_access_tokens/self/rotate', token=read_api)
    assert write.status_code == 403 and write.json()['scope'] == 'api self_rotate'
    delete = gl_api.raw('DELETE', '/personal_access_tokens/1', token=read_api)
    assert delete.status_code == 403 and delete.json()['scope'] == 'api'
    # Any scope may look at and revoke the token itself.
    assert gl_api.raw('GET', '/personal_access_tokens/self', token=read_user).json()['scopes'] == ['read_user']
    assert gl_api.raw('DELETE', '/personal_access_tokens/self', token=read_user).status_code == 204


def test_reuse_of_a_rotated_token_revokes_its_successors(gl_api):
    first = seed_pat(gl_api.instance)
    second = gl_api.raw('POST', '/personal_access_tokens/self/rotate', token=first['token']).json()
    third = gl_api.raw('POST', '/personal_access_tokens/self/rotate', token=second['token']).json()
    side_branch = seed_pat(gl_api.instance, name='unrelated')
    assert gl_api.raw('GET', '/user', token=third['token']).status_code == 200
    # Presenting a revoked token anywhere else does not trigger detection.
    assert gl_api.raw('GET', '/user', token=first['token']).json() == REVOKED
    assert gl_api.raw('GET', '/user', token=third['token']).status_code == 200

    retried = gl_api.raw('POST', '/personal_access_tokens/self/rotate', token=first['token'])
    assert (retried.status_code, retried.json()) == (401, REVOKED)
    states = {t['id']: t['revoked'] for t in gl_api.instance.tokens()}
    assert (states[first['id']], states[second['id']], states[third['id']]) == (True, True, True)
    assert states[side_branch['id']] is False
    assert len(gl_api.instance.tokens()) == 5


def test_reuse_detection_also_guards_rotation_by_id(gl_team):
    created = gl_team.instance.seed(tokens=[{'kind': 'project', 'project': 'team/app', 'name': 'bot'}])['tokens'][0]
    rotated = gl_team.gl().projects.get('team/app', lazy=True).access_tokens.rotate(created['id'])
    retried = gl_team.raw('POST', f'/projects/team%2Fapp/access_tokens/{created["id"]}/rotate', token=created['token'])
    assert (retried.status_code, retried.json()) == (401, REVOKED)
    assert gl_team.raw('GET', '/user', token=rotated['token']).json() == REVOKED


def test_python_gitlab_reports_reuse_as_an_authentication_error(gl_api):
    first = seed_pat(gl_api.instance)
    stale = gl_api.gl(first['token'])
    mine = stale.personal_access_tokens.get('self')
    mine.rotate(self_rotate=True)
    with pytest.raises(python_gitlab.GitlabAuthenticationError):
        stale.personal_access_tokens.get('self', lazy=True).rotate(self_rotate=True)
    with pytest.raises(python_gitlab.GitlabAuthenticationError):
        gl_api.gl(mine.token).auth()


def test_last_used_is_recorded_at_most_every_ten_minutes(gl_api):
    token = seed_pat(gl_api.instance)
    assert gl_api.admin_raw('GET', f'/personal_access_tokens/{token["id"]}').json()['last_used_at'] is None
    gl_api.raw('GET', '/user', token=token['token'])
    first = gl_api.admin_raw('GET', f'/personal_access_tokens/{token["id"]}').json()
    assert first['last_used_at'] is not None and first['last_used_ips'] == ['127.0.0.1']
    gl_api.instance.advance_clock(5 / 1440)
    gl_api.raw('GET', '/user', token=token['token'])
    assert gl_api.admin_raw('GET', f'/personal_access_tokens/{token["id"]}').json()['last_used_at'] == first['last_used_at']
    gl_api.instance.advance_clock(6 / 1440)
    gl_api.raw('GET', '/user', token=token['token'])
    assert gl_api.admin_raw('GET', f'/personal_access_tokens/{token["id"]}').json()['last_used_at'] > first['last_used_at']


def test_current_user_version_and_user_lookup(gl_team):
    admin = gl_team.gl()
    admin.auth()
    assert (admin.user.username, admin.user.is_admin) == ('root', True)
    assert admin.version() == ('18.1.1-ee', 'ceb07b24cb0')
    gl_team.instance.settings(version='17.11.2-ee')
    assert gl_team.gl().version()[0] == '17.11.2-ee'
    bob = gl_team.as_user('bob')
    bob.auth()
    assert 'is_admin' not in bob.user.attributes
    assert [u.id for u in bob.users.list(username='ALICE')] == [gl_team.user_ids['alice']]
    anonymous = gl_team.raw('GET', '/users', params={'username': 'carol'})
    assert anonymous.status_code == 200 and anonymous.json()[0]['username'] == 'carol'
    assert gl_team.raw('GET', '/version').status_code == 401
