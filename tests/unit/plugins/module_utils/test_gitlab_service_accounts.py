"""Service accounts and memberships: parse_memberships alone, the classes over real HTTP
against the local GitLab."""
from __future__ import annotations

import pytest

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import CONNECTION_ARGSPEC, GitLabModuleError, connect
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_service_accounts import (
    Membership, Memberships, ServiceAccounts, TargetsMissing, find_targets, parse_memberships, role_name)
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_tokens import ServiceAccountTokens

# ---- parse_memberships -------------------------------------------------------------------


def test_memberships_parse_with_developer_as_the_default_role():
    assert parse_memberships([
        {'project': ' acme/payments '},
        {'group': 'acme', 'access_level': 'Maintainer'},
        {'project': 42, 'access_level': 20},
        {'group': 'acme/platform', 'access_level': '50', 'project': None},
    ]) == [
        Membership('project', 'acme/payments', 30),
        Membership('group', 'acme', 40),
        Membership('project', '42', 20),
        Membership('group', 'acme/platform', 50),
    ]


def test_no_memberships_is_an_empty_list():
    assert parse_memberships([]) == [] and parse_memberships(None) == []


@pytest.mark.parametrize('values, message', [
    ([{'access_level': 'developer'}],
     r'^memberships\[0\] names neither project nor group: give exactly one, as an id or full path, for example '
     r'\{project: acme/app, access_level: developer\}; use one entry per target$'),
    ([{'project': 'acme/app'}, {'project': 'acme/api', 'group': 'acme'}],
     r'^memberships\[1\] names both project and group: give exactly one'),
    ([{'project': '  '}], r'^memberships\[0\] has an empty project: give its id or full path, such as acme/app$'),
    ([{'group': 'acme', 'access_level': 'admin'}],
     r"^memberships\[0\]: access_level must be one of guest, planner, reporter, developer, maintainer, owner "
     r"\(or 10, 15, 20, 30, 40, 50\), got 'admin'$"),
    ([{'project': 'acme/app'}, {'group': 'acme', 'access_level': 5}],
     r'^memberships\[1\]: access_level 5 is below guest, and a membership needs guest \(10\) or higher: to take a '
     r'membership away, leave the entry out and set purge_memberships$'),
    ([{'group': 'acme', 'access_level': 'minimal_access'}], r'^memberships\[0\]: access_level minimal_access is below'),
    ([{'group': 'acme', 'access_level': 0}], r'^memberships\[0\]: access_level 0 is below guest'),
    ([{'project': 'acme/app'}, {'group': 'acme'}, {'project': 'ACME/App', 'access_level': 'maintainer'}],
     r'^memberships\[2\] declares project ACME/App again, as memberships\[0\] did: declare each project or group '
     r'once, with the role the account needs there$'),
    ([{'projet': 'acme/app'}],
     r'^memberships\[0\] has unknown key\(s\) projet: an entry takes project or group, and access_level$'),
    (['acme/app'], r"^memberships\[0\] must be a dict such as \{project: acme/app, access_level: developer\}, "
                   r"got 'acme/app'$"),
])
def test_each_bad_entry_is_named_with_what_to_write(values, message):
    with pytest.raises(GitLabModuleError, match=message):
        parse_memberships(values)


def test_the_option_name_is_the_callers():
    with pytest.raises(GitLabModuleError, match=r'^service_account_memberships\[0\] names neither'):
        parse_memberships([{}], option='service_account_memberships')


def test_the_same_path_as_project_and_as_group_are_two_targets():
    assert len(parse_memberships([{'project': 'acme/app'}, {'group': 'acme/app'}])) == 2


@pytest.mark.parametrize('level, name', [(30, 'developer'), (15, 'planner'), (5, 'minimal_access'),
                                         (60, '60'), (None, None)])
def test_role_names_are_gitlabs(level, name):
    assert role_name(level) == name


# ---- over HTTP against the local GitLab ----------------------------------------------------

def active_tokens(accounts, account):
    """The account's active tokens, as the token modules and the info module list them."""
    owner = ServiceAccountTokens(accounts.client, account['username'], accounts)
    owner.found(account)
    return owner.list_tokens()


def client_for(gitlab, token=None):
    params = {name: spec.get('default') for name, spec in CONNECTION_ARGSPEC.items()}
    params.update(api_url=gitlab.url, api_token=token or gitlab.admin_token)
    client, _secrets = connect(params)
    return client


def calls(gitlab):
    return [(entry['method'], entry['path'], entry['status']) for entry in gitlab.requests()]


