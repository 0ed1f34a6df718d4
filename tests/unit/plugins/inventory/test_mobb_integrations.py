"""The inventory plugin mobb.scm.mobb_integrations through ansible-core's own InventoryManager
and DataLoader, against the local Mobb over real HTTP: the hosts, variables and groups it
makes, constructed variables and groups, the cache, and its errors."""
from __future__ import annotations

import json

import pytest

from ansible.errors import AnsibleError
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader

ADMIN = 'admin@acme.example'
MEMBER = 'dev@acme.example'
TOKENS = ['glpat-inventory-token-0001', 'glpat-inventory-token-0002', 'glpat-inventory-token-0003']


@pytest.fixture
def seeded(mobb):
    """acme: two GitLab servers (one through the broker, one with a stored URL spelt differently)
    and a GitHub integration; a second organization's server the key's user cannot see."""
    answer = mobb.seed(
        organizations=[
            {'name': 'acme', 'broker_hosts': [{'real_domain': 'gitlab.onprem.example', 'virtual_domain': 'vd-onprem'}]},
            {'name': 'other'}],
        users=[{'email': ADMIN, 'organization': 'acme', 'role': 'Admin'},
               {'email': MEMBER, 'organization': 'acme', 'role': 'Member'},
               {'email': 'else@other.example', 'organization': 'other', 'role': 'Owner'}],
        scm_configs=[{'user': ADMIN, 'scm_url': 'https://GitLab.onprem.example/', 'token': TOKENS[0],
                      'updated_days_ago': 3},
                     {'user': ADMIN, 'scm_url': 'https://gitlab.example.com:8443', 'token': TOKENS[1]},
                     {'user': ADMIN, 'scm_url': 'https://github.com', 'scm_type': 'GitHub', 'token': TOKENS[2]},
                     {'user': 'else@other.example', 'scm_url': 'https://gitlab.other.example', 'token': TOKENS[2]}])
    keys = {user['email']: user['api_key'] for user in answer['users']}
    return {'keys': keys, 'org': answer['organizations'][0]['id']}


def config(tmp_path, name='fleet.mobb_integrations.yml', **options):
    path = tmp_path / name
    path.write_text(json.dumps(dict({'plugin': 'mobb.scm.mobb_integrations'}, **options)))
    return str(path)


def inventory(path):
    return InventoryManager(loader=DataLoader(), sources=[path])


def parse(path, cache=True):
    """Parse with the plugin itself, so that its errors raise instead of becoming warnings."""
    manager = InventoryManager(loader=DataLoader(), sources=[])
    plugin = inventory_loader.get('mobb.scm.mobb_integrations')
    assert plugin.verify_file(path)
    plugin.parse(manager._inventory, manager._loader, path, cache=cache)
    if plugin.get_option('cache'):
        plugin.update_cache_if_changed()  # as InventoryManager.parse_source does
    manager._inventory.reconcile_inventory()
    return manager


def host_vars(manager, name):
    return {key: value for key, value in manager.get_host(name).get_vars().items()
            if key not in ('inventory_file', 'inventory_dir', 'inventory_hostname', 'inventory_hostname_short',
                           'group_names')}


def test_one_host_per_gitlab_server_with_the_rotation_variables(mobb, seeded, tmp_path, monkeypatch):
    monkeypatch.setenv('MOBB_API_KEY', seeded['keys'][ADMIN])
    manager = inventory(config(tmp_path, api_url=mobb.graphql_url))
    assert sorted(host.name for host in manager.get_hosts()) == ['gitlab.example.com:8443', 'gitlab.onprem.example']
    assert sorted(h.name for h in manager.groups['mobb_gitlab_servers'].get_hosts()) == [
        'gitlab.example.com:8443', 'gitlab.onprem.example']
    assert [h.name for h in manager.groups['mobb_brokered'].get_hosts()] == ['gitlab.onprem.example']
    configs = {c['scm_url']: c for c in mobb.scm_configs()}
    onprem = configs['https://gitlab.onprem.example']
    assert host_vars(manager, 'gitlab.onprem.example') == {
        'gitlab_token_rotation_gitlab_url': 'https://gitlab.onprem.example',
        'gitlab_token_rotation_mobb_api_url': mobb.graphql_url,
        'mobb_scm_url': 'https://gitlab.onprem.example',
        'mobb_scm_config_id': onprem['id'],
        'mobb_scm_config_ids': [onprem['id']],
        'mobb_scm_inventory_problem': None,
        'mobb_organization_id': seeded['org'],
        'mobb_brokered': True,
        'mobb_broker_virtual_domain': 'vd-onprem',
        'mobb_token_available': True,
        'mobb_token_last_update': onprem['token_last_update'],
    }
    direct = host_vars(manager, 'gitlab.example.com:8443')
    assert direct['gitlab_token_rotation_gitlab_url'] == 'https://gitlab.example.com:8443'
    assert direct['mobb_brokered'] is False and direct['mobb_broker_virtual_domain'] is None
    # One me request, which never asks for the stored tokens.
    requests = mobb.requests()
    assert [entry['operation'] for entry in requests] == ['Me']
    assert not [secret for secret in mobb.secrets() if secret in json.dumps(
        {h.name: host_vars(manager, h.name) for h in manager.get_hosts()})]


