"""Service accounts end to end: python-gitlab's managers (unmodified), then each behaviour the
project's notes on GitLab (``gitlab-service-accounts.md``) describe, pinned with its status and body.

In the standard team (conftest), alice owns the group ``team`` (subgroup ``team/sub``), dave
maintains it, carol maintains ``team/app``, bob develops there and erin belongs nowhere.
"""
from __future__ import annotations

import re

import gitlab as python_gitlab
import pytest
from gitlab.v4.objects import GroupServiceAccount
from gitlab_server.client import ControlError

NO_PERMISSION_IN_GROUP = '400 Bad request - User does not have permission to create a service account in this group.'
NO_SEATS = 'No more seats are available to create Service Account User'
RATE_LIMITED = {'message': {'error': 'This endpoint has been requested too many times. Try again later.'}}


def seed_account(t, **fields):
    return t.instance.seed(service_accounts=[fields])['service_accounts'][0]


def seed_token(t, username, **token):
    fields = {'kind': 'personal', 'user': username, 'name': 'ci', 'scopes': ['api']}
    return t.instance.seed(tokens=[dict(fields, **token)])['tokens'][0]


def message(response):
    return response.json().get('message', response.json().get('error'))


# ------------------------------------------------------------------------ python-gitlab
def test_instance_accounts_through_python_gitlab(gl_team):
    admin = gl_team.gl()
    created = admin.service_accounts.create({'name': 'Mobb', 'username': 'mobb-bot'})
    assert (created.name, created.username) == ('Mobb', 'mobb-bot')
    older = admin.service_accounts.create({})
    assert [a.id for a in admin.service_accounts.list()] == [older.id, created.id]
    assert [a.username for a in admin.service_accounts.list(order_by='username', sort='asc')] == [
        'mobb-bot', older.username]
    assert admin.service_accounts.update(created.id, {'name': 'Mobb broker'})['name'] == 'Mobb broker'

    user = admin.users.get(created.id)
    assert (user.bot, user.external, user.is_admin) == (True, True, False)
    assert (user.provisioned_by_group_id, user.provisioned_by_project_id) == (None, None)
    token = user.personal_access_tokens.create({'name': 'mobb', 'scopes': ['api'], 'expires_at': gl_team.day(60)})
    assert [t.id for t in admin.personal_access_tokens.list(user_id=created.id)] == [token.id]
    rotated = admin.personal_access_tokens.rotate(token.id, expires_at=gl_team.day(90))
    assert (rotated['user_id'], rotated['expires_at']) == (created.id, gl_team.day(90))
    admin.personal_access_tokens.delete(rotated['id'])
    assert admin.personal_access_tokens.get(rotated['id']).revoked is True

    record = next(u for u in gl_team.instance.users() if u['id'] == created.id)
    assert record == {'id': created.id, 'username': 'mobb-bot', 'name': 'Mobb broker', 'email': created.email,
                      'user_type': 'service_account', 'admin': False, 'bot': True, 'external': True,
                      'provisioned_by_group_id': None, 'provisioned_by_project_id': None}


def test_group_accounts_and_their_tokens_through_python_gitlab(gl_team):
    admin = gl_team.gl()
    group = admin.groups.get('team', lazy=True)
    account = group.service_accounts.create({'name': 'deploy', 'username': 'deploy-bot'})
    assert [a.username for a in group.service_accounts.list()] == ['deploy-bot']
    group.service_accounts.update(account.id, {'name': 'deploy bot'})
    assert admin.users.get(account.id).provisioned_by_group_id == admin.groups.get('team').id

    token = account.access_tokens.create({'name': 'ci', 'scopes': ['api'], 'expires_at': gl_team.day(30)})
    assert (token.user_id, token.expires_at, token.token.startswith('glpat-')) == (account.id, gl_team.day(30), True)
    # python-gitlab has no get(): an object built from the id reaches the same routes.
    same = GroupServiceAccount(group.service_accounts, {'id': account.id})
    assert [t.name for t in same.access_tokens.list(state='active')] == ['ci']
    rotated = same.access_tokens.rotate(token.id, expires_at=gl_team.day(90))
    assert (rotated['name'], rotated['expires_at']) == ('ci', gl_team.day(90))
    listed = same.access_tokens.list(get_all=True)
    assert {t.id: t.revoked for t in listed} == {token.id: True, rotated['id']: False}
    current = next(t for t in listed if t.id == rotated['id'])
    current.rotate(expires_at=gl_team.day(10))
    assert current.id != rotated['id'] and current.expires_at == gl_team.day(10)
    same.access_tokens.delete(current.id)
    assert [t.id for t in same.access_tokens.list(revoked=False)] == []

    account.delete()
    assert group.service_accounts.list() == []


