"""mobb.scm.gitlab_service_account and gitlab_service_account_info through ansible-playbook
against the local GitLab."""
from __future__ import annotations

import importlib
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from gitlab_plays import GitLabPlays, call, failure, requests_between, snapshot, writes
from rotation_fleet import strike_while_held

ACCOUNT = dict(username='mobb-bot', name='Mobb')
MEMBERSHIPS = [{'project': 'acme/payments'}, {'group': 'acme/platform', 'access_level': 'maintainer'}]


@pytest.fixture
def seeded(gitlab):
    """acme (alice is its Owner), its subgroup acme/platform, projects acme/payments and other/app."""
    return gitlab.seed(
        users=[{'username': 'alice'}], groups=[{'path': 'acme'}, {'path': 'acme/platform'}],
        projects=[{'path': 'acme/payments'}, {'path': 'other/app'}],
        members=[{'username': 'alice', 'group': 'acme', 'access_level': 50}],
        tokens=[{'kind': 'personal', 'user': 'alice', 'name': 'alice'}])


@pytest.fixture
def plays(run_playbook, gitlab, seeded):
    return GitLabPlays(run_playbook, gitlab)


def alice(seeded):
    """alice's token: the Owner of acme, no administrator."""
    return seeded['tokens'][0]['token']


def ids(seeded):
    """Project and group ids by path."""
    return {item['path']: item['id'] for item in seeded['projects'] + seeded['groups']}


def accounts(gitlab):
    return {user['username']: user for user in gitlab.users() if user['user_type'] == 'service_account'}


def levels(gitlab, username):
    return {(member['source_type'], member['source_path']): member['access_level']
            for member in gitlab.members() if member['username'] == username}


def calls(entries):
    return [(entry['method'], entry['path']) for entry in entries]


# ---- create, rerun, check mode, diff ------------------------------------------------------------

def test_create_with_memberships_then_a_rerun_changes_nothing(plays, gitlab, seeded):
    run = plays.run([
        snapshot('start'),
        call('create', 'service_account', **ACCOUNT, memberships=MEMBERSHIPS),
        snapshot('created'),
        call('rerun', 'service_account', **ACCOUNT, memberships=MEMBERSHIPS),
        snapshot('end'),
    ])
    created = run.task('create')
    account = accounts(gitlab)['mobb-bot']
    assert created['changed'] is True
    assert created['service_account'] == dict(id=account['id'], username='mobb-bot', name='Mobb',
                                              email=account['email'], scope='instance', group=None)
    known = ids(seeded)
    assert created['memberships'] == [
        dict(kind='project', ref='acme/payments', id=known['acme/payments'], path='acme/payments',
             access_level=30, role='developer'),
        dict(kind='group', ref='acme/platform', id=known['acme/platform'], path='acme/platform',
             access_level=40, role='maintainer')]
    assert created['removed_memberships'] == []
    assert levels(gitlab, 'mobb-bot') == {('project', 'acme/payments'): 30, ('group', 'acme/platform'): 40}
    assert account['provisioned_by_group_id'] is None
    user, payments, platform = account['id'], known['acme/payments'], known['acme/platform']
    # Every target is read before the first write, once; each membership is read before it is
    # written, by the id the lookup found.
    assert calls(requests_between(run, 'start', 'created')) == [
        ('GET', '/api/v4/service_accounts'), ('GET', '/api/v4/projects/acme%2Fpayments'),
        ('GET', '/api/v4/groups/acme%2Fplatform'), ('POST', '/api/v4/service_accounts'),
        ('GET', f'/api/v4/projects/{payments}/members/{user}'), ('POST', f'/api/v4/projects/{payments}/members'),
        ('GET', f'/api/v4/groups/{platform}/members/{user}'), ('POST', f'/api/v4/groups/{platform}/members')]

    rerun = run.task('rerun')
    assert rerun['changed'] is False
    assert (rerun['service_account'], rerun['memberships']) == (created['service_account'], created['memberships'])
    noop = requests_between(run, 'created', 'end')
    assert len(noop) == 6 and writes(noop) == []