def test_the_hosts_are_the_integrations_of_the_keys_user(mobb, seeded, tmp_path):
    # Mobb's me lists the caller's own scm configs: this Member of acme stored none.
    manager = parse(config(tmp_path, api_url=mobb.graphql_url, api_key=seeded['keys'][MEMBER]))
    assert [host.name for host in manager.get_hosts()] == []


def test_a_server_added_in_mobb_is_in_the_next_parse(mobb, seeded, tmp_path):
    path = config(tmp_path, api_url=mobb.graphql_url, api_key=seeded['keys'][ADMIN])
    assert len(parse(path).get_hosts()) == 2
    mobb.seed(scm_configs=[{'user': ADMIN, 'scm_url': 'http://127.0.0.1:9', 'token': TOKENS[2]}])
    assert sorted(host.name for host in parse(path).get_hosts()) == [
        '127.0.0.1:9', 'gitlab.example.com:8443', 'gitlab.onprem.example']


def test_compose_groups_and_keyed_groups(mobb, seeded, tmp_path):
    path = config(
        tmp_path, api_url=mobb.graphql_url, api_key=seeded['keys'][ADMIN], strict=True,
        compose={'gitlab_token_rotation_user': "'mobb-' ~ (inventory_hostname | regex_replace('[^a-z0-9]', '-'))",
                 'ansible_connection': "'local'"},
        groups={'on_port_8443': "gitlab_token_rotation_gitlab_url.endswith(':8443')"},
        keyed_groups=[{'key': 'mobb_organization_id', 'prefix': 'org'},
                      {'key': "'broker' if mobb_brokered else 'direct'", 'prefix': 'via'}])
    manager = parse(path)
    assert host_vars(manager, 'gitlab.example.com:8443')['gitlab_token_rotation_user'] == 'mobb-gitlab-example-com-8443'
    assert host_vars(manager, 'gitlab.onprem.example')['ansible_connection'] == 'local'
    groups = {name: sorted(h.name for h in group.get_hosts()) for name, group in manager.groups.items()}
    assert groups['on_port_8443'] == ['gitlab.example.com:8443']
    assert groups['via_broker'] == ['gitlab.onprem.example']
    assert groups['via_direct'] == ['gitlab.example.com:8443']
    assert groups['org_' + seeded['org'].replace('-', '_')] == ['gitlab.example.com:8443', 'gitlab.onprem.example']


def test_strict_fails_on_an_undefined_variable_and_lax_skips_it(mobb, seeded, tmp_path):
    options = dict(api_url=mobb.graphql_url, api_key=seeded['keys'][ADMIN], compose={'x': 'no_such_variable'})
    with pytest.raises(AnsibleError, match='no_such_variable'):
        parse(config(tmp_path, strict=True, **options))
    manager = parse(config(tmp_path, strict=False, **options))
    assert 'x' not in host_vars(manager, 'gitlab.onprem.example')


def test_the_cache_answers_without_mobb_and_holds_no_secret(mobb, seeded, tmp_path):
    cache_dir = tmp_path / 'cache'
    path = config(tmp_path, api_url=mobb.graphql_url, api_key=seeded['keys'][ADMIN], cache=True,
                  cache_plugin='ansible.builtin.jsonfile', cache_connection=str(cache_dir), cache_timeout=600)
    first = parse(path, cache=False)  # as --flush-cache: read Mobb, write the cache
    assert len(first.get_hosts()) == 2
    mobb.clear_requests()
    mobb.seed(scm_configs=[{'user': ADMIN, 'scm_url': 'http://127.0.0.1:9', 'token': TOKENS[2]}])
    cached = parse(path)
    assert sorted(h.name for h in cached.get_hosts()) == sorted(h.name for h in first.get_hosts())
    assert host_vars(cached, 'gitlab.onprem.example') == host_vars(first, 'gitlab.onprem.example')
    assert mobb.requests() == []
    files = list(cache_dir.iterdir())
    assert files and not [s for s in mobb.secrets() if any(s in f.read_text() for f in files)]
    assert len(parse(path, cache=False).get_hosts()) == 3


