"""No credential a URL carries in anything the collection prints: URLs given to a module
(mobb.scm.mobb_integration, mobb.scm.gitlab_personal_access_token) and to the action
mobb.scm.gitlab_server_token with ``user:token@`` or ``?private_token=``, through
ansible-playbook at -vvvv, with Mobb answering 502 so that its warnings and error name
the URL. The credential is a token the local GitLab issued, so Fleet.run's leak check
searches the output, the results and the files for it."""
from __future__ import annotations

import urllib.parse

import pytest

from rotation_fleet import PERSONAL, Fleet


@pytest.fixture
def fleet(run_playbook, mobb, gitlab, tmp_path):
    return Fleet(run_playbook, mobb, [gitlab], tmp_path)


# The credential reaches the play from the environment: the playbook file must not hold it.
CREDENTIAL = "{{ lookup('ansible.builtin.env', 'URL_CREDENTIAL') }}"


@pytest.fixture
def credential(fleet):
    """The environment that gives CREDENTIAL a token GitLab issued (one of the values every
    run is searched for)."""
    seeded = fleet.gitlabs[0].seed(tokens=[{'kind': 'personal', 'user': 'alice', 'name': 'in-a-url'}])
    return {'URL_CREDENTIAL': seeded['tokens'][0]['token']}


def with_userinfo(url, secret):
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, 'oauth2:%s@%s' % (secret, parts.netloc), parts.path, '', ''))


def test_modules_name_urls_without_their_credentials(fleet, credential):
    gitlab_url = fleet.gitlabs[0].url
    query_url = '%s?private_token=%s' % (fleet.mobb.graphql_url, CREDENTIAL)
    fleet.mobb.fault('status', status=502, count=4)
    tasks = [
        {'name': 'mobb api_url with a query', 'mobb.scm.mobb_integration': {
            'api_url': query_url, 'scm_url': gitlab_url, 'token': 'glpat-not-stored', 'retries': 1}},
        {'name': 'mobb scm_url with credentials', 'mobb.scm.mobb_integration': {
            'api_url': fleet.mobb.graphql_url, 'scm_url': with_userinfo(gitlab_url, CREDENTIAL),
            'token': 'glpat-not-stored'}},
        {'name': 'gitlab api_url with credentials', 'mobb.scm.gitlab_personal_access_token': {
            'api_url': with_userinfo(gitlab_url, CREDENTIAL), 'api_token': 'glpat-not-used', 'user': 'alice',
            'name': 'x'}},
        {'name': 'gitlab api_url not http', 'mobb.scm.gitlab_personal_access_token': {
            'api_url': 'ftp://root:%s@gitlab.example.com' % CREDENTIAL, 'api_token': 'glpat-not-used',
            'user': 'alice', 'name': 'x'}},
    ]
    for task in tasks:
        task['ignore_errors'] = True
    run = fleet.run([{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}], env=credential)
    failed = {task['name']: run.task(task['name'])['msg'] for task in tasks}
    assert 'Mobb API at %s?private_token=*** still answered HTTP 502 after 1 retries' % fleet.mobb.graphql_url in (
        failed['mobb api_url with a query']), failed
    assert 'private_token=***: HTTP 502' in run.output  # the retry's warning
    assert 'scm_url must not carry credentials' in failed['mobb scm_url with credentials']
    assert 'api_url must not carry credentials' in failed['gitlab api_url with credentials']
    assert "got 'ftp://***@gitlab.example.com'" in failed['gitlab api_url not http']


def test_the_action_names_urls_without_their_credentials(fleet, credential):
    gitlab_url = fleet.gitlabs[0].url
    fleet.mobb.fault('status', status=502, count=4)
    cases = {
        'gitlab_url': {'gitlab_token_rotation_gitlab_url': with_userinfo(gitlab_url, CREDENTIAL)},
        'mobb_scm_url': {'gitlab_token_rotation_mobb_scm_url': with_userinfo(gitlab_url, CREDENTIAL)},
        'mobb_api_url': {'gitlab_token_rotation_mobb_api_url': '%s?private_token=%s' % (
            fleet.mobb.graphql_url, CREDENTIAL), 'gitlab_token_rotation_mobb_timeout': 5},
    }
    for option, role_vars in cases.items():
        run = fleet.run(fleet.role_play(**PERSONAL, **role_vars), env=credential)
        assert run.rc != 0, run.output[-3000:]
        if option == 'mobb_api_url':
            assert '?private_token=***' in run.output, run.output[-3000:]
        else:
            assert '%s must not carry credentials' % option in run.output, run.output[-3000:]
