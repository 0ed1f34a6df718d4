"""The gitlab_token_rotation role through ansible-playbook against the local GitLab and Mobb.

Every run is checked for leaks (rotation_fleet.Fleet.run): no value either server issued
may appear in the -vvvv output or in a file under the test's temporary directory.
"""
from __future__ import annotations

import json
import os

import gitlab as python_gitlab
import pytest
import yaml

from rotation_fleet import Fleet, results

KINDS = {
    'personal': {'gitlab_token_rotation_token_type': 'personal', 'gitlab_token_rotation_user': 'alice'},
    'project': {'gitlab_token_rotation_token_type': 'project', 'gitlab_token_rotation_project': 'team/app'},
    'group': {'gitlab_token_rotation_token_type': 'group', 'gitlab_token_rotation_group': 'team'},
}
ROLE = 'mobb.scm.gitlab_token_rotation : '
STORE_MUTATION = ('mutation store($url: String!, $token: String!) { updateScmToken(scmType: "GitLab", '
                  'url: $url, token: $token) { __typename } }')
SCOPES = {'personal': ['api', 'read_user'], 'project': ['api'], 'group': ['api']}


@pytest.fixture
def fleet(run_playbook, mobb, gitlab, tmp_path):
    return Fleet(run_playbook, mobb, [gitlab], tmp_path)


def only(run):
    """The one result the role recorded for the one token of the play."""
    recorded = results(run)
    assert recorded is not None and len(recorded) == 1, recorded
    return recorded[0]


def admin_token_id(fleet, index=0):
    return next(t['id'] for t in fleet.gitlabs[index].tokens() if t['name'] == 'admin')


def role_requests(fleet, index=0):
    """GitLab requests the role made (with the admin token), not those of Mobb's checks."""
    admin = admin_token_id(fleet, index)
    return [entry for entry in fleet.gitlabs[index].requests() if entry['token_id'] == admin]


def assert_mobb_uses_the_one_active_token(fleet, index=0):
    active = fleet.active(index)
    assert len(active) == 1, active
    assert fleet.mobb_uses(index) == (True, active[0]['id'])
    return active[0]


@pytest.mark.parametrize('kind', sorted(KINDS))
def test_first_run_creates_and_stores_then_a_rerun_changes_nothing(fleet, kind):
    first = fleet.run(fleet.role_play(**KINDS[kind]))
    assert first.rc == 0, first.output[-3000:]
    result = only(first)
    assert result['action'] == 'created' and result['changed'] is True and result['failed'] is False
    assert 'GitLab has no active token named mobb-broker' in result['reasons']
    token = assert_mobb_uses_the_one_active_token(fleet)
    assert result['token_id'] == token['id'] and result['expires_at'] == token['expires_at']
    assert result['days_left'] == 30 and result['connected'] is True
    assert sorted(token['scopes']) == SCOPES[kind]
    if kind != 'personal':
        assert token['access_level'] == 30
    assert [entry['operation'] for entry in fleet.mobb.writes()] == ['updateScmToken']

    again = fleet.run(fleet.role_play(**KINDS[kind]))
    assert again.rc == 0, again.output[-3000:]
    result = only(again)
    assert result['action'] == 'none' and result['changed'] is False and result['reasons'] == []
    assert result['token_id'] == token['id'] and result['connected'] is True
    assert fleet.gitlab_writes() == [] and fleet.mobb.writes() == []
    # The no-op path: one token list (plus the user lookup for a named user), one Mobb call.
    assert len(role_requests(fleet)) == (2 if kind == 'personal' else 1)
    assert [entry['operation'] for entry in fleet.mobb.requests()] == ['checkScmConnectionStatus']
    assert fleet.active() == [token]


