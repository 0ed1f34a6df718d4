"""The local Mobb server's /_test/ control API: seed, settings, broker, clock, reset.

Bad control input is refused with a message and changes nothing.
"""
from __future__ import annotations

import hashlib

import pytest
import requests

from mobb_server.client import MobbServerError

ME = 'query Me { me { email userOrganizationsAndUserOrganizationRoles { organization { brokerHosts { realDomain } } } } }'


def _state(mobb):
    """Everything observable through the control API except the request log."""
    return mobb.settings(), mobb.scm_configs(), mobb.secrets()


def test_seed_answers_ids_keys_and_generated_virtual_domains(mobb):
    seeded = mobb.seed(
        organizations=[{'name': 'acme', 'broker_hosts': [
            {'real_domain': 'gitlab.acme.test'},
            {'real_domain': 'git.acme.test', 'virtual_domain': '9b7c1e7e-0000-4000-8000-000000000001', 'up': False}]}],
        users=[{'email': 'admin@acme.test', 'organization': 'acme'}])
    [org] = seeded['organizations']
    assert [(h['real_domain'], h['up']) for h in org['broker_hosts']] == [('gitlab.acme.test', True),
                                                                          ('git.acme.test', False)]
    assert len(org['broker_hosts'][0]['virtual_domain']) == 36
    assert org['broker_hosts'][1]['virtual_domain'] == '9b7c1e7e-0000-4000-8000-000000000001'
    [user] = seeded['users']
    assert user['organizations'] == [{'id': org['id'], 'name': 'acme', 'role': 'Admin'}]
    assert len(user['api_key']) >= 32
    assert mobb.secrets() == [user['api_key']]


def test_seeding_a_known_email_adds_a_membership(mobb):
    mobb.seed(organizations=[{'name': 'acme', 'broker_hosts': [{'real_domain': 'gitlab.acme.test'}]},
                             {'name': 'globex', 'broker_hosts': [{'real_domain': 'gitlab.globex.test'}]}],
              users=[{'email': 'pat@example.test', 'organization': 'acme', 'role': 'Member'}])
    again = mobb.seed(users=[{'email': 'PAT@example.test', 'organization': 'globex', 'role': 'Owner'}])
    [user] = again['users']
    assert [(org['name'], org['role']) for org in user['organizations']] == [('acme', 'Member'), ('globex', 'Owner')]
    me = mobb.graphql(ME, api_key=user['api_key']).json()['data']['me']
    assert [o['organization']['brokerHosts'][0]['realDomain'] for o in me['userOrganizationsAndUserOrganizationRoles']] \
        == ['gitlab.acme.test', 'gitlab.globex.test']


@pytest.mark.parametrize('document, message', [
    ({'organisations': []}, "unknown seed key(s) ['organisations']"),
    ({'organizations': [{'name': 'acme'}, {'name': 'acme'}]}, "organization 'acme' already exists"),
    ({'organizations': [{'name': 'new'}], 'users': [{'email': 'x@y.test', 'organization': 'nowhere'}]},
     "user 'x@y.test': unknown organization 'nowhere'"),
    ({'organizations': [{'name': 'new'}], 'users': [{'email': 'x@y.test', 'organization': 'new', 'role': 'admin'}]},
     "role must be one of ['Owner', 'Admin', 'Member'], got 'admin'"),
    ({'organizations': [{'name': 'new', 'broker_hosts': [{'virtual_domain': 'v'}]}]},
     "each broker host of 'new' needs a \"real_domain\""),
    ({'users': [{'email': 'x@y.test', 'organization': 'acme', 'api_key': 'short'}]},
     'api_key must be a string of at least 16 characters'),
    ({'organizations': [{'name': 'new'}],
      'scm_configs': [{'user': 'admin@acme.test', 'scm_url': 'gitlab.acme.test', 'token': 't'}]},
     "scm_url must be an http(s) URL, got 'gitlab.acme.test'"),
    ({'users': [{'email': 'x@y.test', 'organization': 'acme'}], 'settings': {'return_token': False}},
     "unknown setting(s) ['return_token']"),
], ids=['unknown-key', 'duplicate-org', 'unknown-org', 'bad-role', 'broker-without-domain', 'short-key',
        'bad-scm-url', 'bad-setting'])
def test_bad_seed_is_refused_and_adds_nothing(mobb, document, message):
    admin = mobb.seed(organizations=[{'name': 'acme'}],
                      users=[{'email': 'admin@acme.test', 'organization': 'acme'}])['users'][0]
    before = _state(mobb)
    response = requests.post(f'{mobb.url}/_test/seed', json=document, timeout=10)
    assert response.status_code == 400
    assert message in response.json()['error']
    assert _state(mobb) == before
    me = mobb.graphql(ME, api_key=admin['api_key']).json()['data']['me']
    assert len(me['userOrganizationsAndUserOrganizationRoles']) == 1