def test_check_mode_predicts_and_writes_nothing(plays, gitlab):
    run = plays.run([call('preview', 'service_account', **ACCOUNT, memberships=MEMBERSHIPS)], check=True, diff=True)
    preview = run.task('preview')
    assert preview['changed'] is True
    assert preview['service_account'] == dict(id=None, username='mobb-bot', name='Mobb', email=None,
                                              scope='instance', group=None)
    assert [(entry['path'], entry['access_level'], entry['role']) for entry in preview['memberships']] == [
        ('acme/payments', 30, 'developer'), ('acme/platform', 40, 'maintainer')]
    assert preview['diff'] == {'before': {}, 'after': {
        'username': 'mobb-bot', 'name': 'Mobb',
        'memberships': [{'group': 'acme/platform', 'role': 'maintainer'}, {'project': 'acme/payments', 'role': 'developer'}]}}
    assert gitlab.writes() == [] and accounts(gitlab) == {}


def test_name_and_role_changes_with_diff_and_check_mode_first(plays, gitlab, seeded):
    gitlab.seed(service_accounts=[{'username': 'mobb-bot', 'name': 'Old name'}],
                members=[{'username': 'mobb-bot', 'project': 'acme/payments', 'access_level': 20}],
                tokens=[{'kind': 'personal', 'user': 'mobb-bot', 'name': 'mobb'}])
    wanted = dict(ACCOUNT, memberships=[{'project': 'acme/payments', 'access_level': 'Developer'}])
    preview = plays.run([call('preview', 'service_account', **wanted)], check=True, diff=True).task('preview')
    assert gitlab.writes() == [] and levels(gitlab, 'mobb-bot') == {('project', 'acme/payments'): 20}
    run = plays.run([snapshot('start'), call('change', 'service_account', **wanted), snapshot('changed'),
                     call('again', 'service_account', **wanted)], diff=True)
    changed = run.task('change')
    expected_diff = {
        'before': {'username': 'mobb-bot', 'name': 'Old name', 'memberships': [{'project': 'acme/payments', 'role': 'reporter'}]},
        'after': {'username': 'mobb-bot', 'name': 'Mobb', 'memberships': [{'project': 'acme/payments', 'role': 'developer'}]}}
    assert (preview['changed'], preview['diff']) == (True, expected_diff)
    assert (changed['changed'], changed['diff']) == (True, expected_diff)
    assert changed['service_account']['name'] == 'Mobb' and accounts(gitlab)['mobb-bot']['name'] == 'Mobb'
    assert levels(gitlab, 'mobb-bot') == {('project', 'acme/payments'): 30}
    user, payments = changed['service_account']['id'], ids(seeded)['acme/payments']
    assert calls(writes(requests_between(run, 'start', 'changed'))) == [
        ('PATCH', f'/api/v4/service_accounts/{user}'), ('PUT', f'/api/v4/projects/{payments}/members/{user}')]
    assert run.task('again')['changed'] is False


def test_a_name_left_out_is_left_alone(plays, gitlab):
    gitlab.seed(service_accounts=[{'username': 'mobb-bot', 'name': 'Kept'}])
    run = plays.run([call('no name', 'service_account', username='MOBB-BOT')])
    assert run.task('no name')['changed'] is False and accounts(gitlab)['mobb-bot']['name'] == 'Kept'
    assert run.task('no name')['service_account']['name'] == 'Kept'


# ---- another run at the same time ----------------------------------------------------------------

HOLD = 1.5