def test_project_accounts_through_python_gitlab_when_the_instance_has_them(gl_team):
    gl_team.instance.settings(project_service_accounts=True)
    project = gl_team.as_user('carol').projects.get('team/app', lazy=True)
    account = project.service_accounts.create({'name': 'Mobb'})
    assert re.fullmatch(r'service_account_project_\d+_[0-9a-f]{32}', account.username)
    assert [a.id for a in project.service_accounts.list()] == [account.id]
    project.service_accounts.update(account.id, {'username': 'mobb-app'})
    token = account.access_tokens.create({'name': 'ci', 'scopes': ['api']})
    rotated = account.access_tokens.rotate(token.id, expires_at=gl_team.day(20))
    assert rotated['expires_at'] == gl_team.day(20)
    account.access_tokens.delete(rotated['id'])
    project.service_accounts.delete(account.id)
    assert project.service_accounts.list() == []


def test_project_routes_do_not_exist_until_the_setting_is_on(gl_team):
    assert gl_team.instance.settings()['project_service_accounts'] is False
    for response in (gl_team.admin_raw('GET', '/projects/team%2Fapp/service_accounts'),
                     gl_team.raw('POST', '/projects/team%2Fapp/service_accounts'),
                     gl_team.raw('GET', '/projects/1/service_accounts/2/personal_access_tokens', token='glpat-x')):
        assert (response.status_code, response.json()) == (404, {'error': '404 Not Found'})


# ------------------------------------------------------------------------ permissions
def test_instance_routes_are_for_administrators(gl_team):
    for method, path in (('POST', '/service_accounts'), ('GET', '/service_accounts'),
                         ('PATCH', '/service_accounts/1')):
        anonymous = gl_team.raw(method, path)
        assert (anonymous.status_code, message(anonymous)) == (401, '401 Unauthorized')
        owner = gl_team.raw(method, path, token=gl_team.secrets['alice'])
        assert (owner.status_code, message(owner)) == (403, '403 Forbidden')
    with pytest.raises(python_gitlab.GitlabCreateError) as refused:
        gl_team.as_user('alice').service_accounts.create({})
    assert refused.value.response_code == 403
    assert gl_team.instance.users()[-1]['username'] == 'erin'


def test_group_owners_create_and_delete_only_when_the_instance_allows_it(gl_team):
    owner = gl_team.as_user('alice').groups.get('team', lazy=True)
    with pytest.raises(python_gitlab.GitlabCreateError) as refused:
        owner.service_accounts.create({'name': 'Mobb'})
    assert (refused.value.response_code, refused.value.error_message) == (400, NO_PERMISSION_IN_GROUP)
    made_by_admin = seed_account(gl_team, group='team')
    denied = gl_team.raw('DELETE', f'/groups/team/service_accounts/{made_by_admin["id"]}', token=gl_team.secrets['alice'])
    assert (denied.status_code, message(denied)) == (403, '403 Forbidden')
    # The gate (list, update, tokens) needs only the Owner role.
    assert [a.id for a in owner.service_accounts.list()] == [made_by_admin['id']]

    gl_team.instance.settings(allow_top_level_group_owners_to_create_service_accounts=True)
    created = owner.service_accounts.create({'name': 'Mobb'})
    owner.service_accounts.delete(made_by_admin['id'])
    assert [a.id for a in owner.service_accounts.list()] == [created.id]