@pytest.mark.parametrize('kind', sorted(KINDS))
def test_rotates_at_the_threshold_and_mobb_never_holds_a_dead_token(fleet, kind):
    assert fleet.run(fleet.role_play(**KINDS[kind])).rc == 0
    old = fleet.active()[0]

    fleet.gitlabs[0].advance_clock(22)  # 8 days left: more than rotate_before_days (7)
    quiet = fleet.run(fleet.role_play(**KINDS[kind]))
    assert only(quiet)['action'] == 'none' and only(quiet)['days_left'] == 8
    assert fleet.gitlab_writes() == [] and fleet.mobb.writes() == []

    fleet.gitlabs[0].advance_clock(1)  # 7 days left
    run = fleet.run(fleet.role_play(**KINDS[kind]))
    assert run.rc == 0, run.output[-3000:]
    result = only(run)
    assert result['action'] == 'rotated'
    assert result['reasons'] == [f'token {old["id"]} expires on {old["expires_at"]} (7 days left, threshold 7)']
    # Order of events in GitLab's log: the new token is issued, Mobb authenticates with it
    # (validating it as it stores it, then its connection check), and only then is the old
    # one revoked.
    log = fleet.gitlabs[0].requests()
    new_id = result['token_id']
    issued = next(e['seq'] for e in log if e['method'] == 'POST')
    revoked = next(e['seq'] for e in log if e['method'] == 'DELETE')
    mobb_with_new = [e['seq'] for e in log if e['token_id'] == new_id and e['path'] == '/api/v4/user']
    # A last check after the revoke proves that no overlapping store took Mobb's token away.
    assert len(mobb_with_new) == 3 and issued < mobb_with_new[0] < mobb_with_new[1] < revoked < mobb_with_new[2]

    new = assert_mobb_uses_the_one_active_token(fleet)
    assert new['id'] == new_id != old['id'] and result['days_left'] == 30
    assert result['revoked_token_ids'] == [old['id']] and fleet.token(0, old['id'])['revoked'] is True


def test_rotate_at_fraction_and_spread_days_set_each_tokens_threshold(fleet):
    schedule = dict(KINDS['project'], gitlab_token_rotation_rotate_at_fraction=0.5,
                    gitlab_token_rotation_spread_days=4)
    first = fleet.run(fleet.role_play(**schedule))
    assert first.rc == 0, first.output[-3000:]
    created = only(first)
    # Half of 30 days, plus this token's fixed share of the 4 days of spread.
    threshold = created['rotation_threshold_days']
    assert 15 <= threshold <= 19
    checked = only(fleet.run(fleet.role_play(**schedule), check=True))
    assert (checked['rotation_threshold_days'], checked['next_rotation']) == (threshold, created['next_rotation'])

    fleet.gitlabs[0].advance_clock(30 - threshold - 1)
    quiet = only(fleet.run(fleet.role_play(**schedule)))
    assert quiet['action'] == 'none' and quiet['days_left'] == threshold + 1
    fleet.gitlabs[0].advance_clock(1)
    run = fleet.run(fleet.role_play(**schedule))
    assert run.rc == 0, run.output[-3000:]
    assert only(run)['action'] == 'rotated' and only(run)['reasons'][0].endswith(
        f'({threshold} days left, threshold {threshold})')
    assert_mobb_uses_the_one_active_token(fleet)


def test_retire_after_days_keeps_the_old_token_and_a_later_run_retires_it(fleet):
    window = dict(KINDS['project'], gitlab_token_rotation_retire_after_days=2)
    assert fleet.run(fleet.role_play(**window)).rc == 0
    old = fleet.active()[0]
    fleet.gitlabs[0].advance_clock(23)
    switch = fleet.run(fleet.role_play(**window))
    assert switch.rc == 0, switch.output[-3000:]
    result = only(switch)
    assert result['action'] == 'rotated' and result['revoked_token_ids'] == []
    [waiting] = result['awaiting_retirement']
    assert waiting['token_id'] == old['id']
    assert [token['id'] for token in fleet.active()] == [old['id'], result['token_id']]
    assert fleet.mobb_uses(0) == (True, result['token_id'])

    fleet.gitlabs[0].advance_clock(2)
    later = fleet.run(fleet.role_play(**window))
    assert later.rc == 0, later.output[-3000:]
    assert only(later)['action'] == 'retired' and only(later)['revoked_token_ids'] == [old['id']]
    assert assert_mobb_uses_the_one_active_token(fleet)['id'] == result['token_id']


def test_recovers_a_token_that_expired(fleet):
    assert fleet.run(fleet.role_play(**KINDS['personal'])).rc == 0
    old = fleet.active()[0]
    fleet.gitlabs[0].advance_clock(31)
    assert fleet.mobb_uses()[0] is False

    run = fleet.run(fleet.role_play(**KINDS['personal']))
    assert run.rc == 0, run.output[-3000:]
    result = only(run)
    assert result['action'] == 'created'
    assert result['reasons'][0] == 'GitLab has no active token named mobb-broker'
    assert any(reason.startswith('Mobb cannot reach') for reason in result['reasons'])
    new = assert_mobb_uses_the_one_active_token(fleet)
    assert new['id'] != old['id'] and result['revoked_token_ids'] == []