@pytest.mark.parametrize('options, message', [
    ({'api_key': 'not-a-key'}, 'Mobb refused the API key'),
    ({}, 'api_key is not set'),
    ({'api_key': 'k', 'timeout': 0}, 'timeout must be a positive number'),
])
def test_errors_say_what_to_fix_and_never_show_the_key(mobb, seeded, tmp_path, monkeypatch, options, message):
    monkeypatch.delenv('MOBB_API_KEY', raising=False)
    with pytest.raises(AnsibleError) as error:
        parse(config(tmp_path, api_url=mobb.graphql_url, **options))
    assert message in str(error.value) and 'mobb.scm.mobb_integrations' in str(error.value)
    assert not [secret for secret in mobb.secrets() + ['not-a-key'] if secret in str(error.value)]


def test_an_unreachable_mobb_is_an_error_after_the_retries(tmp_path):
    with pytest.raises(AnsibleError, match='cannot reach the Mobb API at http://127.0.0.1:9/v1/graphql'):
        parse(config(tmp_path, api_url='http://127.0.0.1:9/v1/graphql', api_key='k', retries=0))


def test_only_files_named_for_the_plugin(tmp_path):
    plugin = inventory_loader.get('mobb.scm.mobb_integrations')
    for name in ('fleet.mobb_integrations.yml', 'mobb_integrations.yaml'):
        assert plugin.verify_file(config(tmp_path, name=name))
    assert not plugin.verify_file(config(tmp_path, name='fleet.yml'))


def me_answer(scm_configs):
    return {'data': {'me': {'id': 'u1', 'email': ADMIN, 'userOrganizationsAndUserOrganizationRoles': [],
                            'scmConfigs': scm_configs}}}


@pytest.mark.parametrize('body, message', [
    ({'data': {'me': []}}, 'Mobb returned no user for this API key'),
    (me_answer('https://gitlab.example.com'),
     'Mobb answered me with scmConfigs as a JSON string, not a list of objects'),
    (me_answer(None), 'Mobb answered me with scmConfigs as null, not a list of objects'),
    (me_answer({'id': 'c1'}), 'Mobb answered me with scmConfigs as a JSON object, not a list of objects'),
    (me_answer(['c1']), 'not a list of objects'),
    ({'data': None}, 'Mobb answered Me without data or errors'),
])
def test_an_answer_of_the_wrong_shape_is_an_error_left_on_group_all(mobb, seeded, tmp_path, body, message):
    mobb.fault('answer', body=body, operation='Me')
    manager = InventoryManager(loader=DataLoader(), sources=[])
    plugin = inventory_loader.get('mobb.scm.mobb_integrations')
    with pytest.raises(AnsibleError) as error:
        plugin.parse(manager._inventory, manager._loader,
                     config(tmp_path, api_url=mobb.graphql_url, api_key=seeded['keys'][ADMIN]))
    text = str(error.value)
    assert text.startswith('mobb.scm.mobb_integrations: cannot read the GitLab servers from the Mobb API at %s: '
                           % mobb.graphql_url) and message in text, text
    assert manager._inventory.groups['all'].get_vars()['mobb_scm_inventory_errors'] == [text]
    assert not [secret for secret in mobb.secrets() if secret in text]


def test_a_failed_source_adds_its_error_to_those_of_the_sources_before_it(mobb, seeded, tmp_path):
    manager = InventoryManager(loader=DataLoader(), sources=[
        config(tmp_path, name='a.mobb_integrations.yml', api_url=mobb.graphql_url, api_key='not-a-key'),
        config(tmp_path, name='b.mobb_integrations.yml', api_url='http://127.0.0.1:9/v1/graphql', api_key='k',
               retries=0)])
    errors = manager.groups['all'].get_vars()['mobb_scm_inventory_errors']
    assert len(errors) == 2 and 'Mobb refused the API key' in errors[0] and 'cannot reach' in errors[1], errors


def parse_with_warnings(path):
    """(manager, the warnings the plugin gave) of one parse by the plugin itself."""
    warnings = []
    plugin = inventory_loader.get('mobb.scm.mobb_integrations')
    manager = InventoryManager(loader=DataLoader(), sources=[])
    plugin.display.warning = warnings.append
    plugin.parse(manager._inventory, manager._loader, path)
    return manager, warnings