def levels(gitlab, username):
    """{(kind, path): access level} of the user's direct memberships, as the server holds them."""
    return {(member['source_type'], member['source_path']): member['access_level']
            for member in gitlab.members() if member['username'] == username}


@pytest.fixture
def acme(gitlab):
    """Group acme with subgroup acme/platform and project acme/payments; alice Owns acme."""
    return gitlab.seed(users=[{'username': 'alice'}], groups=[{'path': 'acme'}, {'path': 'acme/platform'}],
                       projects=[{'path': 'acme/payments'}],
                       members=[{'username': 'alice', 'group': 'acme', 'access_level': 50}],
                       tokens=[{'kind': 'personal', 'user': 'alice', 'name': 'alice'}])


def alice_token(acme):
    return acme['tokens'][0]['token']


def test_instance_accounts_are_created_found_in_any_case_renamed_and_deleted(gitlab):
    accounts = ServiceAccounts(client_for(gitlab))
    assert accounts.label() == 'the instance' and accounts.find('mobb-bot') is None
    created = accounts.create('mobb-bot', 'Mobb')
    assert (created['username'], created['name']) == ('mobb-bot', 'Mobb') and created['email']
    assert accounts.find('MOBB-Bot') == created
    assert accounts.update(created, 'Mobb scanner') == dict(created, name='Mobb scanner')
    assert accounts.token_manager(created) is None
    accounts.delete(created)
    assert accounts.find('mobb-bot') is None
    assert [call for call in calls(gitlab) if call[0] != 'GET'] == [
        ('POST', '/api/v4/service_accounts', 201),
        ('PATCH', f'/api/v4/service_accounts/{created["id"]}', 200),
        ('DELETE', f'/api/v4/users/{created["id"]}', 204)]


def test_a_created_account_without_a_name_gets_gitlabs_default(gitlab):
    created = ServiceAccounts(client_for(gitlab)).create('mobb-bot')
    assert created['name'] == 'Service account user'
    record = next(user for user in gitlab.users() if user['id'] == created['id'])
    assert (record['user_type'], record['provisioned_by_group_id']) == ('service_account', None)


def test_hard_delete_is_sent_only_when_asked(gitlab):
    accounts = ServiceAccounts(client_for(gitlab))
    first, second = accounts.create('first'), accounts.create('second')
    accounts.delete(first)
    accounts.delete(second, hard_delete=True)
    deletes = [entry for entry in gitlab.requests() if entry['method'] == 'DELETE']
    assert [entry['query'] for entry in deletes] == [{}, {'hard_delete': 'true'}]


def test_group_accounts_live_in_their_group_and_their_tokens_under_it(gitlab, acme):
    gitlab.seed(service_accounts=[{'username': 'instance-bot'}])
    accounts = ServiceAccounts(client_for(gitlab), 'acme')
    created = accounts.create('acme-bot', 'Acme bot')
    assert [account['username'] for account in accounts.find_all()] == ['acme-bot']
    assert accounts.find('instance-bot') is None
    record = next(user for user in gitlab.users() if user['id'] == created['id'])
    assert record['provisioned_by_group_id'] == acme['groups'][0]['id']  # acme
    manager = accounts.token_manager(created)
    issued = manager.create({'name': 'mobb', 'scopes': ['api']})
    assert [token['id'] for token in active_tokens(accounts, created)] == [issued.id]
    assert issued.user_id == created['id']
    assert accounts.update(created, 'Renamed')['name'] == 'Renamed'
    accounts.delete(created)
    assert accounts.find('acme-bot') is None


def test_the_instance_scope_leaves_group_accounts_to_their_group(gitlab, acme):
    seeded = gitlab.seed(service_accounts=[{'username': 'mobb-bot'}, {'username': 'acme-bot', 'group': 'acme'}])
    accounts = ServiceAccounts(client_for(gitlab))
    mobb, acme_bot = seeded['service_accounts']
    assert [account['username'] for account in accounts.find_all()] == ['mobb-bot']
    assert accounts.owner(accounts.find('mobb-bot')) is None
    assert accounts.owner(acme_bot) == ('group', acme['groups'][0]['id'])
    with pytest.raises(GitLabModuleError) as caught:
        accounts.find('ACME-bot')
    assert str(caught.value) == (
        "service account 'acme-bot' (id %s) belongs to group %s, not to the instance: set group to that group to "
        'manage it, or choose another username' % (acme_bot['id'], acme['groups'][0]['id']))
    gitlab.clear_requests()
    assert accounts.find('mobb-bot')['id'] == mobb['id']
    assert calls(gitlab) == [('GET', '/api/v4/service_accounts', 200), ('GET', f'/api/v4/users/{mobb["id"]}', 200)]