def test_group_maintainers_and_strangers_are_refused(gl_team):
    account = seed_account(gl_team, group='team')
    for suffix in ('', f'/{account["id"]}', f'/{account["id"]}/personal_access_tokens'):
        maintainer = gl_team.raw('GET', f'/groups/team/service_accounts{suffix}', token=gl_team.secrets['dave'])
        assert (maintainer.status_code, message(maintainer)) == (403, '403 Forbidden')
        stranger = gl_team.raw('GET', f'/groups/team/service_accounts{suffix}', token=gl_team.secrets['erin'])
        assert (stranger.status_code, message(stranger)) == (404, '404 Group Not Found')
        unknown = gl_team.admin_raw('GET', f'/groups/nowhere/service_accounts{suffix}')
        assert (unknown.status_code, message(unknown)) == (404, '404 Group Not Found')


def test_project_maintainers_pass_the_gate_and_developers_do_not(gl_team):
    gl_team.instance.settings(project_service_accounts=True)
    created = gl_team.raw('POST', '/projects/team%2Fapp/service_accounts', token=gl_team.secrets['carol'])
    assert created.status_code == 201
    developer = gl_team.raw('GET', '/projects/team%2Fapp/service_accounts', token=gl_team.secrets['bob'])
    assert (developer.status_code, message(developer)) == (403, '403 Forbidden')
    unknown = gl_team.admin_raw('GET', '/projects/team%2Fnothing/service_accounts')
    assert (unknown.status_code, message(unknown)) == (404, '404 Project Not Found')
    # No sole-owner check on project accounts.
    gl_team.instance.seed(members=[{'username': created.json()['username'], 'group': 'other', 'access_level': 50}])
    deleted = gl_team.admin_raw('DELETE', f'/projects/team%2Fapp/service_accounts/{created.json()["id"]}')
    assert deleted.status_code == 204


def test_subgroups_have_no_service_accounts_in_gitlab_18(gl_team):
    gl_team.instance.settings(allow_top_level_group_owners_to_create_service_accounts=True)
    for token in (gl_team.instance.admin_token, gl_team.secrets['alice']):
        refused = gl_team.raw('POST', '/groups/team%2Fsub/service_accounts', token=token, json={'name': 'Mobb'})
        assert (refused.status_code, message(refused)) == (400, NO_PERMISSION_IN_GROUP)
    listed = gl_team.admin_raw('GET', '/groups/team%2Fsub/service_accounts')
    assert (listed.status_code, listed.json()) == (200, [])
    parent_account = seed_account(gl_team, group='team')
    missing = gl_team.admin_raw('GET', f'/groups/team%2Fsub/service_accounts/{parent_account["id"]}')
    assert (missing.status_code, message(missing)) == (404, '404 User Not Found')
    with pytest.raises(ControlError, match='top-level groups only'):
        seed_account(gl_team, group='team/sub')
    assert [u['user_type'] for u in gl_team.instance.users()].count('service_account') == 1


def test_other_accounts_are_not_found_under_a_group(gl_team):
    instance_account = seed_account(gl_team)
    gl_team.instance.seed(groups=[{'path': 'rival'}])
    rival_account = seed_account(gl_team, group='rival')
    for account in (instance_account, rival_account, {'id': gl_team.user_ids['bob']}, {'id': 999}):
        base = f'/groups/team/service_accounts/{account["id"]}'
        for method, suffix in (('GET', ''), ('PATCH', ''), ('DELETE', ''), ('GET', '/personal_access_tokens'),
                               ('POST', '/personal_access_tokens'), ('DELETE', '/personal_access_tokens/1'),
                               ('POST', '/personal_access_tokens/1/rotate')):
            response = gl_team.admin_raw(method, base + suffix, json={'name': 'n', 'scopes': ['api']})
            assert (response.status_code, message(response)) == (404, '404 User Not Found'), (method, suffix)
    assert gl_team.admin_raw('GET', f'/users/{instance_account["id"]}').status_code == 200


