"""One spelling of a GitLab server's base URL (plugins/module_utils/urls.py)."""
from __future__ import annotations

import pytest

from ansible_collections.mobb.scm.plugins.module_utils.urls import UrlError, normalize_server_url


@pytest.mark.parametrize('given, plain', [
    ('https://gitlab.example.com', 'https://gitlab.example.com'),
    ('https://gitlab.example.com/', 'https://gitlab.example.com'),
    ('https://gitlab.example.com/api/v4', 'https://gitlab.example.com'),
    ('https://gitlab.example.com//api/v4//', 'https://gitlab.example.com'),
    ('HTTPS://GitLab.Example.COM/API/V4', 'https://gitlab.example.com'),
    ('https://gitlab.example.com:443/', 'https://gitlab.example.com'),
    ('http://gitlab.example.com:80', 'http://gitlab.example.com'),
    ('http://gitlab.example.com:8080/gitlab/api/v4/', 'http://gitlab.example.com:8080/gitlab'),
    ('  https://[::1]:8443/  ', 'https://[::1]:8443'),
    ('https://gitlab.example.com/Team', 'https://gitlab.example.com/Team'),
])
def test_spellings_of_one_server_give_one_url(given, plain):
    assert normalize_server_url(given, 'gitlab_url') == plain


@pytest.mark.parametrize('given, message', [
    ('', 'gitlab_url is empty'),
    ('gitlab.example.com', "gitlab_url must be an http(s) URL with a host, such as https://gitlab.example.com, "
                           "got 'gitlab.example.com'"),
    ('ftp://gitlab.example.com', 'gitlab_url must be an http(s) URL with a host'),
    ('https://root:secret@gitlab.example.com', 'gitlab_url must not carry credentials'),
    ('https://gitlab.example.com:99999', 'gitlab_url has an invalid port'),
    ('https://gitlab.example.com/#top', 'gitlab_url must be the base URL of the server, without ?query or #fragment'),
])
def test_what_cannot_name_a_server_is_refused_clearly(given, message):
    with pytest.raises(UrlError, match='^' + message.replace('(', r'\(').replace(')', r'\)').replace('?', r'\?')):
        normalize_server_url(given, 'gitlab_url')


def test_a_credential_in_the_query_is_not_repeated():
    with pytest.raises(UrlError) as raised:
        normalize_server_url('https://gitlab.example.com/?private_token=glpat-secretsecretsecret1', 'gitlab_url')
    assert 'glpat-' not in str(raised.value) and 'private_token' not in str(raised.value)
    assert str(raised.value).endswith('https://gitlab.example.com/?...')