def test_instance_account_tokens_are_its_personal_access_tokens(gitlab):
    seeded = gitlab.seed(service_accounts=[{'username': 'mobb-bot'}],
                         tokens=[{'kind': 'personal', 'user': 'mobb-bot', 'name': 'mobb'},
                                 {'kind': 'personal', 'user': 'mobb-bot', 'name': 'old', 'revoked': True}])
    accounts = ServiceAccounts(client_for(gitlab))
    account = accounts.find('mobb-bot')
    assert account['id'] == seeded['service_accounts'][0]['id']
    assert [token['id'] for token in active_tokens(accounts, account)] == [seeded['tokens'][0]['id']]
    assert all('token' not in token for token in active_tokens(accounts, account))


@pytest.mark.parametrize('group', ['acme/platform', '/acme/platform/'])
def test_a_subgroup_path_is_refused_before_any_request(gitlab, group):
    with pytest.raises(GitLabModuleError) as caught:
        ServiceAccounts(client_for(gitlab), group)
    assert str(caught.value) == (
        "group: service accounts belong to top-level groups, and 'acme/platform' is a subgroup: use 'acme' "
        "(its top-level group), and give the account a membership of 'acme/platform'")
    assert gitlab.requests() == []


def test_a_subgroup_id_is_refused_on_create_after_reading_the_group(gitlab, acme):
    subgroup = next(group for group in acme['groups'] if group['path'] == 'acme/platform')
    accounts = ServiceAccounts(client_for(gitlab), str(subgroup['id']))
    with pytest.raises(GitLabModuleError) as caught:
        accounts.create('acme-bot')
    assert str(caught.value) == (
        "group: service accounts belong to top-level groups, and group %s is the subgroup 'acme/platform': "
        "use 'acme' (its top-level group), and give the account a membership of 'acme/platform'" % subgroup['id'])
    assert calls(gitlab) == [('GET', f'/api/v4/groups/{subgroup["id"]}', 200)]


def test_a_top_level_group_id_creates(gitlab, acme):
    top = next(group for group in acme['groups'] if group['path'] == 'acme')
    created = ServiceAccounts(client_for(gitlab), top['id']).create('acme-bot')
    assert [call[:2] for call in calls(gitlab)] == [
        ('GET', f'/api/v4/groups/{top["id"]}'), ('POST', f'/api/v4/groups/{top["id"]}/service_accounts')]
    assert created['username'] == 'acme-bot'


def test_an_unknown_group_says_so(gitlab):
    with pytest.raises(GitLabModuleError) as caught:
        ServiceAccounts(client_for(gitlab), 'nope').find('acme-bot')
    assert str(caught.value) == (
        "Could not list the service accounts of group 'nope': GitLab answered 404: Group Not Found. The group "
        "does not exist or the api_token's user cannot see it: set group to the id or full path of a top-level "
        'group')


def test_a_non_administrator_is_told_who_manages_instance_accounts(gitlab, acme):
    accounts = ServiceAccounts(client_for(gitlab, alice_token(acme)))
    with pytest.raises(GitLabModuleError) as caught:
        accounts.create('mobb-bot')
    assert str(caught.value) == (
        "Could not create service account 'mobb-bot' of the instance: GitLab answered 403: Forbidden. Only "
        "administrators manage instance service accounts: use an administrator's token, or a top-level group's "
        "service account (group) with a group Owner's token")
    with pytest.raises(GitLabModuleError, match=r"^Could not list the service accounts of the instance: GitLab "
                                                r"answered 403: Forbidden. Only administrators manage"):
        accounts.find('mobb-bot')
    assert [user for user in gitlab.users() if user['user_type'] == 'service_account'] == []


def test_a_group_owner_creates_only_when_the_instance_allows_it(gitlab, acme):
    accounts = ServiceAccounts(client_for(gitlab, alice_token(acme)), 'acme')
    with pytest.raises(GitLabModuleError) as caught:
        accounts.create('acme-bot')
    assert str(caught.value) == (
        "Could not create service account 'acme-bot' of group 'acme': GitLab answered 400: Bad request - User "
        "does not have permission to create a service account in this group. Creating and deleting a group's "
        "service accounts needs an administrator's api_token, or a group Owner's once an administrator turns "
        'on the instance setting allow_top_level_group_owners_to_create_service_accounts (Admin area > '
        'Settings > General > Account and limit)')
    gitlab.settings(allow_top_level_group_owners_to_create_service_accounts=True)
    assert accounts.create('acme-bot')['username'] == 'acme-bot'