def test_tokens_of_someone_else_are_not_found_under_an_account(gl_team):
    gl_team.instance.settings(project_service_accounts=True)
    for kind, path, rotate_message in (('group', 'team', '404 Not Found'),
                                       ('project', 'team%2Fapp', '404 Personal Access Token Not Found')):
        account = seed_account(gl_team, **{kind: path.replace('%2F', '/')})
        other = seed_account(gl_team, **{kind: path.replace('%2F', '/')})
        foreign = seed_token(gl_team, other['username'])
        base = f'/{kind}s/{path}/service_accounts/{account["id"]}/personal_access_tokens/{foreign["id"]}'
        revoked = gl_team.admin_raw('DELETE', base)
        assert (revoked.status_code, message(revoked)) == (404, '404 Personal Access Token Not Found')
        rotated = gl_team.admin_raw('POST', base + '/rotate')
        assert (rotated.status_code, message(rotated)) == (404, rotate_message)
        assert gl_team.gl(foreign['token']).personal_access_tokens.get('self').revoked is False


# ------------------------------------------------------------------------------ names
def test_generated_usernames_emails_and_names(gl_team):
    gl_team.instance.settings(project_service_accounts=True)
    group_id = gl_team.gl().groups.get('team').id
    project_id = gl_team.gl().projects.get('team/app').id
    expected = {'/service_accounts': 'service_account',
                '/groups/team/service_accounts': f'service_account_group_{group_id}',
                '/projects/team%2Fapp/service_accounts': f'service_account_project_{project_id}'}
    for path, prefix in expected.items():
        body = gl_team.admin_raw('POST', path).json()
        assert sorted(body) == ['email', 'id', 'name', 'public_email', 'username']
        assert re.fullmatch(prefix + r'_[0-9a-f]{32}', body['username'])
        assert (body['name'], body['email'], body['public_email']) == (
            'Service account user', f'{body["username"]}@noreply.127.0.0.1', None)
    blank = gl_team.admin_raw('POST', '/service_accounts', json={'name': '', 'username': '', 'email': ''}).json()
    assert blank['name'] == 'Service account user' and blank['username'].startswith('service_account_')
    # The generated e-mail keeps the generated name even when a username is chosen.
    chosen = gl_team.admin_raw('POST', '/service_accounts', json={'username': 'mobb-bot'}).json()
    assert re.fullmatch(r'service_account_[0-9a-f]{32}@noreply\.127\.0\.0\.1', chosen['email'])


def test_clashing_names_are_refused_with_gitlab_sentences(gl_team):
    taken = gl_team.admin_raw('POST', '/service_accounts', json={'username': 'ALICE'})
    assert (taken.status_code, message(taken)) == (400, '400 Bad request - Username has already been taken')
    namespace = gl_team.admin_raw('POST', '/service_accounts', json={'username': 'team'})
    assert message(namespace) == '400 Bad request - Username has already been taken'
    both = gl_team.admin_raw('POST', '/groups/team/service_accounts',
                             json={'username': 'bob', 'email': 'bob@example.com'})
    assert (both.status_code, message(both)) == (
        400, '400 Bad request - Email has already been taken and Username has already been taken')
    malformed = gl_team.admin_raw('POST', '/service_accounts', json={'username': '-x.git', 'email': 'nobody'})
    assert message(malformed).startswith('400 Bad request - Email is invalid and Username can contain only')

    account = seed_account(gl_team)
    clash = gl_team.admin_raw('PATCH', f'/service_accounts/{account["id"]}', json={'username': 'carol'})
    assert (clash.status_code, clash.json()) == (400, {'message': 'Username has already been taken'})
    human = gl_team.admin_raw('PATCH', f'/service_accounts/{gl_team.user_ids["bob"]}', json={'name': 'x'})
    assert (human.status_code, human.json()) == (400, {'message': 'User is not a service account'})
    unknown = gl_team.admin_raw('PATCH', '/service_accounts/999', json={'name': 'x'})
    assert (unknown.status_code, unknown.json()) == (404, {'message': '404 Not found'})
    unchanged = gl_team.admin_raw('PATCH', f'/service_accounts/{account["id"]}', json={'name': ''})
    assert unchanged.json()['name'] == 'Service account user'
    assert [u['username'] for u in gl_team.instance.users()].count('bob') == 1


