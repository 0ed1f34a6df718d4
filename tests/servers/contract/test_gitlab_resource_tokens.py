"""Project and group access tokens end to end through python-gitlab (unmodified), errors included.

In the standard team (``gl_team``), alice owns group ``team``, dave maintains it, carol
maintains project ``team/app`` and bob develops on it; erin belongs nowhere.
"""
from __future__ import annotations

import gitlab as python_gitlab
import pytest

# kind → (resource path, a user who may manage its tokens, a member who may not)
RESOURCES = {
    'project': ('team/app', 'carol', 'bob'),
    'group': ('team', 'alice', 'dave'),
}


def resource(gl, kind, path):
    manager = gl.projects if kind == 'project' else gl.groups
    return manager.get(path, lazy=True)


@pytest.mark.parametrize('kind', RESOURCES)
def test_a_manager_creates_lists_gets_rotates_and_revokes(gl_team, kind):
    path, manager = RESOURCES[kind][:2]
    tokens = resource(gl_team.as_user(manager), kind, path).access_tokens
    created = tokens.create({'name': 'mobb', 'scopes': ['api'], 'access_level': 30,
                             'expires_at': gl_team.day(60), 'description': 'broker'})
    assert created.token.startswith('glpat-') and len(created.token) == 26
    assert (created.access_level, created.scopes, created.expires_at, created.active) == (
        30, ['api'], gl_team.day(60), True)
    assert (created.resource_type, created.description) == (kind, 'broker')
    bot = gl_team.gl(created.token)
    bot.auth()
    assert bot.user.bot is True and bot.user.name == 'mobb'
    assert bot.user.username.startswith(f'{kind}_') and bot.user.id == created.user_id

    assert [t.id for t in tokens.list(get_all=True)] == [created.id]
    assert tokens.get(created.id).name == 'mobb'

    rotated = tokens.rotate(created.id, expires_at=gl_team.day(90))
    assert (rotated['user_id'], rotated['access_level'], rotated['scopes']) == (created.user_id, 30, ['api'])
    assert rotated['id'] != created.id and rotated['expires_at'] == gl_team.day(90)
    assert tokens.get(created.id).revoked is True

    current = tokens.get(rotated['id'])
    current.rotate()
    assert current.id not in (created.id, rotated['id']) and current.expires_at == gl_team.day(7)
    assert current.token.startswith('glpat-')

    tokens.delete(current.id)
    listed = {t.id: t for t in tokens.list(get_all=True)}
    assert sorted(listed) == sorted([created.id, rotated['id'], current.id])
    assert all(t.revoked for t in listed.values())
    with pytest.raises(python_gitlab.GitlabAuthenticationError):
        gl_team.gl(current.token).auth()


@pytest.mark.parametrize('kind', RESOURCES)
def test_a_token_self_rotates_keeping_its_bot_and_role(gl_team, kind):
    path, manager = RESOURCES[kind][:2]
    created = resource(gl_team.as_user(manager), kind, path).access_tokens.create(
        {'name': 'self', 'scopes': ['self_rotate'], 'access_level': 20})
    own = resource(gl_team.gl(created.token), kind, path).access_tokens.get(created.id, lazy=True)
    own.rotate(self_rotate=True)
    assert own.id != created.id and own.user_id == created.user_id and own.access_level == 20
    gl_team.gl(own.token).personal_access_tokens.get('self')


@pytest.mark.parametrize('kind', RESOURCES)
def test_self_rotation_with_a_persons_token_is_405(gl_team, kind):
    path, manager = RESOURCES[kind][:2]
    response = gl_team.raw('POST', f'/{kind}s/{path.replace("/", "%2F")}/access_tokens/self/rotate',
                           token=gl_team.secrets[manager])
    assert (response.status_code, response.json()) == (405, {'message': '405 Method Not Allowed'})


@pytest.mark.parametrize('kind', RESOURCES)
def test_members_below_the_managing_role_are_refused(gl_team, kind):
    path, member = RESOURCES[kind][0], RESOURCES[kind][2]
    tokens = resource(gl_team.as_user(member), kind, path).access_tokens
    with pytest.raises(python_gitlab.GitlabCreateError) as create:
        tokens.create({'name': 'x', 'scopes': ['api'], 'access_level': 10})
    assert (create.value.response_code, create.value.error_message) == (
        400, f'400 Bad request - User does not have permission to create {kind} access token')
    with pytest.raises(python_gitlab.GitlabAuthenticationError):
        tokens.list(get_all=True)
    seeded = gl_team.instance.seed(tokens=[{'kind': kind, kind: path, 'name': 'existing'}])['tokens'][0]
    with pytest.raises(python_gitlab.GitlabAuthenticationError):
        tokens.get(seeded['id'])
    with pytest.raises(python_gitlab.GitlabAuthenticationError):
        tokens.rotate(seeded['id'])
    with pytest.raises(python_gitlab.GitlabDeleteError) as delete:
        tokens.delete(seeded['id'])
    assert delete.value.response_code == 400
    assert delete.value.error_message == f'400 Bad request - {member} cannot delete existing'
    assert all(t['active'] for t in gl_team.instance.tokens() if t['id'] == seeded['id'])