def test_one_host_per_server_whatever_its_path_and_no_url_collision_is_silent(mobb, seeded, tmp_path):
    mobb.seed(scm_configs=[
        {'user': ADMIN, 'scm_url': 'https://git.example.com/gitlab-a', 'token': TOKENS[2]},
        {'user': ADMIN, 'scm_url': 'https://git.example.com/gitlab-b/', 'token': TOKENS[2]},
        {'user': ADMIN, 'scm_url': 'https://git.example.com/tools/gitlab', 'token': TOKENS[2]},
        # The same server over http: one host name, refused on the host.
        {'user': ADMIN, 'scm_url': 'http://git.example.com/gitlab-b', 'token': TOKENS[2]},
        # One URL, two configs (a scmOrg): kept, with a problem.
        {'user': ADMIN, 'scm_url': 'https://gitlab.example.com:8443', 'org': 'team', 'token': TOKENS[2]}])
    manager, warnings = parse_with_warnings(config(tmp_path, api_url=mobb.graphql_url, api_key=seeded['keys'][ADMIN]))
    manager._inventory.reconcile_inventory()
    assert sorted(h.name for h in manager.get_hosts()) == [
        'git.example.com_gitlab-a', 'git.example.com_gitlab-b', 'git.example.com_tools_gitlab',
        'gitlab.example.com:8443', 'gitlab.onprem.example']
    configs = {(c['scm_url'], c['scm_org']): c['id'] for c in mobb.scm_configs()}
    first = host_vars(manager, 'git.example.com_gitlab-a')
    assert first['gitlab_token_rotation_gitlab_url'] == 'https://git.example.com/gitlab-a'
    assert first['mobb_scm_config_ids'] == [configs[('https://git.example.com/gitlab-a', None)]]
    assert first['mobb_scm_inventory_problem'] is None
    assert host_vars(manager, 'git.example.com_tools_gitlab')['gitlab_token_rotation_gitlab_url'] == (
        'https://git.example.com/tools/gitlab')
    twins = host_vars(manager, 'git.example.com_gitlab-b')
    assert twins['gitlab_token_rotation_gitlab_url'] == 'https://git.example.com/gitlab-b'
    assert twins['mobb_scm_config_ids'] == [configs[('https://git.example.com/gitlab-b', None)],
                                            configs[('http://git.example.com/gitlab-b', None)]]
    assert twins['mobb_scm_inventory_problem'] == (
        'mobb.scm.mobb_integrations: the GitLab integrations https://git.example.com/gitlab-b and '
        "http://git.example.com/gitlab-b all make host git.example.com_gitlab-b: remove the ones that name the same "
        "server from Mobb's integrations, keeping one, or leave this host out (mobb_scm_hosts, --limit)")
    orgs = host_vars(manager, 'gitlab.example.com:8443')
    plain = configs[('https://gitlab.example.com:8443', None)]
    team = configs[('https://gitlab.example.com:8443', 'team')]
    assert orgs['mobb_scm_config_id'] == plain and orgs['mobb_scm_config_ids'] == [plain, team]
    assert orgs['mobb_scm_inventory_problem'] == (
        'mobb.scm.mobb_integrations: Mobb holds 2 GitLab integrations of https://gitlab.example.com:8443 '
        '(config %s of organization %s, config %s of organization %s, scmOrg team): the rotation keeps the token of '
        "one; remove the others from Mobb's integrations, keeping one, or leave this host out (mobb_scm_hosts, --limit)"
        % (plain, seeded['org'], team, seeded['org']))
    assert sorted(warnings) == sorted([twins['mobb_scm_inventory_problem'], orgs['mobb_scm_inventory_problem']])


def test_a_url_with_credentials_is_skipped_with_a_warning_that_does_not_show_them(mobb, seeded, tmp_path):
    secret = TOKENS[0]
    mobb.fault('answer', operation='Me', body=me_answer([
        {'id': 'c1', 'scmType': 'GitLab', 'scmUrl': 'http://oauth2:%s@gitlab.example.com' % secret},
        {'id': 'c2', 'scmType': 'GitLab', 'scmUrl': 'https://gitlab.example.com/?private_token=%s' % secret},
        {'id': 'c3', 'scmType': 'GitLab', 'scmUrl': 'ftp://oauth2:%s@gitlab.example.com' % secret}]))
    manager, warnings = parse_with_warnings(config(tmp_path, api_url=mobb.graphql_url, api_key=seeded['keys'][ADMIN]))
    assert list(manager._inventory.hosts) == []
    assert len(warnings) == 3 and not [w for w in warnings if secret in w], warnings
    assert 'skipped the GitLab integration c1 of the Mobb API at %s: scm_url must not carry credentials' % (
        mobb.graphql_url) in warnings[0]
    assert warnings[1].endswith('without ?query or #fragment: https://gitlab.example.com/?...')
    assert "got 'ftp://***@gitlab.example.com'" in warnings[2]