# ----------------------------------------------------------------------------- expiry
def token_routes(t, kind):
    """(create path, rotate path of a token id) for a new account of this kind."""
    if kind == 'instance':
        account = seed_account(t)
        return f'/users/{account["id"]}/personal_access_tokens', '/personal_access_tokens/{}/rotate'
    account = seed_account(t, **{kind: 'team' if kind == 'group' else 'team/app'})
    base = f'/{kind}s/{"team" if kind == "group" else "team%2Fapp"}/service_accounts/{account["id"]}/personal_access_tokens'
    return base, base + '/{}/rotate'


@pytest.mark.parametrize('kind', ['instance', 'group', 'project'])
def test_expiry_defaults_when_enforced(gl_team, kind):
    gl_team.instance.settings(project_service_accounts=True, max_lifetime_days=100)
    create, rotate = token_routes(gl_team, kind)
    created = gl_team.admin_raw('POST', create, json={'name': 'ci', 'scopes': ['api']})
    assert (created.status_code, created.json()['expires_at']) == (201, gl_team.day(100))
    rotated = gl_team.admin_raw('POST', rotate.format(created.json()['id']))
    assert (rotated.status_code, rotated.json()['expires_at']) == (200, gl_team.day(7))
    gl_team.instance.settings(max_lifetime_days=3)
    capped = gl_team.admin_raw('POST', rotate.format(rotated.json()['id']))
    assert capped.json()['expires_at'] == gl_team.day(3)
    too_far = gl_team.admin_raw('POST', create, json={'name': 'ci', 'scopes': ['api'], 'expires_at': gl_team.day(4)})
    assert (too_far.status_code, message(too_far)) == (422, f'Expires at must be before {gl_team.day(3)}')


@pytest.mark.parametrize('kind', ['instance', 'group', 'project'])
def test_tokens_never_expire_by_default_when_not_enforced(gl_team, kind):
    gl_team.instance.settings(project_service_accounts=True, service_access_tokens_expiration_enforced=False,
                              require_expiry=True)
    create, rotate = token_routes(gl_team, kind)
    created = gl_team.admin_raw('POST', create, json={'name': 'ci', 'scopes': ['api']})
    assert created.json()['expires_at'] is None
    rotated = gl_team.admin_raw('POST', rotate.format(created.json()['id']))
    assert (rotated.status_code, rotated.json()['expires_at']) == (200, None)
    chosen = gl_team.admin_raw('POST', rotate.format(rotated.json()['id']), json={'expires_at': gl_team.day(40)})
    assert chosen.json()['expires_at'] == gl_team.day(40)
    # Human users keep the general rule.
    human = gl_team.admin_raw('POST', f'/users/{gl_team.user_ids["bob"]}/personal_access_tokens',
                              json={'name': 'n', 'scopes': ['api']})
    assert human.json()['expires_at'] == gl_team.day(365)


