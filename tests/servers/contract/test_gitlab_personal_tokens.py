"""Personal access tokens end to end through python-gitlab (unmodified), errors included."""
from __future__ import annotations

import re
import warnings

import gitlab as python_gitlab
import pytest


def create_pat(gl, user_id, **attributes):
    attributes.setdefault('name', 'mobb')
    attributes.setdefault('scopes', ['api', 'read_user'])
    return gl.users.get(user_id, lazy=True).personal_access_tokens.create(attributes)


def test_admin_creates_gets_rotates_and_revokes_a_pat(gl_team):
    admin = gl_team.gl()
    alice = gl_team.user_ids['alice']
    created = create_pat(admin, alice, description='Mobb broker', expires_at=gl_team.day(30))
    assert created.token.startswith('glpat-') and len(created.token) == 26
    assert (created.name, created.scopes, created.user_id) == ('mobb', ['api', 'read_user'], alice)
    assert (created.description, created.expires_at, created.active) == ('Mobb broker', gl_team.day(30), True)

    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z', created.created_at)
    fetched = admin.personal_access_tokens.get(created.id)
    assert 'token' not in fetched.attributes
    assert fetched.last_used_at is None and fetched.revoked is False

    rotated = admin.personal_access_tokens.rotate(created.id)
    assert rotated['id'] != created.id and rotated['token'] != created.token
    assert (rotated['name'], rotated['description'], rotated['scopes'], rotated['user_id']) == (
        'mobb', 'Mobb broker', ['api', 'read_user'], alice)
    assert rotated['expires_at'] == gl_team.day(7)
    old = admin.personal_access_tokens.get(created.id)
    assert (old.revoked, old.active) == (True, False)
    lineage = {t['id']: t['previous_id'] for t in gl_team.instance.tokens()}
    assert lineage[rotated['id']] == created.id

    assert gl_team.gl(rotated['token']).users.list(username='alice')[0].id == alice
    with pytest.raises(python_gitlab.GitlabAuthenticationError) as revoked:
        gl_team.gl(created.token).auth()
    assert (revoked.value.response_code, revoked.value.error_message) == (401, 'invalid_token')
    assert b'Token was revoked' in revoked.value.response_body

    admin.personal_access_tokens.delete(rotated['id'])
    assert admin.personal_access_tokens.get(rotated['id']).revoked is True
    with pytest.raises(python_gitlab.GitlabAuthenticationError):
        gl_team.gl(rotated['token']).auth()


def test_rotating_the_object_replaces_its_id_and_token(gl_team):
    admin = gl_team.gl()
    created = create_pat(admin, gl_team.user_ids['bob'])
    token = admin.personal_access_tokens.get(created.id)
    token.rotate(expires_at=gl_team.day(90))
    assert token.id != created.id and token.token.startswith('glpat-')
    assert token.expires_at == gl_team.day(90)
    assert gl_team.gl(token.token).personal_access_tokens.get('self').id == token.id


def test_a_user_self_rotates_and_the_old_value_stops_working(gl_team):
    alice = gl_team.as_user('alice')
    mine = alice.personal_access_tokens.get('self')
    assert mine.id == gl_team.token_ids['alice']
    mine.rotate(self_rotate=True)
    assert mine.id != gl_team.token_ids['alice']
    fresh = gl_team.gl(mine.token)
    fresh.auth()
    assert fresh.user.username == 'alice'
    with pytest.raises(python_gitlab.GitlabAuthenticationError):
        gl_team.as_user('alice').auth()


def test_a_user_rotates_their_own_pat_by_id(gl_team):
    rotated = gl_team.as_user('bob').personal_access_tokens.rotate(gl_team.token_ids['bob'])
    assert rotated['user_id'] == gl_team.user_ids['bob']