def while_held(gitlab, method, path, action):
    """Start a thread that calls ``action()`` while GitLab holds this run's request (method, path)
    for HOLD seconds, before serving it: another run's write lands just before this run's."""
    gitlab.fault('delay', method=method, path=path + '$', seconds=HOLD)

    def held(entry):
        return (entry['method'], entry['path'], entry['fault']) == (method, path, 'delay')

    executor = ThreadPoolExecutor(max_workers=1)
    strike = executor.submit(strike_while_held, gitlab.requests, held, HOLD, lambda _entry: action(), time.monotonic())
    executor.shutdown(wait=False)
    return strike


def test_an_account_another_run_creates_meanwhile_is_used(plays, gitlab, seeded):
    strike = while_held(gitlab, 'POST', '/api/v4/service_accounts',
                        lambda: gitlab.seed(service_accounts=[{'username': 'mobb-bot', 'name': 'Mobb'}]))
    task = plays.run([call('create', 'service_account', **ACCOUNT, memberships=MEMBERSHIPS)]).task('create')
    strike.result()
    assert not task.get('failed'), task.get('msg')
    account = accounts(gitlab)['mobb-bot']
    # The create refused (the username is taken), then the two memberships added to that account.
    assert [(entry['method'], entry['status']) for entry in gitlab.writes()] == [
        ('POST', 400), ('POST', 201), ('POST', 201)]
    assert task['changed'] is True and task['service_account']['id'] == account['id']
    assert len(accounts(gitlab)) == 1
    assert levels(gitlab, 'mobb-bot') == {('project', 'acme/payments'): 30, ('group', 'acme/platform'): 40}


def test_a_membership_another_run_adds_meanwhile_counts_as_there(plays, gitlab, seeded):
    gitlab.seed(service_accounts=[{'username': 'mobb-bot', 'name': 'Mobb'}])
    payments = ids(seeded)['acme/payments']
    strike = while_held(gitlab, 'POST', f'/api/v4/projects/{payments}/members', lambda: gitlab.seed(
        members=[{'username': 'mobb-bot', 'project': 'acme/payments', 'access_level': 30}]))
    memberships = [{'project': 'acme/payments'}]
    task = plays.run([call('add', 'service_account', **ACCOUNT, memberships=memberships)], diff=True).task('add')
    strike.result()
    assert not task.get('failed'), task.get('msg')
    assert [(entry['method'], entry['status']) for entry in gitlab.writes()] == [('POST', 409)]
    assert task['changed'] is False and task['diff']['before'] == task['diff']['after']
    assert [(entry['path'], entry['role']) for entry in task['memberships']] == [('acme/payments', 'developer')]
    assert levels(gitlab, 'mobb-bot') == {('project', 'acme/payments'): 30}


# ---- purge ----------------------------------------------------------------------------------------

def test_purge_removes_undeclared_memberships(plays, gitlab, seeded):
    gitlab.seed(service_accounts=[{'username': 'mobb-bot', 'name': 'Mobb'}],
                members=[{'username': 'mobb-bot', 'project': 'acme/payments', 'access_level': 30},
                         {'username': 'mobb-bot', 'project': 'other/app', 'access_level': 40},
                         {'username': 'mobb-bot', 'group': 'acme/platform', 'access_level': 20}])
    purge = dict(ACCOUNT, memberships=[{'project': 'acme/payments'}], purge_memberships=True)
    preview = plays.run([call('preview', 'service_account', **purge)], check=True).task('preview')
    assert gitlab.writes() == [] and len(levels(gitlab, 'mobb-bot')) == 3
    run = plays.run([call('purge', 'service_account', **purge), call('again', 'service_account', **purge)], diff=True)
    purged = run.task('purge')
    known = ids(seeded)
    removed = [dict(kind='project', id=known['other/app'], name='other / app', access_level=40, role='maintainer'),
               dict(kind='group', id=known['acme/platform'], name='acme / platform', access_level=20, role='reporter')]
    assert (preview['changed'], preview['removed_memberships']) == (True, removed)
    assert (purged['changed'], purged['removed_memberships']) == (True, removed)
    assert purged['diff']['before']['memberships'] == [
        {'group': 'acme / platform', 'role': 'reporter'}, {'project': 'acme/payments', 'role': 'developer'},
        {'project': 'other / app', 'role': 'maintainer'}]
    assert purged['diff']['after']['memberships'] == [{'project': 'acme/payments', 'role': 'developer'}]
    assert levels(gitlab, 'mobb-bot') == {('project', 'acme/payments'): 30}
    again = run.task('again')
    assert (again['changed'], again['removed_memberships']) == (False, [])


