"""The inventory plugin mobb.scm.mobb_integrations as users run it: ``ansible-inventory -i
<config> --graph`` and ``--list`` against the local Mobb, and ``mobb.scm.rotate`` against
the inventory it makes, with the GitLab admin token supplied by the pattern the plugin's
documentation shows: a per-host lookup in group_vars, templated only when a task uses it,
so ansible-inventory --list shows the template, never the token. Every run is checked for
leaks."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from rotation_fleet import ADMIN_KEY, Fleet, host

BIN = os.path.dirname(sys.executable)
STORE = ('mutation store($url: String!, $token: String!) { updateScmToken(scmType: "GitLab", url: $url, '
         'token: $token) { __typename } }')
# The GitLab admin token of each host, from an environment variable named after it, as a
# secret store or an AWX credential would provide it.
TOKEN_LOOKUP = ("{{ lookup('ansible.builtin.env', 'GITLAB_TOKEN_' ~ "
                "(inventory_hostname | regex_replace('[^A-Za-z0-9]', '_') | upper)) }}")


def token_variable(name):
    return 'GITLAB_TOKEN_' + re.sub('[^A-Za-z0-9]', '_', name).upper()


@pytest.fixture
def fleet(run_playbook, mobb, gitlab_hub, tmp_path):
    gitlabs = gitlab_hub.new_instances(2)
    fleet = Fleet(run_playbook, mobb, gitlabs, tmp_path, brokered=[gitlabs[1]])
    yield fleet
    for instance in gitlabs:
        gitlab_hub.remove_instance(instance)


def add_in_mobb(fleet, gitlab):
    """What a user does in Mobb's UI: store a token of alice's for this GitLab server."""
    token = gitlab.seed(tokens=[{'kind': 'personal', 'user': 'alice', 'name': 'set-in-mobb-ui'}])['tokens'][0]['token']
    answer = fleet.mobb.graphql(STORE, {'url': gitlab.url, 'token': token}, api_key=fleet.api_key).json()
    assert answer['data']['updateScmToken']['__typename'] == 'ScmAccessTokenUpdateSuccess', answer


@pytest.fixture
def config(fleet, tmp_path):
    """The plugin's configuration, and group_vars for its group beside it (no secret in either)."""
    directory = tmp_path / 'inventory'
    (directory / 'group_vars').mkdir(parents=True)
    path = directory / 'gitlab.mobb_integrations.yml'
    path.write_text(yaml.safe_dump({
        'plugin': 'mobb.scm.mobb_integrations',
        'api_url': fleet.mobb.graphql_url,
        'compose': {'gitlab_token_rotation_verify_delay': '0'},
        'keyed_groups': [{'key': "'broker' if mobb_brokered else 'direct'", 'prefix': 'via'}],
    }))
    (directory / 'group_vars' / 'mobb_gitlab_servers.yml').write_text(yaml.safe_dump({
        'gitlab_token_rotation_user': 'alice', 'gitlab_token_rotation_gitlab_api_token': TOKEN_LOOKUP}))
    return path


def ansible_inventory(fleet, *args, env=None):
    environment = dict(os.environ, **fleet.env(env))
    environment.update({'ANSIBLE_COLLECTIONS_PATH': os.path.join(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))), '.cache', 'collections'), 'ANSIBLE_NOCOLOR': '1'})
    completed = subprocess.run([os.path.join(BIN, 'ansible-inventory')] + list(args), env=environment,
                               capture_output=True, text=True, check=False, timeout=120)
    output = completed.stdout + completed.stderr
    leaked = [secret for secret in fleet.secrets() if secret in output]
    assert not leaked, f'{len(leaked)} secret(s) in the output of ansible-inventory'
    return completed


def graph_groups(text):
    """{group: [hosts]} of ansible-inventory --graph's output (one level of groups)."""
    groups, current = {}, None
    for line in text.splitlines():
        name = line.strip(' |-')
        if name.startswith('@'):
            current = name[1:].rstrip(':')
            groups[current] = []
        elif name:
            groups[current].append(name)
    return groups