def test_recovers_a_token_revoked_behind_its_back(fleet):
    assert fleet.run(fleet.role_play(**KINDS['project'])).rc == 0
    old = fleet.active()[0]
    # Someone revokes it in GitLab's UI (here: python-gitlab with the admin token).
    client = python_gitlab.Gitlab(fleet.gitlabs[0].url, private_token=fleet.gitlabs[0].admin_token)
    client.projects.get('team/app', lazy=True).access_tokens.delete(old['id'])
    assert fleet.token(0, old['id'])['revoked'] is True

    run = fleet.run(fleet.role_play(**KINDS['project']))
    assert run.rc == 0, run.output[-3000:]
    assert only(run)['action'] == 'created'
    new = assert_mobb_uses_the_one_active_token(fleet)
    assert new['id'] != old['id']


def test_repairs_a_mobb_integration_that_reports_disconnected(fleet):
    assert fleet.run(fleet.role_play(**KINDS['personal'])).rc == 0
    old = fleet.active()[0]
    # Someone pastes another token into Mobb's integration, and that token is revoked later.
    pasted = fleet.gitlabs[0].seed(tokens=[{'kind': 'personal', 'user': 'alice', 'name': 'pasted',
                                            'scopes': ['api', 'read_user']}])['tokens'][0]
    answer = fleet.mobb.graphql(STORE_MUTATION, {'url': fleet.gitlabs[0].url, 'token': pasted['token']},
                                api_key=fleet.api_key).json()
    assert answer['data']['updateScmToken']['__typename'] == 'ScmAccessTokenUpdateSuccess'
    assert fleet.mobb_uses() == (True, pasted['id'])
    client = python_gitlab.Gitlab(fleet.gitlabs[0].url, private_token=fleet.gitlabs[0].admin_token)
    client.personal_access_tokens.delete(pasted['id'])
    assert fleet.mobb_uses()[0] is False

    run = fleet.run(fleet.role_play(**KINDS['personal']))
    assert run.rc == 0, run.output[-3000:]
    result = only(run)
    assert result['action'] == 'rotated'
    assert [r for r in result['reasons'] if r.startswith('Mobb cannot reach')], result['reasons']
    new = assert_mobb_uses_the_one_active_token(fleet)
    assert new['id'] != old['id'] and result['revoked_token_ids'] == [old['id']]


def test_replaces_a_token_with_the_wrong_scopes_or_role(fleet):
    project = dict(KINDS['project'], gitlab_token_rotation_access_level='maintainer')
    assert fleet.run(fleet.role_play(**project)).rc == 0
    old = fleet.active()[0]
    assert old['access_level'] == 40

    run = fleet.run(fleet.role_play(**KINDS['project']))  # developer: least privilege
    assert run.rc == 0, run.output[-3000:]
    result = only(run)
    assert result['action'] == 'rotated'
    assert result['reasons'] == [f'token {old["id"]} has access level 40, wanted 30']
    new = assert_mobb_uses_the_one_active_token(fleet)
    assert new['access_level'] == 30


def test_force_rotates_a_fresh_token(fleet):
    assert fleet.run(fleet.role_play(**KINDS['group'])).rc == 0
    old = fleet.active()[0]
    run = fleet.run(fleet.role_play(gitlab_token_rotation_force=True, **KINDS['group']))
    assert run.rc == 0 and only(run)['action'] == 'rotated'
    assert only(run)['reasons'] == ['replacement forced (force: true)']
    assert assert_mobb_uses_the_one_active_token(fleet)['id'] != old['id']


def tokens_and_configs(fleet):
    """What a write would change in GitLab and Mobb (reads move only last_used_at)."""
    tokens = [(t['id'], t['name'], t['active'], t['revoked'], t['expires_at']) for t in fleet.gitlabs[0].tokens()]
    configs = [(c['scm_url'], c['token_sha256'], c['writes']) for c in fleet.mobb.scm_configs()]
    return tokens, configs