def test_seeded_scm_config_shows_a_fingerprint_never_the_token(mobb):
    mobb.seed(organizations=[{'name': 'acme'}], users=[{'email': 'admin@acme.test', 'organization': 'acme'}])
    [config] = mobb.seed(scm_configs=[{'user': 'admin@acme.test', 'scm_url': 'HTTPS://GitLab.Acme.Test:443/',
                                       'token': 'glpat-seeded-secret', 'refresh_token': 'refresh-seeded',
                                       'username': 'bot', 'org': 'team'}])['scm_configs']
    assert config['scm_url'] == 'https://gitlab.acme.test'
    assert config['token_sha256'] == hashlib.sha256(b'glpat-seeded-secret').hexdigest()
    assert config['refresh_token_sha256'] == hashlib.sha256(b'refresh-seeded').hexdigest()
    assert (config['scm_type'], config['scm_org'], config['scm_username'], config['user']) == (
        'GitLab', 'team', 'bot', 'admin@acme.test')
    assert (config['is_token_available'], config['writes']) == (True, 0)
    listing = requests.get(f'{mobb.url}/_test/scm_configs', timeout=10).text
    assert 'glpat-seeded-secret' not in listing and 'refresh-seeded' not in listing
    assert {'glpat-seeded-secret', 'refresh-seeded'} <= set(mobb.secrets())


def test_settings_read_change_and_refuse_bad_values(mobb):
    assert mobb.settings() == {'return_tokens': True, 'check_failure': 'errors', 'require_api_scope': True,
                               'scm_timeout': 5.0}
    assert mobb.settings(return_tokens=False, scm_timeout=1)['return_tokens'] is False
    for bad, message in (({'return_tokens': 'no'}, 'return_tokens must be true or false'),
                         ({'check_failure': 'silent'}, 'check_failure must be "errors" or "status"'),
                         ({'scm_timeout': 0}, 'scm_timeout must be a number of seconds above 0')):
        with pytest.raises(MobbServerError, match=message):
            mobb.settings(**bad)
    assert mobb.settings() == {'return_tokens': False, 'check_failure': 'errors', 'require_api_scope': True,
                               'scm_timeout': 1}


def test_broker_switch_applies_to_every_organization_with_that_domain(mobb):
    mobb.seed(organizations=[{'name': 'a', 'broker_hosts': [{'real_domain': 'gitlab.shared.test'}]},
                             {'name': 'b', 'broker_hosts': [{'real_domain': 'GITLAB.shared.test'}]}])
    hosts = mobb.set_broker('gitlab.SHARED.test', False)
    assert [host['up'] for host in hosts] == [False, False]
    response = requests.post(f'{mobb.url}/_test/broker', json={'real_domain': 'gitlab.shared.test'}, timeout=10)
    assert response.status_code == 400
    assert response.json() == {'error': 'broker expects {"real_domain": "...", "up": true|false}'}


def test_clock_moves_and_is_set(mobb):
    start = mobb.clock()
    later = mobb.advance_clock(2)
    assert later > start
    assert mobb.set_clock('2030-01-02T03:04:05Z').startswith('2030-01-02T03:04:0')
    response = requests.post(f'{mobb.url}/_test/clock', json={'now': 'tomorrow'}, timeout=10)
    assert response.status_code == 400
    assert mobb.clock().startswith('2030-01-02')


def test_reset_empties_the_server(mobb):
    seeded = mobb.seed(organizations=[{'name': 'acme'}], users=[{'email': 'a@acme.test', 'organization': 'acme'}],
                       settings={'return_tokens': False})
    mobb.fault('drop', operation='nothing')
    mobb.graphql(ME, api_key=seeded['users'][0]['api_key'])
    advanced = mobb.advance_clock(100)
    assert mobb.reset() == {'reset': True}
    assert (mobb.requests(), mobb.faults(), mobb.secrets(), mobb.scm_configs()) == ([], [], [], [])
    assert mobb.settings()['return_tokens'] is True
    assert mobb.clock() < advanced
    answer = mobb.graphql(ME, api_key=seeded['users'][0]['api_key']).json()
    assert answer['errors'][0]['extensions']['code'] == 'access-denied'
    assert mobb.seed(organizations=[{'name': 'acme'}])['organizations'][0]['name'] == 'acme'