def test_purge_needs_an_administrator_and_says_so_before_any_write(plays, gitlab, seeded):
    gitlab.settings(allow_top_level_group_owners_to_create_service_accounts=True)
    gitlab.seed(service_accounts=[{'username': 'acme-bot', 'group': 'acme'}])
    purge = dict(group='acme', memberships=[{'group': 'acme'}], purge_memberships=True)
    run = plays.run([
        call('existing', 'service_account', username='acme-bot', name='Renamed', **purge),
        call('new', 'service_account', username='acme-new', **purge),
    ], token=alice(seeded))
    bot = accounts(gitlab)['acme-bot']
    assert failure(run, 'existing') == (
        f"Could not list the memberships of service account 'acme-bot' (user {bot['id']}): GitLab answered 403: "
        "Forbidden. Only administrators can list a user's memberships (GET /users/:id/memberships), which "
        "purge_memberships needs: use an administrator's api_token, or leave purge_memberships false")
    assert failure(run, 'new') == (
        "purge_memberships needs an administrator's api_token: only administrators can list a user's memberships "
        "(GET /users/:id/memberships); use one, or leave purge_memberships false")
    assert gitlab.writes() == [] and set(accounts(gitlab)) == {'acme-bot'}
    assert bot['name'] == 'Service account user'


# ---- absent ---------------------------------------------------------------------------------------

def test_absent_deletes_the_account_and_its_tokens(plays, gitlab):
    gitlab.seed(service_accounts=[{'username': 'mobb-bot', 'name': 'Mobb'}, {'username': 'other-bot'}],
                tokens=[{'kind': 'personal', 'user': 'mobb-bot', 'name': 'mobb'}])
    preview = plays.run([call('preview', 'service_account', username='mobb-bot', state='absent')],
                        check=True, diff=True).task('preview')
    assert gitlab.writes() == [] and 'mobb-bot' in accounts(gitlab)
    run = plays.run([
        snapshot('start'),
        call('delete', 'service_account', username='mobb-bot', state='absent'),
        call('again', 'service_account', username='mobb-bot', state='absent'),
        call('hard', 'service_account', username='other-bot', state='absent', hard_delete=True),
        snapshot('end'),
    ])
    deleted = run.task('delete')
    assert (preview['changed'], preview['diff']) == (True, {'before': {'username': 'mobb-bot', 'name': 'Mobb'},
                                                            'after': {}})
    assert deleted['changed'] is True and deleted['service_account']['username'] == 'mobb-bot'
    assert (deleted['memberships'], deleted['removed_memberships']) == ([], [])
    again = run.task('again')
    assert (again['changed'], again['service_account']) == (False, None)
    assert accounts(gitlab) == {}
    assert [record for record in gitlab.tokens() if record['name'] == 'mobb'] == []  # gone with the user
    deletes = [entry for entry in requests_between(run, 'start', 'end') if entry['method'] == 'DELETE']
    assert [(entry['path'].rsplit('/', 1)[0], entry['query']) for entry in deletes] == [
        ('/api/v4/users', {}), ('/api/v4/users', {'hard_delete': 'true'})]


# ---- group accounts -------------------------------------------------------------------------------