@pytest.mark.parametrize('situation', ['first run', 'threshold'])
def test_check_mode_decides_the_same_and_writes_nothing(fleet, situation):
    if situation == 'threshold':
        assert fleet.run(fleet.role_play(**KINDS['personal'])).rc == 0
        fleet.gitlabs[0].advance_clock(25)
    before = tokens_and_configs(fleet)

    run = fleet.run(fleet.role_play(**KINDS['personal']), check=True, diff=True)
    assert run.rc == 0, run.output[-3000:]
    result = only(run)
    assert result['action'] == ('would_create' if situation == 'first run' else 'would_rotate')
    assert result['changed'] is True and result['check_mode'] is True
    assert fleet.gitlab_writes() == [] and fleet.mobb.writes() == []
    assert tokens_and_configs(fleet) == before
    # In check mode nothing is issued; the decision and its diff are shown.
    kept = run.task(ROLE + 'Give this server its status, results and diff')
    assert kept['changed'] is True and kept['diff'][0]['after']['token_id'] == '(new)'


BAD_SETTINGS = {
    'project without its project': (
        {'gitlab_token_rotation_token_type': 'project'},
        'a project token needs its project (id or full path): set project (in the role, '
        'gitlab_token_rotation_project)'),
    'threshold not below the lifetime': (
        {'gitlab_token_rotation_expires_in_days': 7, 'gitlab_token_rotation_rotate_before_days': 7},
        'expires_in_days (7), not more than rotate_before_days (7): a new token would be due for rotation at once'),
    'scopes without api': (
        {'gitlab_token_rotation_scopes': ['read_api']},
        'scopes ["read_api"] lack "api", which Mobb needs to open merge requests: add it'),
    'read_user on a project token': (
        dict(KINDS['project'], gitlab_token_rotation_scopes=['api', 'read_user']),
        'GitLab does not give project tokens the "read_user" scope'),
    'role below developer': (
        dict(KINDS['group'], gitlab_token_rotation_access_level='reporter'),
        'access_level "reporter" is below developer, the least Mobb needs: use developer'),
    'unknown role': (
        dict(KINDS['group'], gitlab_token_rotation_access_level=35),
        'access_level "35" is not a GitLab role: use one of guest, planner, reporter, developer, maintainer, owner'),
    'self_rotate of a project token': (
        dict(KINDS['project'], gitlab_token_rotation_rotation_method='self_rotate'),
        'self_rotate is for a personal token rotated with itself'),
    'URL without a scheme': (
        {'gitlab_token_rotation_gitlab_url': 'gitlab.example.com'},
        "gitlab_url must be an http(s) URL with a host, such as https://gitlab.example.com, "
        "got 'gitlab.example.com'"),
    'unknown token type': (
        {'gitlab_token_rotation_token_type': 'deploy'},
        "value of gitlab_token_rotation_token_type must be one of: personal, project, group, service_account, "
        "got: deploy"),
    'list item of the wrong type': (
        {'gitlab_token_rotation_tokens': [{'token_name': 'a', 'expires_in_days': 'soon'}]},
        "expires_in_days"),
    'rotate_at_fraction out of range': (
        {'gitlab_token_rotation_rotate_at_fraction': 1.5},
        'rotate_at_fraction must be above 0 and below 1'),
    'list item with an unknown key': (
        {'gitlab_token_rotation_tokens': [{'tokne_name': 'a'}]},
        'an item of gitlab_token_rotation_tokens): unknown option(s) tokne_name'),
}


@pytest.mark.parametrize('case', sorted(BAD_SETTINGS))
def test_bad_settings_fail_clearly_before_any_request(fleet, case):
    settings, message = BAD_SETTINGS[case]
    run = fleet.run(fleet.role_play(**settings))
    assert run.rc != 0
    # ansible-core before 2.19 shows the message only inside the result's JSON, quotes escaped.
    assert message in run.output or json.dumps(message)[1:-1] in run.output, run.output[-3000:]
    assert fleet.gitlabs[0].requests() == [] and fleet.mobb.requests() == []