def names(fleet):
    return [host(gitlab.url) for gitlab in fleet.gitlabs]


def test_graph_and_list_show_the_fleet_mobb_knows_without_a_secret(fleet, config):
    for gitlab in fleet.gitlabs:
        add_in_mobb(fleet, gitlab)
    direct, brokered = names(fleet)
    graph = ansible_inventory(fleet, '-i', str(config), '--graph')
    assert graph.returncode == 0, graph.stderr
    assert graph_groups(graph.stdout) == {
        'all': [], 'ungrouped': [], 'mobb_gitlab_servers': sorted([direct, brokered]),
        'mobb_brokered': [brokered], 'via_direct': [direct], 'via_broker': [brokered]}, graph.stdout
    env = {token_variable(name): gitlab.admin_token for name, gitlab in zip(names(fleet), fleet.gitlabs)}
    listed = ansible_inventory(fleet, '-i', str(config), '--list', '--yaml', env=env)
    assert listed.returncode == 0, listed.stderr
    document = yaml.safe_load(listed.stdout)
    onprem = document['all']['children']['mobb_gitlab_servers']['hosts'][brokered]
    assert onprem['gitlab_token_rotation_gitlab_url'] == fleet.gitlabs[1].url
    assert onprem['mobb_brokered'] is True and onprem['mobb_broker_virtual_domain'] == f'vd-{fleet.gitlabs[1].name}'
    assert onprem['gitlab_token_rotation_verify_delay'] == 0  # compose
    # group_vars beside the configuration: --list shows the lookup, not the token it finds.
    assert onprem['gitlab_token_rotation_user'] == 'alice'
    assert onprem['gitlab_token_rotation_gitlab_api_token'] == TOKEN_LOOKUP


def test_a_bad_key_is_a_clear_error(fleet, config):
    failed = ansible_inventory(fleet, '-i', str(config), '--graph',
                               env={'MOBB_API_KEY': 'not-the-key', 'ANSIBLE_INVENTORY_UNPARSED_FAILED': 'true'})
    assert failed.returncode != 0
    assert 'mobb.scm.mobb_integrations: cannot read the GitLab servers from the Mobb API at ' in failed.stderr
    assert 'Mobb refused the API key (access-denied' in failed.stderr
    assert 'not-the-key' not in failed.stdout + failed.stderr


def test_rotate_runs_against_the_plugins_inventory_and_picks_up_a_server_added_in_mobb(fleet, config):
    add_in_mobb(fleet, fleet.gitlabs[0])
    env = {token_variable(host(gitlab.url)): gitlab.admin_token for gitlab in fleet.gitlabs}

    def rotate():
        return fleet.run([{'import_playbook': 'mobb.scm.rotate'}], args=['-i', str(config), '-f', '2'],
                         extra_vars={'mobb_scm_hosts': 'mobb_gitlab_servers'}, env=env)

    first = rotate()
    assert first.rc == 0, first.output[-4000:]
    report = first.task('mobb.scm.gitlab_token_rotation : Show the report')['msg']
    assert report[0].endswith('1 token(s) on 1 host(s): created: 1'), report
    assert fleet.mobb_uses(0) == (True, fleet.active(0)[0]['id'])

    add_in_mobb(fleet, fleet.gitlabs[1])  # a new server in Mobb, through its broker
    second = rotate()
    assert second.rc == 0, second.output[-4000:]
    report = second.task('mobb.scm.gitlab_token_rotation : Show the report')['msg']
    summary = report[0].split(' - ', 1)[1]
    assert summary in ('2 token(s) on 2 host(s): none: 1, created: 1',
                       '2 token(s) on 2 host(s): created: 1, none: 1'), report
    assert fleet.mobb_uses(1) == (True, fleet.active(1)[0]['id'])