def test_a_self_rotate_scoped_token_may_rotate_itself_and_do_nothing_else(gl_team):
    seeded = gl_team.instance.seed(tokens=[
        {'kind': 'personal', 'user': 'carol', 'name': 'rotator', 'scopes': ['self_rotate']}])['tokens'][0]
    rotator = gl_team.gl(seeded['token'])
    with pytest.raises(python_gitlab.GitlabGetError) as forbidden:
        rotator.auth()
    assert (forbidden.value.response_code, forbidden.value.error_message) == (403, 'insufficient_scope')
    token = rotator.personal_access_tokens.get('self')
    token.rotate(self_rotate=True)
    assert token.scopes == ['self_rotate'] and token.id != seeded['id']


def test_a_token_revokes_itself(gl_team):
    bob = gl_team.as_user('bob')
    bob.personal_access_tokens.delete('self')
    with pytest.raises(python_gitlab.GitlabAuthenticationError):
        bob.personal_access_tokens.get('self')


def test_get_all_follows_pages_past_100(gl_team):
    gl_team.instance.seed(tokens=[
        {'kind': 'personal', 'user': 'erin', 'name': f'bulk {n:03d}'} for n in range(230)])
    gl_team.instance.clear_requests()
    with warnings.catch_warnings():
        # python-gitlab warns when a Link URL's base differs from the URL it was given.
        warnings.simplefilter('error')
        tokens = gl_team.gl().personal_access_tokens.list(
            user_id=gl_team.user_ids['erin'], get_all=True, per_page=100)
    assert len(tokens) == 231
    assert [t.id for t in tokens] == sorted(t.id for t in tokens)
    pages = [r for r in gl_team.instance.requests() if r['path'] == '/api/v4/personal_access_tokens']
    assert [r['query'].get('page', '1') for r in pages] == ['1', '2', '3']


def test_a_plain_list_returns_one_page_and_warns(gl_team):
    gl_team.instance.seed(tokens=[{'kind': 'personal', 'user': 'erin', 'name': f't{n}'} for n in range(25)])
    with pytest.warns(UserWarning, match='Calling a `list\\(\\)` method without specifying'):
        page = gl_team.gl().personal_access_tokens.list(user_id=gl_team.user_ids['erin'])
    assert len(page) == 20


def test_a_non_admin_cannot_create_a_pat(gl_team):
    bob = gl_team.as_user('bob')
    with pytest.raises(python_gitlab.GitlabCreateError) as refused:
        create_pat(bob, gl_team.user_ids['bob'])
    assert (refused.value.response_code, refused.value.error_message) == (403, '403 Forbidden')
    assert [t['name'] for t in gl_team.instance.tokens() if t['username'] == 'bob'] == ['work']


def test_creating_for_an_unknown_user_is_404(gl_team):
    with pytest.raises(python_gitlab.GitlabCreateError) as missing:
        create_pat(gl_team.gl(), 999)
    assert (missing.value.response_code, missing.value.error_message) == (404, '404 User Not Found')


def test_python_gitlab_checks_required_attributes_before_sending(gl_team):
    gl_team.instance.clear_requests()
    with pytest.raises(AttributeError, match='scopes'):
        gl_team.gl().users.get(2, lazy=True).personal_access_tokens.create({'name': 'x'})
    assert gl_team.instance.writes() == []


@pytest.mark.parametrize(('body', 'error'), [
    ({'scopes': ['api']}, 'name is missing'),
    ({'name': 'x'}, 'scopes is missing'),
    ({}, 'name is missing, scopes is missing'),
    ({'name': 'x', 'scopes': ['api', 'everything']}, 'scopes does not have a valid value'),
    ({'name': 'x', 'scopes': ['api'], 'expires_at': 'next week'}, 'expires_at is invalid'),
])
def test_parameter_errors_are_grape_400s(gl_team, body, error):
    response = gl_team.admin_raw('POST', f'/users/{gl_team.user_ids["bob"]}/personal_access_tokens', json=body)
    assert (response.status_code, response.json()) == (400, {'error': error})