def test_module_defaults_of_the_gitlab_and_mobb_groups_reach_the_action_under_the_role(fleet):
    """The connection set once for a play, as for the modules; what the role is given still wins."""
    key_variable = 'MOBB_TEST_GROUP_DEFAULTS_KEY'
    plays = fleet.role_play(**dict(KINDS['project'], gitlab_token_rotation_gitlab_url=None,
                                   gitlab_token_rotation_gitlab_api_token=None,
                                   gitlab_token_rotation_mobb_api_url=None))
    plays[0]['module_defaults'] = {
        'group/mobb.scm.gitlab': {
            'api_url': fleet.gitlabs[0].url, 'timeout': 20,
            'api_token': fleet.connection_vars(0)['gitlab_token_rotation_gitlab_api_token'],
            # An option of the token modules, not a connection option: the action ignores it.
            'state': 'absent'},
        'group/mobb.scm.mobb': {'api_url': fleet.mobb.graphql_url,
                                'api_key': "{{ lookup('ansible.builtin.env', '%s') }}" % key_variable},
    }
    # The group's key wins over the environment's, as it does for the modules.
    env = {key_variable: fleet.api_key, 'MOBB_API_KEY': 'not-a-mobb-key'}
    first = fleet.run(plays, env=env)
    assert first.rc == 0, first.output[-3000:]
    assert only(first)['action'] == 'created'
    assert_mobb_uses_the_one_active_token(fleet)

    plays[0]['tasks'][0]['block'][0]['vars']['gitlab_token_rotation_gitlab_url'] = fleet.gitlabs[0].url
    plays[0]['module_defaults']['group/mobb.scm.gitlab']['api_url'] = 'http://127.0.0.1:9'
    again = fleet.run(plays, env=env)
    assert again.rc == 0, again.output[-3000:]
    assert only(again)['action'] == 'none' and fleet.gitlab_writes() == [] and fleet.mobb.writes() == []


def test_a_list_keeps_tokens_of_several_servers_and_one_failure_does_not_stop_the_others(
        run_playbook, mobb, gitlab_hub, tmp_path):
    gitlabs = gitlab_hub.new_instances(2)
    try:
        fleet = Fleet(run_playbook, mobb, gitlabs, tmp_path)
        second = fleet.connection_vars(1)
        tokens = [
            {'gitlab_url': second['gitlab_token_rotation_gitlab_url'],
             'gitlab_api_token': second['gitlab_token_rotation_gitlab_api_token'],
             'token_type': 'project', 'project': 'team/app'},
            # Its own Mobb integration: two tokens for one integration would be twins, both refused.
            {'token_type': 'project', 'project': 'team/missing', 'mobb_scm_url': 'https://gitlab.elsewhere.example'},
            {'user': 'alice', 'token_name': 'mobb-alice'},
        ]
        run = fleet.run(fleet.role_play(0, gitlab_token_rotation_tokens=tokens))
        assert run.rc != 0
        recorded = results(run)
        assert [(r['label'], r['action']) for r in recorded] == [
            ('project:team/app/mobb-broker', 'created'),
            ('project:team/missing/mobb-broker', 'failed'),
            ('personal:alice/mobb-alice', 'created')]
        assert recorded[0]['gitlab_url'] == gitlabs[1].url and recorded[2]['gitlab_url'] == gitlabs[0].url
        assert 'team/missing' in recorded[1]['msg'] and '404' in recorded[1]['msg']
        failure = run.task(ROLE + 'Give this server its status, results and diff')
        assert failure['msg'] == recorded[1]['msg']
        assert fleet.mobb_uses(1) == (True, fleet.active(1)[0]['id'])
        assert fleet.mobb_uses(0) == (True, fleet.active(0, 'mobb-alice')[0]['id'])
        stats = run.task(ROLE + 'Publish the results of every host for AWX, keyed by host and token')
        published = stats['ansible_stats']['data']['gitlab_token_rotation']['localhost']
        assert sorted(published) == sorted(r['label'] for r in recorded)
    finally:
        for instance in gitlabs:
            gitlab_hub.remove_instance(instance)


def test_https_gitlab_behind_an_internal_ca(run_playbook, mobb, gitlab_tls, tmp_path):
    fleet = Fleet(run_playbook, mobb, [gitlab_tls], tmp_path)
    play = fleet.role_play(gitlab_token_rotation_gitlab_ca_path=gitlab_tls.ca_path, **KINDS['personal'])
    run = fleet.run(play)
    assert run.rc == 0, run.output[-3000:]
    assert only(run)['action'] == 'created'
    assert fleet.mobb_uses() == (True, fleet.active()[0]['id'])

    unverified = fleet.run(fleet.role_play(**KINDS['personal']))
    assert unverified.rc != 0 and 'CERTIFICATE_VERIFY_FAILED' in only(unverified)['msg']


def readme_quick_start():
    """The README's quick start: the play (service-account form) and the GitLab Free variables."""
    readme = open(os.path.join(os.path.dirname(__file__), '..', '..', 'README.md'), encoding='utf-8').read()
    section = readme.split('## Quick start', 1)[1]
    blocks = [block.split('```', 1)[0] for block in section.split('```yaml\n')[1:3]]
    return blocks[0], yaml.safe_load(blocks[1])