def test_seat_and_tier_refusals_keep_gitlabs_words_and_add_advice(gitlab):
    accounts = ServiceAccounts(client_for(gitlab))
    gitlab.settings(licensed_seats=0, tier='premium')
    with pytest.raises(GitLabModuleError) as caught:
        accounts.create('mobb-bot')
    assert str(caught.value).startswith(
        "Could not create service account 'mobb-bot' of the instance: GitLab answered 403: Forbidden - No more "
        "seats are available to create Service Account User. GitLab's licence has no seat left")
    gitlab.settings(tier='free')
    with pytest.raises(GitLabModuleError) as caught:
        accounts.create('mobb-bot')
    assert 'does not include service accounts' in str(caught.value)


def test_a_taken_username_says_to_choose_another(gitlab, acme):
    with pytest.raises(GitLabModuleError) as caught:
        ServiceAccounts(client_for(gitlab)).create('alice')
    assert str(caught.value).startswith(
        "Could not create service account 'alice' of the instance: GitLab answered 400: Bad request - Username "
        'has already been taken. Another user')


def test_a_python_gitlab_without_service_accounts_is_named(gitlab):
    client = client_for(gitlab)
    del client.service_accounts  # as python-gitlab before 8.3.0 builds its client
    with pytest.raises(GitLabModuleError, match=r'^Managing instance service accounts needs python-gitlab 8\.3\.0 '
                                                r"or later \(this host has [\d.]+\): upgrade it where the module "
                                                r"runs, for example with pip install 'python-gitlab>=8\.3\.0'$"):
        ServiceAccounts(client).find('mobb-bot')
    assert gitlab.requests() == []


# ---- memberships ------------------------------------------------------------------------------

@pytest.fixture
def bot(gitlab, acme):
    return gitlab.seed(service_accounts=[{'username': 'mobb-bot'}])['service_accounts'][0]


def test_ensure_adds_then_changes_then_leaves_alone(gitlab, bot):
    memberships = Memberships(client_for(gitlab), bot['id'], 'mobb-bot')
    payments = Membership('project', 'acme/payments', 30)
    assert memberships.current(payments) is None
    assert memberships.ensure(payments, check_mode=False) == (None, 30)
    assert memberships.ensure(payments._replace(access_level=40), check_mode=False) == (30, 40)
    gitlab.clear_requests()
    assert memberships.ensure(payments._replace(access_level=40), check_mode=False) == (40, 40)
    assert gitlab.writes() == []
    assert levels(gitlab, 'mobb-bot') == {('project', 'acme/payments'): 40}


def test_ensure_in_check_mode_reads_and_predicts(gitlab, bot):
    memberships = Memberships(client_for(gitlab), bot['id'])
    assert memberships.ensure(Membership('group', 'acme', 20), check_mode=True) == (None, 20)
    assert gitlab.writes() == [] and levels(gitlab, 'mobb-bot') == {}


def test_remove_and_all(gitlab, bot):
    gitlab.seed(members=[{'username': 'mobb-bot', 'project': 'acme/payments', 'access_level': 30},
                         {'username': 'mobb-bot', 'group': 'acme/platform', 'access_level': 40}])
    memberships = Memberships(client_for(gitlab), bot['id'])
    held = memberships.all()
    assert sorted((entry['kind'], entry['access_level']) for entry in held) == [('group', 40), ('project', 30)]
    assert all(isinstance(entry['id'], int) and entry['name'] for entry in held)
    assert memberships.remove('project', 'acme/payments') is True
    assert memberships.remove('project', 'acme/payments') is False
    assert levels(gitlab, 'mobb-bot') == {('group', 'acme/platform'): 40}


def test_only_administrators_list_memberships(gitlab, acme, bot):
    with pytest.raises(GitLabModuleError) as caught:
        Memberships(client_for(gitlab, alice_token(acme)), bot['id'], 'mobb-bot').all()
    assert str(caught.value) == (
        "Could not list the memberships of service account 'mobb-bot' (user %s): GitLab answered 403: Forbidden. "
        "Only administrators can list a user's memberships (GET /users/:id/memberships), which purge_memberships "
        "needs: use an administrator's api_token, or leave purge_memberships false" % bot['id'])


