"""The live test target (``make live``, tests/live/) proven against the local GitLab and Mobb.

The live tests cannot reach a real GitLab or Mobb here, so these tests point them at the
local servers, through the same ``make live`` a person runs, and check from the servers'
side what the live run did: the tokens it issued and revoked, what it wrote to Mobb (only
when asked), and that none of the secrets the servers issued reached its output.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.parse
from xml.etree import ElementTree

import pytest

from playbook_runner import PlaybookRun

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIVE_VARIABLES = ('GITLAB_URL', 'GITLAB_TOKEN', 'LIVE_GITLAB_PROJECT', 'MOBB_API_URL', 'MOBB_API_KEY',
                  'GITLAB_CA_PATH', 'LIVE_MOBB_WRITE')
# What an outer make or pytest leaves in the environment that must not steer the inner run.
INHERITED_NOISE = ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'PYTEST_ADDOPTS', 'PYTEST_CURRENT_TEST',
                   'PYTEST_XDIST_WORKER', 'PYTEST_XDIST_WORKER_COUNT', 'PYTEST_XDIST_TESTRUNUID',
                   'GITLAB_OAUTH_TOKEN', 'CI_JOB_TOKEN')
LIVE_TOKEN_PREFIX = 'mobb-scm-live-'


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def clean_environment(**variables):
    environment = {key: value for key, value in os.environ.items()
                   if key not in LIVE_VARIABLES + INHERITED_NOISE}
    environment.update(variables)
    return environment


def make_live(environment, junit_path=None):
    command = ['make', '--no-print-directory', '-C', REPO_ROOT, 'live']
    if junit_path:
        command.append(f'PYTEST_ARGS=--junitxml={junit_path} -p no:cacheprovider')
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=900,
                               check=False)
    return completed.returncode, completed.stdout + completed.stderr


def junit_cases(path):
    """Each test case of a JUnit report: name, outcome and its recorded properties."""
    cases = {}
    for case in ElementTree.parse(path).getroot().iter('testcase'):
        outcome = next((child.tag for child in case if child.tag in ('failure', 'error', 'skipped')), 'passed')
        properties = {item.get('name'): item.get('value') for item in case.iter('property')}
        cases[case.get('name')] = (outcome, properties)
    return cases


@pytest.fixture(params=['http_read_only', 'tls_mobb_write'])
def live_setup(request, mobb):
    """A scratch project with a Maintainer's token on a local GitLab (HTTP, or HTTPS with its CA in
    GITLAB_CA_PATH and LIVE_MOBB_WRITE=1), and a Mobb organization whose GitLab integration
    already holds a working token for it (the organization's "real credential")."""
    tls = request.param == 'tls_mobb_write'
    gitlab = request.getfixturevalue('gitlab_tls' if tls else 'gitlab')
    seeded = gitlab.seed(
        users=[{'username': 'live-maintainer'}, {'username': 'mobb-broker'}],
        projects=[{'path': 'live/scratch'}],
        members=[{'username': 'live-maintainer', 'project': 'live/scratch', 'access_level': 40}],
        tokens=[{'kind': 'personal', 'user': 'live-maintainer', 'name': 'live-tests', 'scopes': ['api']},
                {'kind': 'personal', 'user': 'mobb-broker', 'name': 'mobb', 'scopes': ['api', 'read_user']}])
    maintainer_token, broker_token = (token['token'] for token in seeded['tokens'])
    host = urllib.parse.urlsplit(gitlab.url).netloc
    mobb_seeded = mobb.seed(
        organizations=[{'name': 'live-org', 'broker_hosts': [{'real_domain': host}]}],
        users=[{'email': 'live@acme.example', 'organization': 'live-org', 'role': 'Admin'}],
        scm_configs=[{'user': 'live@acme.example', 'scm_url': gitlab.url, 'token': broker_token}])
    variables = {
        'GITLAB_URL': gitlab.url, 'GITLAB_TOKEN': maintainer_token, 'LIVE_GITLAB_PROJECT': 'live/scratch',
        'MOBB_API_URL': mobb.graphql_url, 'MOBB_API_KEY': mobb_seeded['users'][0]['api_key'],
    }
    if tls:
        variables.update(GITLAB_CA_PATH=gitlab.ca_path, LIVE_MOBB_WRITE='1')
    return {'gitlab': gitlab, 'mobb': mobb, 'variables': variables, 'mobb_write': tls,
            'broker_token': broker_token, 'seeded_secrets': set(gitlab.secrets())}


def test_make_live_runs_the_live_tests_and_cleans_up(live_setup, tmp_path):
    gitlab, mobb = live_setup['gitlab'], live_setup['mobb']
    junit_path = tmp_path / 'live.xml'
    rc, output = make_live(clean_environment(**live_setup['variables']), junit_path)

    issued = set(gitlab.secrets()) - live_setup['seeded_secrets']
    every_secret = set(gitlab.secrets()) | set(mobb.secrets())
    assert not [secret for secret in every_secret if secret in output], 'a secret reached make live\'s output'
    assert rc == 0, output[-3000:]
    cases = junit_cases(junit_path)
    assert {name: case[0] for name, case in cases.items()} == {
        'test_mobb_reports_on_gitlab_url_read_only': 'passed', 'test_project_access_token_lifecycle': 'passed'}

    # GitLab: the run issued exactly two tokens, under a fresh live name, and revoked both.
    properties = cases['test_project_access_token_lifecycle'][1]
    name = properties['token_name']
    assert name.startswith(LIVE_TOKEN_PREFIX)
    live_tokens = [token for token in gitlab.tokens() if token['name'].startswith(LIVE_TOKEN_PREFIX)]
    assert [token['name'] for token in live_tokens] == [name, name]
    assert [(token['active'], token['revoked']) for token in live_tokens] == [(False, True), (False, True)]
    assert all(token['kind'] == 'project' and token['resource_path'] == 'live/scratch' for token in live_tokens)
    # The fingerprints the leak check searched for are those of the tokens GitLab issued.
    assert len(issued) == 2
    assert sorted(json.loads(properties['issued_token_sha256'])) == sorted(sha256(token) for token in issued)

    # Mobb: read-only unless LIVE_MOBB_WRITE=1; then it holds the rotated token, written twice.
    read_only = cases['test_mobb_reports_on_gitlab_url_read_only'][1]
    assert read_only['mobb_connected'] == 'True'
    mutations = [entry['operation'] for entry in mobb.writes()]
    config, = mobb.scm_configs()
    if live_setup['mobb_write']:
        assert mutations == ['updateScmToken', 'updateScmToken']
        assert config['token_sha256'] == json.loads(properties['issued_token_sha256'])[1]
    else:
        assert mutations == []
        assert config['token_sha256'] == sha256(live_setup['broker_token']) and config['writes'] == 0


def test_make_live_names_the_missing_variables():
    rc, output = make_live(clean_environment(GITLAB_URL='https://gitlab.example', MOBB_API_KEY='unused'))
    assert rc != 0
    assert 'make live: not set: GITLAB_TOKEN LIVE_GITLAB_PROJECT MOBB_API_URL' in output
    assert 'pytest' not in output


def run_pytest_on_live(environment, *args):
    command = [os.path.join(os.path.dirname(sys.executable), 'pytest'), 'tests/live', '-p', 'no:cacheprovider',
               *args]
    completed = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True,
                               timeout=120, check=False)
    return completed.returncode, completed.stdout + completed.stderr


