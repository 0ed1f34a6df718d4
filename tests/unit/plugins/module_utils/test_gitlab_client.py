"""connect() over real HTTP against the local GitLab."""
from __future__ import annotations

import pytest

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import (
    CONNECTION_ARGSPEC, GitLabModuleError, connect)

CREDENTIAL_VARIABLES = ('GITLAB_TOKEN', 'GITLAB_OAUTH_TOKEN', 'CI_JOB_TOKEN')


def options(**given):
    """The connection options as AnsibleModule gives them: every key, defaults applied."""
    params = {name: spec.get('default') for name, spec in CONNECTION_ARGSPEC.items()}
    params.update(given)
    return params


@pytest.fixture(autouse=True)
def no_credentials_in_the_environment(monkeypatch):
    for variable in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def admin_client(gitlab, url=None, **given):
    client, _secrets = connect(options(api_url=url or gitlab.url, api_token=gitlab.admin_token, **given))
    return client


def logged(gitlab):
    return [(entry['method'], entry['path'], entry['status'], entry['fault']) for entry in gitlab.requests()]


# ---- connect ------------------------------------------------------------------------------

@pytest.mark.parametrize('spelling', ['{url}', '{url}/', '{url}/api/v4', '{url}/api/v4/', '{upper}/API/V4/'])
def test_every_spelling_of_the_server_reaches_the_same_api(gitlab, spelling):
    upper = gitlab.url.replace('http://', 'HTTP://')
    client = admin_client(gitlab, url=spelling.format(url=gitlab.url, upper=upper))
    assert client.url == gitlab.url
    assert gitlab.requests() == []  # connect() itself asks nothing
    client.auth()
    assert client.user.username == 'root'
    assert logged(gitlab) == [('GET', '/api/v4/user', 200, None)]


def test_scheme_and_host_case_do_not_matter():
    client, _secrets = connect(options(api_url='HTTPS://GitLab.Example.COM:443/gitlab/api/v4/', api_token='x'))
    assert client.url == 'https://gitlab.example.com/gitlab'
    assert client.api_url == 'https://gitlab.example.com/gitlab/api/v4'


@pytest.mark.parametrize('url, message', [
    ('gitlab.example.com', "api_url must be an http(s) URL with a host, such as https://gitlab.example.com, "
                           "got 'gitlab.example.com'"),
    ('ftp://gitlab.example.com', 'api_url must be an http(s) URL with a host'),
    ('https://root:hunter2@gitlab.example.com', 'api_url must not carry credentials (user:password@): '
                                                'remove them from the URL'),
    ('https://gitlab.example.com:99999', "api_url has an invalid port: 'https://gitlab.example.com:99999'"),
    ('', 'api_url is required: set it (for example once, with module_defaults for group/mobb.scm.gitlab) '
         'or the GITLAB_URL environment variable'),
])
def test_unusable_api_url_is_a_module_error_naming_the_option(url, message):
    with pytest.raises(GitLabModuleError) as caught:
        connect(options(api_url=url, api_token='x'))
    assert str(caught.value).startswith(message)
    assert 'hunter2' not in str(caught.value)


def test_credentials_fall_back_to_the_environment_in_order(gitlab, monkeypatch):
    monkeypatch.setenv('CI_JOB_TOKEN', 'job-token-from-ci')
    client, secrets = connect(options(api_url=gitlab.url))
    assert (client.job_token, client.private_token, secrets) == ('job-token-from-ci', None, ['job-token-from-ci'])

    monkeypatch.setenv('GITLAB_TOKEN', gitlab.admin_token)
    client, secrets = connect(options(api_url=gitlab.url))
    assert (client.private_token, client.job_token, secrets) == (gitlab.admin_token, None, [gitlab.admin_token])
    client.auth()
    assert client.user.username == 'root'


def test_a_credential_option_wins_over_the_environment(gitlab, monkeypatch):
    monkeypatch.setenv('GITLAB_TOKEN', 'glpat-from-the-environment')
    client, secrets = connect(options(api_url=gitlab.url, api_oauth_token=gitlab.admin_token))
    assert (client.oauth_token, client.private_token, secrets) == (gitlab.admin_token, None, [gitlab.admin_token])
    client.auth()
    assert client.user.username == 'root'


def test_no_credential_anywhere_is_refused(gitlab):
    with pytest.raises(GitLabModuleError, match=r'^no GitLab credentials: set api_token'):
        connect(options(api_url=gitlab.url))