def test_the_free_tier_always_enforces_expiry_and_seeding_follows_the_rule(gl_team):
    account = seed_account(gl_team)
    gl_team.instance.settings(service_access_tokens_expiration_enforced=False)
    assert seed_token(gl_team, account['username'])['expires_at'] is None
    assert seed_token(gl_team, account['username'], expires_at=None)['expires_at'] is None
    gl_team.instance.settings(tier='free')
    assert seed_token(gl_team, account['username'])['expires_at'] == gl_team.day(365)
    created = gl_team.admin_raw('POST', f'/users/{account["id"]}/personal_access_tokens',
                                json={'name': 'ci', 'scopes': ['api']})
    assert created.json()['expires_at'] == gl_team.day(365)
    rotated = gl_team.admin_raw('POST', f'/personal_access_tokens/{created.json()["id"]}/rotate')
    assert rotated.json()['expires_at'] == gl_team.day(7)


# ------------------------------------------------------------------------------ tiers
def test_the_free_tier_has_no_service_accounts(gl_team):
    account = seed_account(gl_team, group='team')
    gl_team.instance.settings(tier='free')
    created = gl_team.admin_raw('POST', '/service_accounts')
    assert (created.status_code, message(created)) == (
        403, '403 Forbidden - User does not have permission to create a service account.')
    for method, path in (('GET', '/service_accounts'), ('POST', '/groups/team/service_accounts'),
                         ('GET', f'/groups/team/service_accounts/{account["id"]}/personal_access_tokens')):
        response = gl_team.admin_raw(method, path)
        assert (response.status_code, message(response)) == (403, '403 Forbidden')
    assert [u['user_type'] for u in gl_team.instance.users()].count('service_account') == 1


def test_premium_allows_one_service_account_per_seat(gl_team):
    seed_account(gl_team)
    gl_team.instance.settings(tier='premium', licensed_seats=2)
    assert gl_team.admin_raw('POST', '/service_accounts').status_code == 201
    instance_route = gl_team.admin_raw('POST', '/service_accounts')
    assert (instance_route.status_code, message(instance_route)) == (403, f'403 Forbidden - {NO_SEATS}')
    group_route = gl_team.admin_raw('POST', '/groups/team/service_accounts')
    assert (group_route.status_code, message(group_route)) == (400, f'400 Bad request - {NO_SEATS}')
    gl_team.instance.settings(tier='ultimate')
    assert gl_team.admin_raw('POST', '/groups/team/service_accounts').status_code == 201
    gl_team.instance.settings(tier='premium', licensed_seats=None)
    assert gl_team.admin_raw('POST', '/service_accounts').status_code == 201


def test_settings_refuse_unknown_values(gl_team):
    for bad, complaint in (({'tier': 'gold'}, 'tier must be one of'), ({'licensed_seats': -1}, 'licensed_seats'),
                           ({'licensed_seats': True}, 'licensed_seats'),
                           ({'project_service_accounts': 'yes'}, 'project_service_accounts must be true or false'),
                           ({'service_access_tokens_expiration_enforced': 1}, 'enforced must be true or false')):
        with pytest.raises(ControlError, match=complaint):
            gl_team.instance.settings(**bad)
    assert gl_team.instance.settings()['tier'] == 'ultimate'
    assert gl_team.instance.settings()['licensed_seats'] is None


# ------------------------------------------------------------------------- rate limit
def test_ten_creations_a_minute_per_user(gl_team):
    gl_team.instance.seed(users=[{'username': 'ops', 'admin': True}])
    ops = seed_token(gl_team, 'ops', scopes=['api'])['token']
    statuses = [gl_team.admin_raw('POST', '/service_accounts', json={'username': 'root-sa'}).status_code
                for _attempt in range(5)]
    statuses += [gl_team.admin_raw('POST', '/groups/team/service_accounts').status_code for _attempt in range(5)]
    assert statuses == [201] + [400] * 4 + [201] * 5  # refused attempts count too
    limited = gl_team.admin_raw('POST', '/service_accounts')
    assert (limited.status_code, limited.json(), limited.headers['Retry-After']) == (429, RATE_LIMITED, '60')
    assert gl_team.raw('POST', '/service_accounts', token=ops).status_code == 201
    gl_team.instance.advance_clock(1 / 24 / 60)
    assert gl_team.admin_raw('POST', '/service_accounts').status_code == 201
    assert [u['user_type'] for u in gl_team.instance.users()].count('service_account') == 8