def test_a_comma_separated_scopes_string_is_accepted(gl_team):
    response = gl_team.admin_raw('POST', f'/users/{gl_team.user_ids["bob"]}/personal_access_tokens',
                                 json={'name': 'csv', 'scopes': 'api,read_user'})
    assert response.status_code == 201 and response.json()['scopes'] == ['api', 'read_user']


def test_the_lifetime_limit_is_422_on_create_and_400_on_rotate(gl_team):
    admin = gl_team.gl()
    limit = gl_team.day(365)
    assert create_pat(admin, gl_team.user_ids['bob'], expires_at=limit).expires_at == limit
    with pytest.raises(python_gitlab.GitlabCreateError) as too_long:
        create_pat(admin, gl_team.user_ids['bob'], expires_at=gl_team.day(366))
    assert (too_long.value.response_code, too_long.value.error_message) == (
        422, f'Expires at must be before {limit}')
    with pytest.raises(python_gitlab.GitlabRotateError) as rotate_too_long:
        admin.personal_access_tokens.rotate(gl_team.token_ids['bob'], expires_at=gl_team.day(366))
    assert (rotate_too_long.value.response_code, rotate_too_long.value.error_message) == (
        400, f'400 Bad request - Expires at must be before {limit}')
    assert admin.personal_access_tokens.get(gl_team.token_ids['bob']).active is True


def test_a_lower_maximum_lifetime_applies_to_defaults_and_limits(gl_team):
    gl_team.instance.settings(max_lifetime_days=30)
    admin = gl_team.gl()
    assert create_pat(admin, gl_team.user_ids['bob']).expires_at == gl_team.day(30)
    with pytest.raises(python_gitlab.GitlabCreateError, match=f'Expires at must be before {gl_team.day(30)}'):
        create_pat(admin, gl_team.user_ids['bob'], expires_at=gl_team.day(31))


def test_without_required_expiry_omitted_dates_mean_no_expiry(gl_team):
    gl_team.instance.settings(require_expiry=False)
    admin = gl_team.gl()
    assert create_pat(admin, gl_team.user_ids['bob']).expires_at is None
    assert admin.personal_access_tokens.rotate(gl_team.token_ids['bob'])['expires_at'] is None


def test_default_expiry_is_a_year_on_create_and_a_week_on_rotate(gl_team):
    admin = gl_team.gl()
    created = create_pat(admin, gl_team.user_ids['bob'])
    assert created.expires_at == gl_team.day(365)
    assert admin.personal_access_tokens.rotate(created.id)['expires_at'] == gl_team.day(7)


def test_rotating_a_revoked_token_is_refused(gl_team):
    admin = gl_team.gl()
    admin.personal_access_tokens.delete(gl_team.token_ids['bob'])
    with pytest.raises(python_gitlab.GitlabRotateError) as refused:
        admin.personal_access_tokens.rotate(gl_team.token_ids['bob'])
    assert (refused.value.response_code, refused.value.error_message) == (
        400, '400 Bad request - Token already revoked')


def test_users_see_only_their_own_tokens_and_admins_see_all(gl_team):
    admin, bob = gl_team.gl(), gl_team.as_user('bob')
    gl_team.instance.seed(tokens=[{'kind': 'project', 'project': 'team/app', 'name': 'bot'}])
    everyone = admin.personal_access_tokens.list(get_all=True)
    assert {t.name for t in everyone} >= {'admin', 'work', 'bot'}
    assert {t.user_id for t in bob.personal_access_tokens.list(get_all=True)} == {gl_team.user_ids['bob']}
    own = bob.personal_access_tokens.list(user_id=gl_team.user_ids['bob'], get_all=True)
    assert [t.id for t in own] == [gl_team.token_ids['bob']]
    with pytest.raises(python_gitlab.GitlabAuthenticationError):
        bob.personal_access_tokens.list(user_id=gl_team.user_ids['alice'], get_all=True)
    with pytest.raises(python_gitlab.GitlabListError) as unknown:
        admin.personal_access_tokens.list(user_id=999, get_all=True)
    assert unknown.value.response_code == 404


