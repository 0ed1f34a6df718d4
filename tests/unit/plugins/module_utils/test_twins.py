"""Which Mobb integration a token feeds, and the twins of a play (plugins/module_utils/twins.py)."""
from __future__ import annotations

import pytest

from ansible_collections.mobb.scm.plugins.module_utils.mobb import DEFAULT_API_URL
from ansible_collections.mobb.scm.plugins.module_utils.twins import integration_of, label_of, twin_messages

KEY = 'mobb-key-a'
ENV = {'MOBB_API_KEY': KEY}


def test_the_integration_is_the_mobb_api_the_key_and_the_normalised_scm_url():
    api_url, digest, scm_url = integration_of({'gitlab_url': 'HTTPS://GitLab.Example.com:443/api/v4/'}, ENV)
    assert (api_url, scm_url) == (DEFAULT_API_URL, 'https://gitlab.example.com')
    assert KEY not in digest and len(digest) == 64


@pytest.mark.parametrize('spelling', [
    {'gitlab_url': 'https://gitlab.example.com/'},
    {'gitlab_url': 'https://gitlab.example.com/api/v4', 'mobb_api_key': KEY},
    {'gitlab_url': 'https://other.example', 'mobb_scm_url': 'https://GITLAB.example.com'},
    {'gitlab_url': 'https://gitlab.example.com', 'mobb_api_url': DEFAULT_API_URL + '/'},
])
def test_spellings_of_one_integration_are_one(spelling):
    assert integration_of(spelling, ENV) == integration_of({'gitlab_url': 'https://gitlab.example.com'}, ENV)


@pytest.mark.parametrize('apart', [
    {'mobb_api_key': 'mobb-key-b'},
    {'mobb_scm_url': 'https://gitlab.internal.example.com'},
    {'mobb_api_url': 'https://mobb.example.com/v1/graphql'},
    {'gitlab_url': 'https://gitlab.example.com/gitlab-b'},
])
def test_another_key_api_or_url_is_another_integration(apart):
    base = {'gitlab_url': 'https://gitlab.example.com'}
    assert integration_of(dict(base, **apart), ENV) != integration_of(base, ENV)


def test_the_environment_gives_the_api_url_and_key_left_unset():
    environ = {'MOBB_API_KEY': KEY, 'MOBB_API_URL': 'https://mobb.example.com/v1/graphql'}
    assert integration_of({'gitlab_url': 'https://gitlab.example.com'}, environ)[0] == \
        'https://mobb.example.com/v1/graphql'


@pytest.mark.parametrize('options', [
    {'gitlab_url': 'https://gitlab.example.com'},            # no key anywhere
    {'gitlab_url': 'not a url', 'mobb_api_key': KEY},
    {'gitlab_url': None, 'mobb_api_key': KEY},
])
def test_settings_that_name_no_integration_name_none(options):
    assert integration_of(options, {}) is None


def test_twins_are_named_each_with_the_other_and_the_url_they_share_never_the_key():
    tokens = [('a.example', 0, {'gitlab_url': 'https://gitlab.example.com', 'user': 'alice'}, False),
              ('b.example', 0, {'gitlab_url': 'https://gitlab.example.com/', 'token_type': 'project',
                                'project': 'team/app'}, False),
              ('b.example', 1, {'gitlab_url': 'https://gitlab.example.com', 'mobb_api_key': 'mobb-key-b'}, False),
              ('c.example', 0, {'gitlab_url': 'https://c.example.com'}, False),
              # A URL known only as the play's value: compared within its own host alone.
              ('d.example', 0, {'gitlab_url': 'https://gitlab.example.com'}, True)]
    messages = twin_messages(tokens, ENV)
    assert sorted(messages) == [('a.example', 0), ('b.example', 0)]
    assert messages[('a.example', 0)] == messages[('b.example', 0)] == (
        'twin tokens: host a.example token personal:alice/mobb-broker and host b.example token '
        'project:team/app/mobb-broker feed one Mobb integration, https://gitlab.example.com (Mobb API '
        "%s, one API key), so each run would replace the other's token in Mobb; keep one of them, or give "
        'the others their own mobb_api_key or mobb_scm_url' % DEFAULT_API_URL)
    assert not [message for message in messages.values() if KEY in message]


def test_labels_are_the_actions():
    assert label_of({'token_type': 'service_account', 'group': 'team', 'service_account': 'bot',
                     'token_name': ' mobb '}) == 'service_account:team/bot/mobb'
    assert label_of({}) == 'personal:(api user)/mobb-broker'