# ----------------------------------------------------------------------------- deletion
def test_deleting_an_instance_account_kills_its_tokens_and_memberships(gl_team):
    account = seed_account(gl_team, username='mobb-bot')
    gl_team.instance.seed(members=[{'username': 'mobb-bot', 'project': 'team/app', 'access_level': 30}])
    token = seed_token(gl_team, 'mobb-bot')
    assert gl_team.gl(token['token']).projects.get('team/app').id
    refused = gl_team.raw('DELETE', f'/users/{account["id"]}', token=gl_team.secrets['alice'])
    assert (refused.status_code, message(refused)) == (403, '403 Forbidden')

    assert gl_team.admin_raw('DELETE', f'/users/{account["id"]}').status_code == 204
    with pytest.raises(python_gitlab.GitlabAuthenticationError):
        gl_team.gl(token['token']).auth()
    assert token['id'] not in [t['id'] for t in gl_team.instance.tokens()]
    assert 'mobb-bot' not in [m['username'] for m in gl_team.instance.members()]
    gone = gl_team.admin_raw('GET', f'/users/{account["id"]}')
    assert (gone.status_code, message(gone)) == (404, '404 User Not Found')
    again = gl_team.admin_raw('DELETE', f'/users/{account["id"]}')
    assert (again.status_code, message(again)) == (404, '404 User Not Found')
    assert token['token'] in gl_team.instance.secrets()


@pytest.mark.parametrize('path', ['/users/{id}', '/groups/team/service_accounts/{id}'])
def test_the_sole_owner_of_a_group_is_removed_only_with_hard_delete(gl_team, path):
    account = seed_account(gl_team, group='team', username='owner-bot')
    gl_team.instance.seed(groups=[{'path': 'bots'}],
                          members=[{'username': 'owner-bot', 'group': 'bots', 'access_level': 50}])
    token = seed_token(gl_team, 'owner-bot')
    refused = gl_team.admin_raw('DELETE', path.format(id=account['id']))
    assert (refused.status_code, refused.json()) == (
        409, {'message': 'User cannot be removed while is the sole-owner of a group'})
    assert gl_team.admin_raw('DELETE', path.format(id=account['id']), params={'hard_delete': 'true'}).status_code == 204
    assert gl_team.admin_raw('GET', f'/users/{account["id"]}').status_code == 404
    with pytest.raises(python_gitlab.GitlabAuthenticationError):
        gl_team.gl(token['token']).auth()


# ---------------------------------------------------------------------- membership
def test_a_service_account_reaches_a_project_only_as_a_member(gl_team):
    account = seed_account(gl_team, group='team')
    token = gl_team.admin_raw('POST', f'/groups/team/service_accounts/{account["id"]}/personal_access_tokens',
                              json={'name': 'mobb', 'scopes': ['api']}).json()['token']
    outside = gl_team.raw('GET', '/projects/team%2Fapp', token=token)
    assert (outside.status_code, message(outside)) == (404, '404 Project Not Found')
    assert gl_team.raw('GET', '/user', token=token).json()['username'] == account['username']

    project = gl_team.as_user('carol').projects.get('team/app')
    project.members.create({'user_id': account['id'], 'access_level': 30})
    assert gl_team.gl(token).projects.get('team/app').permissions['project_access']['access_level'] == 30
    group_outside = gl_team.raw('GET', '/groups/team%2Fsub', token=token)
    assert group_outside.status_code == 404

    project.members.delete(account['id'])
    assert gl_team.raw('GET', '/projects/team%2Fapp', token=token).status_code == 404
    gl_team.gl().groups.get('team').members.create({'user_id': account['id'], 'access_level': 20})
    assert gl_team.raw('GET', '/projects/team%2Fsub%2Flib', token=token).status_code == 200