@pytest.mark.parametrize('kind', RESOURCES)
def test_outsiders_and_missing_resources_get_404(gl_team, kind):
    path = RESOURCES[kind][0]
    for gl, ref in ((gl_team.as_user('erin'), path), (gl_team.gl(), 'no/such')):
        with pytest.raises(python_gitlab.GitlabListError) as missing:
            resource(gl, kind, ref).access_tokens.list(get_all=True)
        assert (missing.value.response_code, missing.value.error_message) == (404, f'404 {kind.capitalize()} Not Found')


def test_a_maintainer_cannot_grant_owner(gl_team):
    tokens = resource(gl_team.as_user('carol'), 'project', 'team/app').access_tokens
    with pytest.raises(python_gitlab.GitlabCreateError) as ceiling:
        tokens.create({'name': 'x', 'scopes': ['api'], 'access_level': 50})
    assert ceiling.value.error_message == (
        '400 Bad request - Access level of the token contains permissions not held by the creating user')
    assert tokens.create({'name': 'x', 'scopes': ['api'], 'access_level': 40}).access_level == 40
    assert tokens.create({'name': 'planner', 'scopes': ['read_api'], 'access_level': 15}).access_level == 15


def test_group_membership_is_inherited_by_subgroups_and_projects(gl_team):
    alice = gl_team.as_user('alice')
    assert resource(alice, 'project', 'team/sub/lib').access_tokens.create(
        {'name': 'x', 'scopes': ['api'], 'access_level': 50}).access_level == 50
    assert resource(alice, 'group', 'team/sub').access_tokens.create(
        {'name': 'y', 'scopes': ['api']}).access_level == 40
    with pytest.raises(python_gitlab.GitlabCreateError, match='User does not have permission'):
        resource(gl_team.as_user('dave'), 'group', 'team/sub').access_tokens.create({'name': 'z', 'scopes': ['api']})


def test_rotating_needs_the_tokens_role(gl_team):
    owner_level = gl_team.instance.seed(
        tokens=[{'kind': 'project', 'project': 'team/app', 'name': 'owner', 'access_level': 50}])['tokens'][0]
    tokens = resource(gl_team.as_user('carol'), 'project', 'team/app').access_tokens
    with pytest.raises(python_gitlab.GitlabRotateError) as refused:
        tokens.rotate(owner_level['id'])
    assert refused.value.error_message == (
        '400 Bad request - Not eligible to rotate tokens with permissions not held by the user')
    assert resource(gl_team.as_user('alice'), 'project', 'team/app').access_tokens.rotate(owner_level['id'])


def test_missing_tokens_are_401_for_members_and_404_for_admins(gl_team):
    with pytest.raises(python_gitlab.GitlabAuthenticationError):
        resource(gl_team.as_user('carol'), 'project', 'team/app').access_tokens.rotate(999)
    admin_tokens = resource(gl_team.gl(), 'project', 'team/app').access_tokens
    with pytest.raises(python_gitlab.GitlabRotateError) as rotate:
        admin_tokens.rotate(999)
    assert rotate.value.response_code == 404
    with pytest.raises(python_gitlab.GitlabGetError) as get:
        admin_tokens.get(999)
    assert (get.value.response_code, get.value.error_message) == (404, '404 project Access Token Not Found')
    with pytest.raises(python_gitlab.GitlabDeleteError) as delete:
        resource(gl_team.gl(), 'group', 'team').access_tokens.delete(999)
    assert (delete.value.response_code, delete.value.error_message) == (404, '404 group Access Token Not Found')


def test_a_token_of_another_project_is_not_found_here(gl_team):
    elsewhere = gl_team.instance.seed(tokens=[{'kind': 'project', 'project': 'team/sub/lib', 'name': 'lib'}])
    with pytest.raises(python_gitlab.GitlabGetError):
        resource(gl_team.gl(), 'project', 'team/app').access_tokens.get(elsewhere['tokens'][0]['id'])