def test_missing_counts_inherited_access_and_reports_what_falls_short(gitlab, bot):
    gitlab.seed(members=[{'username': 'mobb-bot', 'group': 'acme', 'access_level': 30},
                         {'username': 'mobb-bot', 'project': 'acme/payments', 'access_level': 20}])
    gitlab.seed(projects=[{'path': 'other/app'}])
    memberships = Memberships(client_for(gitlab), bot['id'])
    wanted = parse_memberships([
        {'project': 'acme/payments'},                       # Developer through acme beats its own Reporter
        {'group': 'acme/platform'},                         # inherited from acme
        {'group': 'acme', 'access_level': 'maintainer'},    # Developer < Maintainer
        {'project': 'other/app'},                           # no access at all
    ])
    assert memberships.missing(wanted) == [(wanted[2], 30), (wanted[3], None)]


def test_an_unknown_target_is_an_error_not_a_missing_membership(gitlab, bot):
    memberships = Memberships(client_for(gitlab), bot['id'])
    with pytest.raises(GitLabModuleError) as caught:
        memberships.current(Membership('project', 'acme/nope', 30))
    assert str(caught.value) == (
        'Could not read the membership of user %s in project acme/nope: GitLab answered 404: Project Not Found. '
        "GitLab has no project acme/nope, or the api_token's user cannot see it: check its full path (or id)"
        % bot['id'])
    with pytest.raises(GitLabModuleError, match=r'GitLab answered 404: Group Not Found'):
        memberships.missing([Membership('group', 'nope', 30)])


def test_find_targets_reads_each_target_once_and_the_memberships_then_use_its_id(gitlab, acme, bot):
    client = client_for(gitlab)
    platform = acme['groups'][-1]
    wanted = parse_memberships([{'project': 'acme/payments'}, {'group': str(platform['id']), 'access_level': 40}])
    gitlab.clear_requests()
    found, targets = find_targets(client, wanted)
    payments = acme['projects'][0]['id']
    assert targets == [dict(kind='project', id=payments, path='acme/payments', name=targets[0]['name']),
                       dict(kind='group', id=platform['id'], path='acme/platform', name=targets[1]['name'])]
    assert found == [wanted[0]._replace(id=payments), wanted[1]._replace(id=platform['id'])]
    memberships = Memberships(client, bot['id'], 'mobb-bot')
    assert [memberships.ensure(membership, check_mode=False) for membership in found] == [(None, 30), (None, 40)]
    assert [(method, path) for method, path, _status in calls(gitlab)] == [
        ('GET', '/api/v4/projects/acme%2Fpayments'), ('GET', f'/api/v4/groups/{platform["id"]}'),
        ('GET', f'/api/v4/projects/{payments}/members/{bot["id"]}'), ('POST', f'/api/v4/projects/{payments}/members'),
        ('GET', f'/api/v4/groups/{platform["id"]}/members/{bot["id"]}'),
        ('POST', f'/api/v4/groups/{platform["id"]}/members')]


def test_find_targets_names_every_unknown_or_invisible_target_in_one_message(gitlab, acme):
    gitlab.seed(projects=[{'path': 'other/app'}])  # alice is no member there: GitLab answers 404
    wanted = parse_memberships([{'project': 'acme/nope'}, {'project': 'acme/payments'}, {'group': 'gone'},
                                {'project': 'other/app'}], option='service_account_memberships')
    gitlab.clear_requests()
    with pytest.raises(TargetsMissing) as caught:
        find_targets(client_for(gitlab, alice_token(acme)), wanted, option='service_account_memberships')
    assert str(caught.value) == (
        "service_account_memberships: project 'acme/nope' and group 'gone' and project 'other/app' not found or not "
        "visible to the token: check the full path (or id) of each, and that the token's user can see it: a member "
        "there, or an administrator")
    # Every target was looked up, nothing written.
    statuses = [(method, status) for method, _path, status in calls(gitlab)]
    assert statuses == [('GET', 404), ('GET', 200), ('GET', 404), ('GET', 404)]


def test_find_targets_refuses_a_target_given_by_id_and_by_path(gitlab, acme):
    payments = acme['projects'][0]['id']
    with pytest.raises(GitLabModuleError, match=(
            r'^memberships\[1\] names project acme/payments \(id %d\), as memberships\[0\] does: declare each '
            r'project or group once$' % payments)):
        find_targets(client_for(gitlab), parse_memberships([{'project': 'acme/payments'}, {'project': payments}]))


def test_find_targets_reports_other_failures_as_they_are(gitlab, acme):
    gitlab.fault('status', count=4, method='GET', path='/projects/', status=500)
    with pytest.raises(GitLabModuleError) as caught:
        find_targets(client_for(gitlab), parse_memberships([{'project': 'acme/payments'}]))
    assert not isinstance(caught.value, TargetsMissing)
    assert str(caught.value).startswith('Could not find project acme/payments of memberships: GitLab answered 500')
