"""One spelling of a GitLab server's base URL (plugins/module_utils/urls.py)."""
from __future__ import annotations

import pytest

from ansible_collections.mobb.scm.plugins.module_utils.urls import (
    UrlError,
    normalize_server_url,
    redact_text,
    redact_url,
    url_secrets,
)


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


@pytest.mark.parametrize('given, shown', [
    ('http://oauth2:glpat-secret-0001@gitlab.example.com:8080/gitlab', 'http://***@gitlab.example.com:8080/gitlab'),
    ('https://glpat-secret-0001@gitlab.example.com/', 'https://***@gitlab.example.com/'),
    ('https://gitlab.example.com/api/v4?private_token=glpat-secret-0001&per_page=5',
     'https://gitlab.example.com/api/v4?private_token=***&per_page=***'),
    ('https://gitlab.example.com/?glpat-secret-0001', 'https://gitlab.example.com/?***'),
    ('https://gitlab.example.com/#access_token=glpat-secret-0001', 'https://gitlab.example.com/#***'),
    ('https://u:p@a@[::1', 'https://***@[::1'),
    ('https://gitlab.example.com/team', 'https://gitlab.example.com/team'),
])
def test_a_url_is_printed_with_scheme_host_port_and_path_only(given, shown):
    assert redact_url(given) == shown
    if 'secret' in given:
        assert 'glpat-secret-0001' in url_secrets(given)


def test_every_url_in_a_message_is_redacted():
    text = ("HTTPConnectionPool(host='h', port=80): Max retries exceeded with url: /v1/graphql?key=glpat-secret-0001 "
            "(tried 'http://root:glpat-secret-0002@h/x?private_token=glpat-secret-0003')")
    assert redact_text(text) == ("HTTPConnectionPool(host='h', port=80): Max retries exceeded with url: "
                                 "/v1/graphql?key=*** (tried 'http://***@h/x?private_token=***')")


@pytest.mark.parametrize('given', ['ftp://root:glpat-secret-0001@gitlab.example.com',
                                   'https://gitlab.example.com:99999?t=glpat-secret-0001'])
def test_a_refused_url_is_named_without_its_credentials(given):
    with pytest.raises(UrlError) as raised:
        normalize_server_url(given, 'gitlab_url')
    assert 'glpat-secret-0001' not in str(raised.value) and '***' in str(raised.value)


def test_short_query_values_are_not_secrets_to_mask():
    assert url_secrets('https://gitlab.example.com/?page=1&private_token=glpat-secret-0001') == ['glpat-secret-0001']
    assert url_secrets(None) == [] and url_secrets('https://gitlab.example.com') == []


def test_the_punctuation_after_a_url_stays_in_the_message():
    assert redact_text('Mobb API at https://h/v1/graphql?key=glpat-secret-0001: HTTP 502.') == (
        'Mobb API at https://h/v1/graphql?key=***: HTTP 502.')