def test_the_awx_inventory_source_of_docs_awx_md(fleet, tmp_path):
    """docs/awx.md's plugin configuration and group_vars, with the environment its Mobb
    credential type injects, as AWX's inventory update runs them."""
    from awx_docs import injected_environment, raw_yaml_blocks

    add_in_mobb(fleet, fleet.gitlabs[0])
    blocks = {block.split('\n', 1)[0][2:].strip(): block for block in raw_yaml_blocks() if block.startswith('# inventory/')}
    for name, block in blocks.items():
        path = tmp_path / 'project' / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block)
    environment = injected_environment({
        'GitLab token manager (mobb.scm)': {'gitlab_token': fleet.gitlabs[0].admin_token},
        'Mobb API key (mobb.scm)': {'mobb_api_url': fleet.mobb.graphql_url, 'mobb_api_key': fleet.api_key}})
    listed = ansible_inventory(fleet, '-i', str(tmp_path / 'project' / 'inventory' / 'gitlab.mobb_integrations.yml'),
                               '--list', '--yaml', env=environment)
    assert listed.returncode == 0, listed.stderr
    servers = yaml.safe_load(listed.stdout)['all']['children']['mobb_gitlab_servers']['hosts']
    assert list(servers) == [host(fleet.gitlabs[0].url)]
    assert servers[host(fleet.gitlabs[0].url)]['gitlab_token_rotation_user'] == 'mobb-bot'


def playbook(fleet, name, config, extra_vars=None, args=(), env=None):
    return fleet.run([{'import_playbook': 'mobb.scm.%s' % name}], args=['-i', str(config)] + list(args),
                     extra_vars=extra_vars, env=env)


def fleet_message(run):
    return run.task('mobb.scm.gitlab_token_rotation : Fail when the inventory could not be read or the target has '
                    'no host')['msg']


def with_options(config, **options):
    document = yaml.safe_load(config.read_text())
    document.update(options)
    config.write_text(yaml.safe_dump(document))
    return config


UNREADABLE = {
    'bad-key': ({'env': {'MOBB_API_KEY': 'not-the-key'}}, 'Mobb refused the API key (access-denied'),
    'http-502': ({'fault': {'kind': 'status', 'status': 502}}, 'still answered HTTP 502 after 0 retries'),
    'html-page': ({'fault': {'kind': 'html200'}}, 'still answered with a proxy page saying "bad gateway"'),
    'timeout': ({'fault': {'kind': 'delay', 'seconds': 4}, 'options': {'timeout': 1}}, 'did not answer within 1 s'),
    'wrong-shape': ({'fault': {'kind': 'answer', 'body': {'data': {'me': {'id': 'u', 'scmConfigs': 'x'}}}}},
                    'Mobb answered me with scmConfigs as a JSON string, not a list of objects'),
}


@pytest.mark.parametrize('case', list(UNREADABLE))
def test_an_unreadable_mobb_fails_rotate_and_check_with_the_plugins_message(fleet, config, case):
    setup, message = UNREADABLE[case]
    add_in_mobb(fleet, fleet.gitlabs[0])
    with_options(config, retries=0, **setup.get('options', {}))
    for name in ('rotate', 'check'):
        if 'fault' in setup:
            fleet.mobb.fault(operation='Me', **setup['fault'])
        # Target all: the test runner's inventory has a host (localhost), and still the job fails.
        run = playbook(fleet, name, config, env=setup.get('env'))
        assert run.rc != 0, run.output[-3000:]
        shown = fleet_message(run)
        assert shown.startswith('mobb.scm.mobb_integrations: cannot read the GitLab servers from the Mobb API at %s: '
                                % fleet.mobb.graphql_url) and message in shown, shown
        assert 'not-the-key' not in run.output
        assert fleet.gitlab_writes() == [] and fleet.mobb.writes() == []
        # No host was kept: the play that keeps tokens never started.
        assert "PLAY [Keep Mobb's GitLab tokens fresh]" not in run.output and 'PLAY [Check' in run.output