def test_a_group_owner_manages_the_groups_account_once_the_instance_allows_it(plays, gitlab, seeded):
    group_account = dict(group='acme', username='acme-bot', memberships=[{'group': 'acme'}])
    refused = plays.run([call('refused', 'service_account', **group_account)], token=alice(seeded))
    assert failure(refused, 'refused') == (
        "Could not create service account 'acme-bot' of group 'acme': GitLab answered 400: Bad request - User does "
        "not have permission to create a service account in this group. Creating and deleting a group's service "
        "accounts needs an administrator's api_token, or a group Owner's once an administrator turns on the "
        'instance setting allow_top_level_group_owners_to_create_service_accounts (Admin area > Settings > '
        'General > Account and limit)')
    assert accounts(gitlab) == {}
    assert [(entry['method'], entry['status']) for entry in gitlab.writes()] == [('POST', 400)]

    gitlab.settings(allow_top_level_group_owners_to_create_service_accounts=True)
    run = plays.run([call('create', 'service_account', **group_account),
                     call('again', 'service_account', **group_account),
                     call('delete', 'service_account', group='acme', username='acme-bot', state='absent')],
                    token=alice(seeded))
    created = run.task('create')
    assert created['changed'] is True
    assert (created['service_account']['scope'], created['service_account']['group']) == ('group', 'acme')
    assert created['memberships'][0]['path'] == 'acme' and created['memberships'][0]['role'] == 'developer'
    assert run.task('again')['changed'] is False
    assert run.task('delete')['changed'] is True and accounts(gitlab) == {}
    assert [entry['path'] for entry in gitlab.writes()][1:2] == ['/api/v4/groups/acme/service_accounts']


# ---- refused before any write ---------------------------------------------------------------------

def test_a_subgroup_is_refused_before_any_request_by_path_and_before_any_write_by_id(plays, gitlab, seeded):
    subgroup = ids(seeded)['acme/platform']
    run = plays.run([
        snapshot('start'),
        call('by path', 'service_account', group='acme/platform', username='acme-bot'),
        snapshot('after path'),
        call('by id', 'service_account', group=str(subgroup), username='acme-bot'),
    ])
    assert failure(run, 'by path') == (
        "group: service accounts belong to top-level groups, and 'acme/platform' is a subgroup: use 'acme' (its "
        "top-level group), and give the account a membership of 'acme/platform'")
    assert requests_between(run, 'start', 'after path') == []
    assert failure(run, 'by id') == (
        f"group: service accounts belong to top-level groups, and group {subgroup} is the subgroup 'acme/platform': "
        "use 'acme' (its top-level group), and give the account a membership of 'acme/platform'")
    assert gitlab.writes() == [] and accounts(gitlab) == {}


def test_an_unknown_group_is_named(plays, gitlab):
    run = plays.run([call('unknown', 'service_account', group='nope', username='acme-bot')])
    assert failure(run, 'unknown') == (
        "Could not list the service accounts of group 'nope': GitLab answered 404: Group Not Found. The group does "
        "not exist or the api_token's user cannot see it: set group to the id or full path of a top-level group")
    assert gitlab.writes() == []


def test_a_non_administrator_cannot_create_an_instance_account(plays, gitlab, seeded):
    run = plays.run([call('not admin', 'service_account', **ACCOUNT)], token=alice(seeded))
    assert failure(run, 'not admin') == (
        "Could not list the service accounts of the instance: GitLab answered 403: Forbidden. Only administrators "
        "manage instance service accounts: use an administrator's token, or a top-level group's service account "
        "(group) with a group Owner's token")
    assert gitlab.writes() == [] and accounts(gitlab) == {}