def test_live_tests_need_marker_even_with_the_variables_set():
    """GITLAB_URL and GITLAB_TOKEN in a shell (glab reads them too) never run the live tests."""
    environment = clean_environment(
        GITLAB_URL='http://127.0.0.1:9', GITLAB_TOKEN='unused', LIVE_GITLAB_PROJECT='live/scratch',
        MOBB_API_URL='http://127.0.0.1:9/v1/graphql', MOBB_API_KEY='unused')
    rc, output = run_pytest_on_live(environment)
    assert rc == pytest.ExitCode.NO_TESTS_COLLECTED, output
    assert '2 deselected' in output and 'they run with `make live` (pytest -m live)' in output


@pytest.mark.parametrize('variables, message', [
    ({'GITLAB_URL': 'http://127.0.0.1:9'},
     'live tests need GITLAB_TOKEN, LIVE_GITLAB_PROJECT, MOBB_API_URL, MOBB_API_KEY in the environment'),
    ({'GITLAB_URL': 'http://127.0.0.1:9', 'GITLAB_TOKEN': 'unused', 'LIVE_GITLAB_PROJECT': 'live/scratch',
      'MOBB_API_URL': 'http://127.0.0.1:9/v1/graphql', 'MOBB_API_KEY': 'unused', 'LIVE_MOBB_WRITE': 'yes'},
     "LIVE_MOBB_WRITE must be 1 (write to Mobb) or 0/unset (read only), not 'yes'"),
])
def test_live_tests_refuse_an_incomplete_environment(variables, message):
    rc, output = run_pytest_on_live(clean_environment(**variables), '-m', 'live')
    assert rc == pytest.ExitCode.USAGE_ERROR, output
    assert message in output
    assert 'passed' not in output and 'failed' not in output


@pytest.mark.parametrize('where', ['output', 'results'])
def test_fingerprint_leak_check_finds_a_value_it_never_saw(where):
    secret = 'glpat-' + 'k3Xq9' * 4
    text = f'ok: [localhost] => {secret}'  # at the very end: the last window counts too
    run = PlaybookRun(0, text if where == 'output' else 'ok', [{'result': text}] if where == 'results' else [])
    with pytest.raises(AssertionError, match='1 occurrence'):
        run.assert_no_fingerprinted_secrets([(sha256(secret), len(secret))])
    absent = 'glpat-' + 'Zz' * 10
    run.assert_no_fingerprinted_secrets([(sha256(absent), len(absent))])