# --------------------------------------------------------------------------- users API
def test_get_user_shows_administrators_more(gl_team):
    account = seed_account(gl_team, group='team')
    as_admin = gl_team.admin_raw('GET', f'/users/{account["id"]}').json()
    group_id = gl_team.gl().groups.get('team').id
    assert (as_admin['bot'], as_admin['is_admin'], as_admin['external']) == (True, False, True)
    assert (as_admin['provisioned_by_group_id'], as_admin['email']) == (group_id, account['email'])
    as_user = gl_team.raw('GET', f'/users/{account["id"]}', token=gl_team.secrets['bob']).json()
    assert as_user['bot'] is True and as_user['username'] == account['username']
    assert not {'is_admin', 'email', 'external', 'provisioned_by_group_id'} & set(as_user)
    human = gl_team.admin_raw('GET', f'/users/{gl_team.user_ids["bob"]}').json()
    assert (human['bot'], human['external'], human['is_admin']) == (False, False, False)


# ----------------------------------------------------------------------------- control
def test_seeded_service_accounts_work_with_members_and_tokens(gl_team):
    seeded = gl_team.instance.seed(
        service_accounts=[{'username': 'mobb-bot', 'name': 'Mobb', 'email': 'mobb@example.com'},
                          {'group': 'fresh'}, {'project': 'team/app'}],
        members=[{'username': 'mobb-bot', 'project': 'team/app', 'access_level': 40}],
        tokens=[{'kind': 'personal', 'user': 'mobb-bot', 'name': 'mobb', 'expires_at': None}])
    first, grouped, projected = seeded['service_accounts']
    assert (first['username'], first['email']) == ('mobb-bot', 'mobb@example.com')
    users = {u['id']: u for u in gl_team.instance.users()}
    assert users[grouped['id']]['provisioned_by_group_id'] == gl_team.gl().groups.get('fresh').id
    assert users[projected['id']]['provisioned_by_project_id'] == gl_team.gl().projects.get('team/app').id
    assert {'username': 'mobb-bot', 'source_type': 'project', 'source_path': 'team/app', 'access_level': 40}.items() <= \
        next(m for m in gl_team.instance.members() if m['username'] == 'mobb-bot').items()
    token = seeded['tokens'][0]
    assert (token['expires_at'], token['user_id']) == (None, first['id'])
    assert gl_team.gl(token['token']).projects.get('team/app').path_with_namespace == 'team/app'


def test_bad_service_account_seeds_change_nothing(gl_team):
    before = gl_team.instance.users()
    for bad, complaint in (({'nickname': 'x'}, 'unknown service account fields'),
                           ({'group': 'team', 'project': 'team/app'}, 'a group or a project, not both'),
                           ({'project': 'no/such'}, "no project 'no/such'"),
                           ({'username': 'alice'}, 'Username has already been taken')):
        with pytest.raises(ControlError, match=complaint):
            gl_team.instance.seed(groups=[{'path': 'new'}], service_accounts=[bad])
    assert gl_team.instance.users() == before
    assert gl_team.admin_raw('GET', '/groups/new').status_code == 404


def test_no_secret_in_the_request_log_or_the_records(gl_team):
    account = seed_account(gl_team, group='team')
    base = f'/groups/team/service_accounts/{account["id"]}/personal_access_tokens'
    created = gl_team.admin_raw('POST', base, json={'name': 'ci', 'scopes': ['api']}).json()
    rotated = gl_team.admin_raw('POST', f'{base}/{created["id"]}/rotate').json()
    gl_team.raw('GET', '/user', params={'private_token': rotated['token']})
    secrets = gl_team.instance.secrets()
    assert {created['token'], rotated['token']} <= set(secrets)
    observed = str([gl_team.instance.requests(), gl_team.instance.users(), gl_team.instance.members(),
                    gl_team.instance.tokens()])
    assert not [s for s in secrets if s in observed]