def test_the_readme_quick_start_runs_as_written(fleet):
    """The README's first example, pointed at the local servers, credentials from the environment:
    a group Owner's token creates the service account and its memberships, then keeps its token."""
    quick_start, _free = readme_quick_start()
    gitlab = fleet.gitlabs[0]
    gitlab.settings(allow_top_level_group_owners_to_create_service_accounts=True)
    owner_token = gitlab.seed(
        users=[{'username': 'owner'}], groups=[{'path': 'acme/web'}], projects=[{'path': 'acme/payments'}],
        members=[{'username': 'owner', 'group': 'acme', 'access_level': 50}],
        tokens=[{'kind': 'personal', 'user': 'owner', 'name': 'ansible', 'scopes': ['api']}])['tokens'][0]['token']
    plays = yaml.safe_load(quick_start.replace('https://gitlab.example.com', gitlab.url))
    env = {'GITLAB_TOKEN': owner_token, 'MOBB_API_URL': fleet.mobb.graphql_url}
    run = fleet.run(plays, env=env)
    assert run.rc == 0, run.output[-3000:]
    account = [user for user in gitlab.users() if user['user_type'] == 'service_account']
    assert [user['username'] for user in account] == ['mobb'] and account[0]['provisioned_by_group_id']
    assert sorted((m['source_path'], m['access_level']) for m in gitlab.members() if m['username'] == 'mobb') == [
        ('acme/payments', 30), ('acme/web', 30)]
    active = fleet.active()
    assert [t['username'] for t in active] == ['mobb'] and sorted(active[0]['scopes']) == ['api', 'read_user']
    assert fleet.mobb_uses() == (True, active[0]['id'])
    assert {entry['username'] for entry in gitlab.writes()} == {'owner'}
    again = fleet.run(plays, env=env)
    assert again.rc == 0 and fleet.gitlab_writes() == [] and fleet.mobb.writes() == []


def test_the_readme_quick_start_on_gitlab_free_keeps_a_project_token(fleet):
    quick_start, free = readme_quick_start()
    gitlab = fleet.gitlabs[0]
    gitlab.settings(tier='free')
    maintainer_token = gitlab.seed(
        users=[{'username': 'maintainer'}], projects=[{'path': 'acme/payments'}],
        members=[{'username': 'maintainer', 'project': 'acme/payments', 'access_level': 40}],
        tokens=[{'kind': 'personal', 'user': 'maintainer', 'name': 'ansible', 'scopes': ['api']}])['tokens'][0]['token']
    plays = yaml.safe_load(quick_start.replace('https://gitlab.example.com', gitlab.url))
    variables = plays[0]['roles'][0]['vars']
    for name in [name for name in variables if 'service_account' in name or name.endswith('_group')]:
        del variables[name]
    variables.update(free)
    env = {'GITLAB_TOKEN': maintainer_token, 'MOBB_API_URL': fleet.mobb.graphql_url}
    run = fleet.run(plays, env=env)
    assert run.rc == 0, run.output[-3000:]
    active = [t for t in gitlab.tokens() if t['name'] == 'mobb-broker' and t['active']]
    assert [(t['kind'], t['resource_path'], t['access_level']) for t in active] == [('project', 'acme/payments', 30)]
    assert fleet.mobb_uses() == (True, active[0]['id'])


def test_mobb_rest_url_makes_the_connection_check_a_rest_call(fleet):
    rest = {'gitlab_token_rotation_mobb_rest_url': fleet.mobb.rest_check_url}
    first = fleet.run(fleet.role_play(**KINDS['personal'], **rest))
    assert first.rc == 0, first.output[-3000:]
    result = only(first)
    assert result['action'] == 'created' and result['connected'] is True
    token = assert_mobb_uses_the_one_active_token(fleet)
    checks = [(entry['endpoint'], entry['operation']) for entry in fleet.mobb.requests()
              if entry['operation'] in ('checkScmConnectionStatus', 'Me', 'updateScmToken')]
    assert {endpoint for endpoint, operation in checks if operation == 'checkScmConnectionStatus'} == {'rest'}
    assert {endpoint for endpoint, operation in checks if operation != 'checkScmConnectionStatus'} == {'graphql'}
    assert ('graphql', 'updateScmToken') in checks
    assert result['token_id'] == token['id']