def test_an_inventory_without_servers_fails_unless_an_empty_fleet_is_allowed(fleet, config):
    target = {'mobb_scm_hosts': 'mobb_gitlab_servers'}
    for name in ('rotate', 'check'):
        run = playbook(fleet, name, config, extra_vars=target)
        assert run.rc != 0, run.output[-3000:]
        assert fleet_message(run) == (
            "no host in the inventory matches 'mobb_gitlab_servers', so no GitLab token would be kept: check the "
            'inventory (-i) and mobb_scm_hosts, or pass -e mobb_scm_allow_empty=true if a fleet with no server is '
            'expected')
        allowed = playbook(fleet, name, config, extra_vars=dict(target, mobb_scm_allow_empty=True))
        assert allowed.rc == 0, allowed.output[-3000:]


def test_limit_and_a_host_named_localhost_still_work(fleet, config):
    add_in_mobb(fleet, fleet.gitlabs[0])
    name = host(fleet.gitlabs[0].url)
    env = {token_variable(name): fleet.gitlabs[0].admin_token}
    limited = playbook(fleet, 'rotate', config, args=['--limit', name], env=env)
    assert limited.rc == 0, limited.output[-3000:]
    assert fleet.mobb_uses(0) == (True, fleet.active(0)[0]['id'])
    # The runner's inventory holds a host named localhost: the check's play runs on it, and a
    # target of localhost alone is a fleet of one host (which has no GitLab settings: it fails there).
    run = playbook(fleet, 'check', config,
                   extra_vars={'mobb_scm_hosts': 'localhost', 'mobb_scm_report_dir': str(fleet.tmp_path / 'reports')})
    assert 'no host in the inventory matches' not in run.output
    assert 'PLAY [Check Mobb' in run.output


def test_hosts_of_gitlab_servers_under_paths_work_as_ansible_host_names(fleet, config, tmp_path):
    paths = ('https://git.example.com/gitlab-a', 'https://git.example.com/tools/gitlab')
    fleet.mobb.seed(scm_configs=[{'user': ADMIN_KEY, 'scm_url': url} for url in paths])
    graph = ansible_inventory(fleet, '-i', str(config), '--graph')
    assert graph.returncode == 0, graph.stderr
    names = ['git.example.com_gitlab-a', 'git.example.com_tools_gitlab']
    assert graph_groups(graph.stdout)['mobb_gitlab_servers'] == names
    shown = ansible_inventory(fleet, '-i', str(config), '--host', names[1])
    assert shown.returncode == 0 and json.loads(shown.stdout)['gitlab_token_rotation_gitlab_url'] == paths[1]
    # --limit, mobb_scm_hosts and a retry file name them as they are.
    plays = [{'hosts': '{{ mobb_scm_hosts }}', 'gather_facts': False, 'tasks': [
        {'ansible.builtin.fail': {'msg': 'retry me'}, 'when': "inventory_hostname.endswith('gitlab-a')"}]}]
    retry = tmp_path / 'retry'
    env = {'ANSIBLE_RETRY_FILES_ENABLED': 'True', 'ANSIBLE_RETRY_FILES_SAVE_PATH': str(retry)}
    run = fleet.run(plays, args=['-i', str(config), '--limit', ','.join(names)],
                    extra_vars={'mobb_scm_hosts': 'mobb_gitlab_servers'}, env=env)
    assert run.rc != 0 and 'skipping: [git.example.com_tools_gitlab]' in run.output, run.output[-3000:]
    retry_file = next(retry.iterdir())
    assert retry_file.read_text().split() == [names[0]]
    again = fleet.run(plays, args=['-i', str(config), '--limit', '@%s' % retry_file],
                      extra_vars={'mobb_scm_hosts': names[0]}, env=env)
    assert 'fatal: [git.example.com_gitlab-a]' in again.output and 'tools_gitlab' not in again.output