@pytest.mark.parametrize('check', [False, True], ids=['real', 'check mode'])
@pytest.mark.parametrize('declared, named', [
    ([{'project': 'acme/nope'}], "project 'acme/nope'"),
    ([{'group': 'acme/gone'}], "group 'acme/gone'"),
    (MEMBERSHIPS + [{'project': 'acme/nope'}], "project 'acme/nope'"),
    ([{'group': 'gone'}, {'project': 'acme/payments'}, {'project': 'acme/nope'}],
     "group 'gone' and project 'acme/nope'"),
    ([{'project': 'acme/payments'}, {'project': 'other/app'}], "project 'other/app'"),
], ids=['unknown project', 'unknown group', 'one unknown among two good', 'two unknown', 'not visible'])
def test_unknown_membership_targets_are_all_named_before_any_write(plays, gitlab, seeded, check, declared, named):
    # A group account kept by alice, Owner of acme: other/app is not hers to see (404).
    gitlab.settings(allow_top_level_group_owners_to_create_service_accounts=True)
    run = plays.run([call('unknown', 'service_account', group='acme', username='acme-bot', memberships=declared)],
                    token=alice(seeded), check=check)
    assert failure(run, 'unknown') == (
        f"memberships: {named} not found or not visible to the token: check the full path (or id) of each, and that "
        "the token's user can see it: a member there, or an administrator")
    assert gitlab.writes() == [] and accounts(gitlab) == {}
    # Besides the group's accounts, one GET per target: all of them, each once.
    looked_up = [path for _method, path in calls(gitlab.requests()) if '/service_accounts' not in path]
    assert len(looked_up) == len(declared) == len(set(looked_up))


@pytest.mark.parametrize('memberships, message', [
    ([{'project': 'acme/payments', 'group': 'acme'}],
     'memberships[0] names both project and group: give exactly one, as an id or full path, for example '
     '{project: acme/app, access_level: developer}; use one entry per target'),
    ([{'group': 'acme'}, {'group': 'acme', 'access_level': 'owner'}],
     'memberships[1] declares group acme again, as memberships[0] did: declare each project or group once, with '
     'the role the account needs there'),
    ([{'project': 'acme/payments', 'access_level': 'admin'}],
     "memberships[0]: access_level must be one of guest, planner, reporter, developer, maintainer, owner "
     "(or 10, 15, 20, 30, 40, 50), got 'admin'"),
])
def test_bad_memberships_fail_before_any_request(plays, gitlab, memberships, message):
    run = plays.run([call('bad', 'service_account', **ACCOUNT, memberships=memberships)])
    assert failure(run, 'bad') == message
    assert gitlab.requests() == []


def test_the_same_target_by_path_and_by_id_is_refused_before_any_write(plays, gitlab, seeded):
    payments = ids(seeded)['acme/payments']
    run = plays.run([call('twice', 'service_account', **ACCOUNT,
                          memberships=[{'project': 'acme/payments'}, {'project': str(payments)}])])
    assert failure(run, 'twice') == (
        f'memberships[1] names project acme/payments (id {payments}), as memberships[0] does: declare each project '
        'or group once')
    assert gitlab.writes() == []


# ---- info -----------------------------------------------------------------------------------------

@pytest.fixture
def with_tokens(gitlab):
    return gitlab.seed(
        service_accounts=[{'username': 'mobb-bot', 'name': 'Mobb'}, {'username': 'acme-bot', 'group': 'acme'},
                          {'username': 'idle-bot'}],
        tokens=[{'kind': 'personal', 'user': 'mobb-bot', 'name': 'mobb', 'expires_in_days': 12,
                 'description': 'Mobb broker'},
                {'kind': 'personal', 'user': 'mobb-bot', 'name': 'old', 'revoked': True},
                {'kind': 'personal', 'user': 'mobb-bot', 'name': 'gone', 'expires_in_days': -2},
                {'kind': 'personal', 'user': 'acme-bot', 'name': 'mobb', 'expires_in_days': 40}])


