"""The members API of projects and groups and ``GET /users/:id/memberships``, through python-gitlab
(unmodified) and plain HTTP, with GitLab's status codes and bodies.

In the standard team (conftest), alice owns the group ``team`` (subgroup ``team/sub``), dave
maintains it, carol maintains ``team/app``, bob develops there and erin belongs nowhere.
"""
from __future__ import annotations

import gitlab as python_gitlab
import pytest

MEMBER_KEYS = {'id', 'username', 'name', 'state', 'locked', 'avatar_url', 'web_url', 'access_level',
               'created_at', 'expires_at', 'membership_state'}


def message(response):
    return response.json().get('message', response.json().get('error'))


def test_project_members_through_python_gitlab(gl_team):
    project = gl_team.as_user('carol').projects.get('team/app')
    added = project.members.create({'user_id': gl_team.user_ids['erin'], 'access_level': 20,
                                    'expires_at': gl_team.day(30)})
    assert set(added.attributes) - {'project_id'} == MEMBER_KEYS
    assert (added.username, added.access_level, added.expires_at, added.membership_state) == (
        'erin', 20, gl_team.day(30), 'active')
    assert [m.username for m in project.members.list()] == ['bob', 'carol', 'erin']
    # members/all adds the group's members, each user once with their highest role.
    assert {m.username: m.access_level for m in project.members_all.list(get_all=True)} == {
        'alice': 50, 'bob': 30, 'carol': 40, 'dave': 40, 'erin': 20}
    assert project.members_all.get(gl_team.user_ids['alice']).access_level == 50

    member = project.members.get(gl_team.user_ids['erin'])
    member.access_level = 30
    member.save()
    assert project.members.get(gl_team.user_ids['erin']).access_level == 30
    assert project.members.get(gl_team.user_ids['erin']).expires_at == gl_team.day(30)
    project.members.delete(gl_team.user_ids['erin'])
    with pytest.raises(python_gitlab.GitlabGetError) as gone:
        project.members.get(gl_team.user_ids['erin'])
    assert (gone.value.response_code, gone.value.error_message) == (404, '404 Not found')


def test_group_members_through_python_gitlab(gl_team):
    group = gl_team.as_user('alice').groups.get('team')
    group.members.create({'user_id': gl_team.user_ids['erin'], 'access_level': 50})
    assert {m.username: m.access_level for m in group.members.list()} == {'alice': 50, 'dave': 40, 'erin': 50}
    sub = gl_team.gl().groups.get('team/sub')
    assert sub.members.list() == []
    assert [m.username for m in sub.members_all.list()] == ['alice', 'dave', 'erin']
    record = next(m for m in gl_team.instance.members() if m['username'] == 'erin')
    assert record == {'user_id': gl_team.user_ids['erin'], 'username': 'erin', 'source_type': 'group',
                      'source_id': group.id, 'source_path': 'team', 'access_level': 50, 'expires_at': None}


def test_adding_a_member_fails_with_gitlab_bodies(gl_team):
    url = '/projects/team%2Fapp/members'
    existing = gl_team.admin_raw('POST', url, json={'user_id': gl_team.user_ids['bob'], 'access_level': 30})
    assert (existing.status_code, existing.json()) == (409, {'message': 'Member already exists'})
    unknown = gl_team.admin_raw('POST', url, json={'user_id': 999, 'access_level': 30})
    assert (unknown.status_code, message(unknown)) == (404, '404 User Not Found')
    level = gl_team.admin_raw('POST', url, json={'user_id': gl_team.user_ids['erin'], 'access_level': 35})
    assert (level.status_code, level.json()) == (400, {'error': 'access_level does not have a valid value'})
    missing = gl_team.admin_raw('POST', url, json={})
    assert (missing.status_code, message(missing)) == (400, 'access_level is missing, user_id is missing')
    yesterday = {'user_id': gl_team.user_ids['erin'], 'access_level': 30, 'expires_at': gl_team.day(-1)}
    past = gl_team.admin_raw('POST', url, json=yesterday)
    assert (past.status_code, past.json()) == (400, {'message': {'expires_at': ['cannot be a date in the past']}})
    hidden = gl_team.admin_raw('POST', '/projects/team%2Fnothing/members',
                               json={'user_id': gl_team.user_ids['erin'], 'access_level': 30})
    assert (hidden.status_code, message(hidden)) == (404, '404 Project Not Found')
    assert 'erin' not in [m['username'] for m in gl_team.instance.members()]