@pytest.mark.parametrize(('body', 'error'), [
    ({'name': 'x', 'scopes': ['read_user']}, 'scopes does not have a valid value'),
    ({'name': 'x', 'scopes': ['api', 'sudo']}, 'scopes does not have a valid value'),
    ({'name': 'x', 'scopes': ['api'], 'access_level': 35}, 'access_level does not have a valid value'),
    ({'name': 'x', 'scopes': ['api'], 'access_level': 25}, 'access_level does not have a valid value'),
    ({'name': 'x', 'scopes': ['api'], 'expires_at': '31/12/2030'}, 'expires_at is invalid'),
    ({'scopes': ['api']}, 'name is missing'),
])
def test_parameter_errors_are_grape_400s(gl_team, body, error):
    response = gl_team.admin_raw('POST', '/projects/team%2Fapp/access_tokens', json=body)
    assert (response.status_code, response.json()) == (400, {'error': error})


@pytest.mark.parametrize('kind', RESOURCES)
def test_the_lifetime_limit_is_400_on_create_and_rotate(gl_team, kind):
    path, manager = RESOURCES[kind][:2]
    tokens = resource(gl_team.as_user(manager), kind, path).access_tokens
    created = tokens.create({'name': 'x', 'scopes': ['api']})
    assert created.expires_at == gl_team.day(365)
    message = f'400 Bad request - Expires at must be before {gl_team.day(365)}'
    with pytest.raises(python_gitlab.GitlabCreateError) as create:
        tokens.create({'name': 'y', 'scopes': ['api'], 'expires_at': gl_team.day(366)})
    assert (create.value.response_code, create.value.error_message) == (400, message)
    with pytest.raises(python_gitlab.GitlabRotateError) as rotate:
        tokens.rotate(created.id, expires_at=gl_team.day(400))
    assert (rotate.value.response_code, rotate.value.error_message) == (400, message)
    assert tokens.get(created.id).active is True
    assert [t.name for t in tokens.list(get_all=True)] == ['x']


def test_a_project_token_cannot_create_tokens(gl_team):
    bot_token = gl_team.instance.seed(tokens=[{'kind': 'project', 'project': 'team/app', 'name': 'bot'}])
    bot = gl_team.gl(bot_token['tokens'][0]['token'])
    with pytest.raises(python_gitlab.GitlabCreateError, match='User does not have permission'):
        resource(bot, 'project', 'team/app').access_tokens.create({'name': 'x', 'scopes': ['api']})


def test_paths_must_be_url_encoded(gl_team):
    gl_team.instance.clear_requests()
    resource(gl_team.gl(), 'project', 'team/sub/lib').access_tokens.list(get_all=True)
    assert gl_team.instance.requests()[-1]['path'] == '/api/v4/projects/team%2Fsub%2Flib/access_tokens'
    unencoded = gl_team.admin_raw('GET', '/projects/team/app/access_tokens')
    assert (unencoded.status_code, unencoded.json()) == (404, {'error': '404 Not Found'})
    by_id = gl_team.gl().projects.get('team/app')
    assert by_id.path_with_namespace == 'team/app'
    assert resource(gl_team.gl(), 'project', by_id.id).access_tokens.list(get_all=True) == []


def test_projects_and_groups_show_the_callers_access(gl_team):
    project = gl_team.as_user('carol').projects.get('team/app')
    assert project.permissions == {'project_access': {'access_level': 40, 'notification_level': 3},
                                   'group_access': None}
    assert project.namespace['full_path'] == 'team'
    inherited = gl_team.as_user('alice').projects.get('team/sub/lib')
    assert inherited.permissions['group_access']['access_level'] == 50
    group = gl_team.as_user('alice').groups.get('team/sub')
    assert (group.full_path, group.parent_id) == ('team/sub', gl_team.gl().groups.get('team').id)
    with pytest.raises(python_gitlab.GitlabGetError, match='404 Project Not Found'):
        gl_team.as_user('erin').projects.get('team/app')


def test_a_project_in_a_users_namespace_is_owned_by_that_user(gl_team):
    gl_team.instance.seed(projects=[{'path': 'erin/tool'}])
    erin = gl_team.as_user('erin')
    project = erin.projects.get('erin/tool')
    assert (project.namespace['kind'], project.namespace['full_path']) == ('user', 'erin')
    token = project.access_tokens.create({'name': 'ci', 'scopes': ['api'], 'access_level': 50})
    assert token.access_level == 50
    with pytest.raises(python_gitlab.GitlabGetError, match='404 Project Not Found'):
        gl_team.as_user('alice').projects.get('erin/tool')