def test_info_lists_accounts_with_their_active_tokens_and_no_secret(plays, gitlab, with_tokens):
    run = plays.run([
        call('instance', 'service_account_info'),
        call('group', 'service_account_info', group='acme'),
        call('one', 'service_account_info', username='MOBB-bot'),
        call('none', 'service_account_info', username='nobody'),
    ], check=True)
    accounts_by_id = {account['id']: account for account in with_tokens['service_accounts']}
    instance = run.task('instance')['service_accounts']
    assert run.task('instance')['changed'] is False
    assert [(account['username'], account['scope'], account['group']) for account in instance] == [
        ('mobb-bot', 'instance', None), ('idle-bot', 'instance', None)]
    mobb = instance[0]
    assert (mobb['id'], mobb['name'], mobb['email']) == (
        with_tokens['service_accounts'][0]['id'], 'Mobb', accounts_by_id[mobb['id']]['email'])
    assert [(token['id'], token['days_left'], token['state'], token['description']) for token in mobb['access_tokens']] == [
        (with_tokens['tokens'][0]['id'], 12, 'active', 'Mobb broker')]
    assert instance[1]['access_tokens'] == []
    group = run.task('group')['service_accounts']
    assert [(account['username'], account['scope'], account['group']) for account in group] == [
        ('acme-bot', 'group', 'acme')]
    assert [(token['name'], token['days_left']) for token in group[0]['access_tokens']] == [('mobb', 40)]
    assert [account['username'] for account in run.task('one')['service_accounts']] == ['mobb-bot']
    assert run.task('none')['service_accounts'] == []


def test_info_as_a_non_administrator_says_who_may_read(plays, gitlab, seeded, with_tokens):
    run = plays.run([call('instance', 'service_account_info'),
                     call('group', 'service_account_info', group='acme')], token=alice(seeded))
    assert failure(run, 'instance').startswith(
        'Could not list the service accounts of the instance: GitLab answered 403: Forbidden. Only administrators')
    assert [account['username'] for account in run.task('group')['service_accounts']] == ['acme-bot']


# ---- examples -------------------------------------------------------------------------------------

@pytest.mark.parametrize('module', ['gitlab_service_account', 'gitlab_service_account_info'])
def test_examples_run_against_gitlab(run_playbook, gitlab, module):
    gitlab.seed(groups=[{'path': 'acme'}, {'path': 'acme/platform'}], projects=[{'path': 'acme/payments'}])
    if module == 'gitlab_service_account_info':
        gitlab.seed(service_accounts=[{'username': 'mobb-bot'}, {'username': 'acme-mobb-bot', 'group': 'acme'}],
                    tokens=[{'kind': 'personal', 'user': 'mobb-bot', 'name': 'mobb', 'expires_in_days': 10},
                            {'kind': 'personal', 'user': 'mobb-bot', 'name': 'later', 'expires_in_days': 90}])
    source = importlib.import_module(f'ansible_collections.mobb.scm.plugins.modules.{module}')
    tasks = yaml.safe_load(source.EXAMPLES)
    play = {'name': f'{module} examples', 'hosts': 'localhost', 'gather_facts': False,
            'vars': {'gitlab_url': gitlab.url, 'gitlab_admin_token': "{{ lookup('env', 'EXAMPLE_ADMIN_TOKEN') }}"},
            'tasks': tasks}
    run = run_playbook([play], env={'EXAMPLE_ADMIN_TOKEN': gitlab.admin_token})
    run.assert_no_secrets(gitlab.secrets())
    assert run.rc == 0, run.output[-3000:]
    statuses = {entry['task']: entry['status'] for entry in run.results}
    assert set(statuses) == {task['name'] for task in tasks} and set(statuses.values()) == {'ok'}
    if module == 'gitlab_service_account':
        assert run.task('Show the account and its roles')['msg'] == 'mobb-bot: acme/payments, acme/platform'
        assert accounts(gitlab) == {}
    else:
        warned = run.task('Warn about service account tokens that expire within two weeks')
        assert [item['msg'] for item in warned['results'] if not item.get('skipped')] == [
            f'mobb-bot: token mobb ({item_id}) expires in 10 days'
            for item_id in [warned['results'][0]['item'][1]['id']]]