def test_who_may_change_project_members(gl_team):
    url = '/projects/team%2Fapp/members'
    erin = gl_team.user_ids['erin']
    developer = gl_team.raw('POST', url, token=gl_team.secrets['bob'], json={'user_id': erin, 'access_level': 10})
    assert (developer.status_code, message(developer)) == (403, '403 Forbidden')
    stranger = gl_team.raw('GET', url, token=gl_team.secrets['erin'])
    assert (stranger.status_code, message(stranger)) == (404, '404 Project Not Found')
    # A Maintainer manages members but never the Owner role.
    owner = gl_team.raw('POST', url, token=gl_team.secrets['carol'], json={'user_id': erin, 'access_level': 50})
    assert (owner.status_code, message(owner)) == (403, '403 Forbidden')
    added = gl_team.raw('POST', url, token=gl_team.secrets['carol'], json={'user_id': erin, 'access_level': 40})
    assert added.status_code == 201
    promoted = gl_team.raw('PUT', f'{url}/{erin}', token=gl_team.secrets['carol'], json={'access_level': 50})
    assert promoted.status_code == 403
    by_owner = gl_team.raw('PUT', f'{url}/{erin}', token=gl_team.secrets['alice'], json={'access_level': 50})
    assert (by_owner.status_code, by_owner.json()['access_level']) == (200, 50)
    demoted = gl_team.raw('DELETE', f'{url}/{erin}', token=gl_team.secrets['carol'])
    assert demoted.status_code == 403
    # Anyone may leave.
    assert gl_team.raw('DELETE', f'{url}/{erin}', token=gl_team.secrets['erin']).status_code == 204
    assert gl_team.raw('GET', '/projects/team%2Fapp', token=gl_team.secrets['erin']).status_code == 404


def test_who_may_change_group_members(gl_team):
    url = '/groups/team/members'
    erin = gl_team.user_ids['erin']
    maintainer = gl_team.raw('POST', url, token=gl_team.secrets['dave'], json={'user_id': erin, 'access_level': 10})
    assert (maintainer.status_code, message(maintainer)) == (403, '403 Forbidden')
    assert gl_team.raw('POST', url, token=gl_team.secrets['alice'], json={'user_id': erin, 'access_level': 10}).ok
    last_owner = gl_team.admin_raw('DELETE', f'{url}/{gl_team.user_ids["alice"]}')
    assert (last_owner.status_code, message(last_owner)) == (403, '403 Forbidden')
    unknown = gl_team.admin_raw('PUT', f'{url}/{gl_team.user_ids["bob"]}', json={'access_level': 30})
    assert (unknown.status_code, message(unknown)) == (404, '404 Not found')
    no_level = gl_team.admin_raw('PUT', f'{url}/{erin}', json={})
    assert (no_level.status_code, message(no_level)) == (400, 'access_level is missing')


def test_direct_and_inherited_lookups(gl_team):
    alice = gl_team.user_ids['alice']
    direct = gl_team.admin_raw('GET', f'/projects/team%2Fapp/members/{alice}')
    assert (direct.status_code, message(direct)) == (404, '404 Not found')
    inherited = gl_team.admin_raw('GET', f'/projects/team%2Fapp/members/all/{alice}')
    assert (inherited.status_code, inherited.json()['access_level']) == (200, 50)
    nobody = gl_team.admin_raw('GET', f'/projects/team%2Fapp/members/all/{gl_team.user_ids["erin"]}')
    assert (nobody.status_code, message(nobody)) == (404, '404 Not found')
    searched = gl_team.admin_raw('GET', '/projects/team%2Fapp/members', params={'query': 'CAR'})
    assert [m['username'] for m in searched.json()] == ['carol']
    page = gl_team.admin_raw('GET', '/projects/team%2Fapp/members/all', params={'per_page': 2})
    assert (len(page.json()), page.headers['X-Total']) == (2, '4')


def test_an_expired_membership_gives_no_access(gl_team):
    gl_team.gl().projects.get('team/app').members.create(
        {'user_id': gl_team.user_ids['erin'], 'access_level': 30, 'expires_at': gl_team.day(2)})
    assert gl_team.raw('GET', '/projects/team%2Fapp', token=gl_team.secrets['erin']).status_code == 200
    gl_team.instance.advance_clock(2)
    assert gl_team.raw('GET', '/projects/team%2Fapp', token=gl_team.secrets['erin']).status_code == 404
    assert 'erin' not in [m['username'] for m in gl_team.admin_raw('GET', '/projects/team%2Fapp/members').json()]


def test_user_memberships_for_administrators(gl_team):
    bob = gl_team.user_ids['bob']
    gl_team.instance.seed(members=[{'username': 'bob', 'group': 'team/sub', 'access_level': 20}])
    listed = gl_team.admin_raw('GET', f'/users/{bob}/memberships').json()
    app_id = gl_team.gl().projects.get('team/app').id
    sub_id = gl_team.gl().groups.get('team/sub').id
    assert listed == [
        {'source_id': app_id, 'source_name': 'team / app', 'source_type': 'Project', 'access_level': 30},
        {'source_id': sub_id, 'source_name': 'team / sub', 'source_type': 'Namespace', 'access_level': 20}]
    only_groups = gl_team.admin_raw('GET', f'/users/{bob}/memberships', params={'type': 'Namespace'})
    assert [m['source_type'] for m in only_groups.json()] == ['Namespace']
    bad_type = gl_team.admin_raw('GET', f'/users/{bob}/memberships', params={'type': 'Group'})
    assert (bad_type.status_code, message(bad_type)) == (400, 'type does not have a valid value')
    refused = gl_team.raw('GET', f'/users/{bob}/memberships', token=gl_team.secrets['bob'])
    assert (refused.status_code, message(refused)) == (403, '403 Forbidden')
    unknown = gl_team.admin_raw('GET', '/users/999/memberships')
    assert (unknown.status_code, message(unknown)) == (404, '404 User Not Found')
    assert gl_team.admin_raw('GET', f'/users/{gl_team.user_ids["erin"]}/memberships').json() == []