def test_foreign_and_missing_tokens_are_401_for_users_and_404_for_admins(gl_team):
    admin, bob = gl_team.gl(), gl_team.as_user('bob')
    for token_id in (gl_team.token_ids['alice'], 999):
        with pytest.raises(python_gitlab.GitlabAuthenticationError):
            bob.personal_access_tokens.get(token_id)
        with pytest.raises(python_gitlab.GitlabAuthenticationError):
            bob.personal_access_tokens.rotate(token_id)
    with pytest.raises(python_gitlab.GitlabGetError) as missing:
        admin.personal_access_tokens.get(999)
    assert missing.value.response_code == 404
    with pytest.raises(python_gitlab.GitlabRotateError) as missing_rotate:
        admin.personal_access_tokens.rotate(999)
    assert missing_rotate.value.response_code == 404
    assert admin.personal_access_tokens.get(gl_team.token_ids['alice']).active is True


def test_revoking_missing_foreign_and_already_revoked_tokens(gl_team):
    admin, bob = gl_team.gl(), gl_team.as_user('bob')
    with pytest.raises(python_gitlab.GitlabDeleteError) as missing:
        admin.personal_access_tokens.delete(999)
    assert (missing.value.response_code, missing.value.error_message) == (404, '404 Not found')
    with pytest.raises(python_gitlab.GitlabDeleteError) as foreign:
        bob.personal_access_tokens.delete(gl_team.token_ids['alice'])
    assert (foreign.value.response_code, foreign.value.error_message) == (400, '400 Bad request')
    admin.personal_access_tokens.delete(gl_team.token_ids['alice'])
    admin.personal_access_tokens.delete(gl_team.token_ids['alice'])
    assert admin.personal_access_tokens.get(gl_team.token_ids['alice']).revoked is True


def test_self_service_creation_is_limited_to_k8s_proxy_and_self_rotate(gl_team):
    bob = gl_team.as_user('bob')
    created = bob.http_post('/user/personal_access_tokens', post_data={'name': 'agent', 'scopes': ['k8s_proxy']})
    assert created['scopes'] == ['k8s_proxy'] and created['user_id'] == gl_team.user_ids['bob']
    with pytest.raises(python_gitlab.GitlabHttpError) as refused:
        bob.http_post('/user/personal_access_tokens', post_data={'name': 'wide', 'scopes': ['api']})
    assert refused.value.response_code == 400
    assert refused.value.error_message == 'scopes does not have a valid value'


def test_an_expired_token_can_be_rotated_by_id_but_cannot_rotate_itself(gl_team):
    expired = gl_team.instance.seed(tokens=[
        {'kind': 'personal', 'user': 'bob', 'name': 'old', 'expires_in_days': -2}])['tokens'][0]
    with pytest.raises(python_gitlab.GitlabAuthenticationError):
        gl_team.gl(expired['token']).personal_access_tokens.get('self', lazy=True).rotate(self_rotate=True)
    renewed = gl_team.as_user('bob').personal_access_tokens.rotate(expired['id'])
    assert (renewed['active'], renewed['expires_at'], renewed['name']) == (True, gl_team.day(7), 'old')


def test_admins_may_grant_admin_only_scopes_and_long_texts_are_model_errors(gl_team):
    admin = gl_team.gl()
    assert create_pat(admin, 1, scopes=['api', 'sudo', 'admin_mode']).scopes == ['api', 'sudo', 'admin_mode']
    with pytest.raises(python_gitlab.GitlabCreateError) as too_long:
        create_pat(admin, gl_team.user_ids['bob'], name='n' * 256, description='d' * 256)
    assert (too_long.value.response_code, too_long.value.error_message) == (
        422, 'Name is too long (maximum is 255 characters) and Description is too long (maximum is 255 characters)')
    with pytest.raises(python_gitlab.GitlabCreateError) as blank:
        create_pat(admin, gl_team.user_ids['bob'], name='')
    assert (blank.value.response_code, blank.value.error_message) == (422, "Name can't be blank")
