"""The Mobb client (plugins/module_utils/mobb.py) over real HTTP.

Most tests talk to the local Mobb server (fixture ``mobb``) and, where Mobb checks a token,
the local GitLab (fixture ``gitlab``). What the local Mobb cannot produce (TLS, a proxy, a
redirect, a non-GraphQL page, an error that echoes a secret) comes from ``StubHTTPServer``,
a small threaded HTTP server in this file that answers with fixed bytes.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import socket
import ssl
import threading
import time
import urllib.parse
import uuid

import pytest
import requests
import trustme

from ansible_collections.mobb.scm.plugins.module_utils import urls
from ansible_collections.mobb.scm.plugins.module_utils.mobb import (
    MobbAccessDeniedError,
    MobbClient,
    MobbGraphQLError,
    MobbOptionError,
    MobbRequestError,
    MobbSchemaMismatchError,
    MobbScmError,
    MobbUnknownOutcomeError,
    broker_host_for,
    find_scm_config,
    normalize_scm_url,
    token_fingerprint,
)

GITLAB_HOST = 'gitlab.internal.example'


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture
def acme(mobb):
    """An organization with a broker host, an Admin and a Member; their API keys."""
    seeded = mobb.seed(
        organizations=[{'name': 'acme', 'broker_hosts': [{'real_domain': GITLAB_HOST, 'virtual_domain': 'vd-1'}]}],
        users=[{'email': 'admin@acme.example', 'organization': 'acme', 'role': 'Admin'},
               {'email': 'member@acme.example', 'organization': 'acme', 'role': 'Member'}])
    keys = {user['email'].split('@')[0]: user['api_key'] for user in seeded['users']}
    return keys


@pytest.fixture
def warnings_seen():
    return []


@pytest.fixture
def client(mobb, acme, warnings_seen):
    with MobbClient(mobb.graphql_url, acme['admin'], warn=warnings_seen.append) as mobb_client:
        yield mobb_client


@pytest.fixture
def gitlab_token(gitlab):
    """A real PAT (api, read_user) of a GitLab user; the value GitLab issued."""
    seeded = gitlab.seed(users=[{'username': 'mobb-bot'}],
                         tokens=[{'kind': 'personal', 'user': 'mobb-bot', 'name': 'mobb',
                                  'scopes': ['api', 'read_user'], 'expires_in_days': 30}])
    return seeded['tokens'][0]['token']


def graphql_log(mobb):
    return mobb.requests()


def assert_no_secret(text, *secrets):
    for secret in secrets:
        assert secret and secret not in text


@contextlib.contextmanager
def socket_closed_port():
    """A loopback port that is bound but not listening: connections to it are refused."""
    with socket.socket() as bound:
        bound.bind(('127.0.0.1', 0))
        yield bound.getsockname()[1]


class StubHTTPServer:
    """Answers every request with ``status``, ``headers`` and ``body``; records what it got.

    With ``forward=True`` it is a plain HTTP forward proxy instead (no environment proxies).
    """

    def __init__(self, status=200, headers=None, body=b'', certificate=None, forward=False):
        self.status = status
        self.headers = headers or {}
        self.body = body
        self.received = []
        stub = self
        upstream = requests.Session()
        upstream.trust_env = False
        self._upstream = upstream

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get('Content-Length') or 0)
                payload = self.rfile.read(length)
                stub.received.append({'path': self.path, 'headers': dict(self.headers), 'body': payload})
                if forward:
                    answer = upstream.post(self.path, data=payload, timeout=10, headers={
                        key: value for key, value in self.headers.items()
                        if key.lower() in ('content-type', 'x-mobb-key', 'x-hasura-request-id')})
                    status, headers, body = answer.status_code, {'Content-Type': answer.headers['Content-Type']}, answer.content
                else:
                    status, headers, body = stub.status, stub.headers, stub.body
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            # The REST form of the connection check is a GET; the stub answers it the same way.
            do_GET = do_POST  # noqa: N815 (http.server's naming)

            def log_message(self, *_args):
                pass

        self._server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        scheme = 'http'
        if certificate is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            certificate.configure_cert(context)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = 'https'
        host, port = self._server.server_address[:2]
        self.url = f'{scheme}://localhost:{port}/v1/graphql' if certificate else f'{scheme}://{host}:{port}/v1/graphql'
        self.proxy_url = f'http://{host}:{port}'
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self):
        self._server.shutdown()
        self._server.server_close()
        self._upstream.close()


@pytest.fixture
def stub_server():
    servers = []

    def start(**kwargs):
        server = StubHTTPServer(**kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


ME_ANSWER = json.dumps({'data': {'me': {'id': 'u1', 'email': 'a@b', 'scmConfigs': [],
                                        'userOrganizationsAndUserOrganizationRoles': []}}}).encode()


# -- URL, fingerprint and matching helpers ------------------------------------------------------
@pytest.mark.parametrize('given, expected', [
    ('https://GitLab.Internal.Example/', 'https://gitlab.internal.example'),
    ('HTTPS://gitlab.internal.example:443', 'https://gitlab.internal.example'),
    ('http://gitlab.internal.example:80//', 'http://gitlab.internal.example'),
    ('https://gitlab.internal.example:8443/GitLab/', 'https://gitlab.internal.example:8443/GitLab'),
    ('  https://[FD00::1]:8443/ ', 'https://[fd00::1]:8443'),
    ('HTTPS://GitLab.Internal.Example:443/api/v4/', 'https://gitlab.internal.example'),
    ('https://gitlab.internal.example/gitlab/API/V4', 'https://gitlab.internal.example/gitlab'),
    ('https://gitlab.internal.example/api/v4x', 'https://gitlab.internal.example/api/v4x'),
])
def test_normalize_scm_url_gives_one_spelling_per_server(given, expected):
    assert normalize_scm_url(given) == expected
    # The spelling the GitLab client gets for the same option value.
    assert urls.normalize_server_url(given, 'scm_url') == expected


@pytest.mark.parametrize('given, words', [
    ('', 'is empty'),
    ('gitlab.internal.example', 'http(s) URL with a host'),
    ('ftp://gitlab.internal.example', 'http(s) URL with a host'),
    ('https://gitlab.internal.example/?private_token=abc', 'without ?query'),
    ('https://gitlab.internal.example:99999', 'invalid port'),
])
def test_normalize_scm_url_refuses_what_is_not_a_base_url(given, words):
    with pytest.raises(MobbOptionError, match=r'^scm_url ') as caught:
        normalize_scm_url(given)
    assert words in str(caught.value)
    with pytest.raises(urls.UrlError) as shared:
        urls.normalize_server_url(given, 'scm_url')
    assert str(caught.value) == str(shared.value)


def test_normalize_scm_url_refuses_credentials_without_repeating_them():
    with pytest.raises(MobbOptionError) as caught:
        normalize_scm_url('https://root:s3cr3t-pass@gitlab.internal.example')
    assert 'credentials' in str(caught.value)
    assert 's3cr3t-pass' not in str(caught.value)


def test_token_fingerprint_is_a_short_sha256_prefix():
    assert token_fingerprint('glpat-example') == hashlib.sha256(b'glpat-example').hexdigest()[:12]
    assert token_fingerprint('glpat-example') != token_fingerprint('glpat-example2')
    assert token_fingerprint(None) is None


def test_find_scm_config_matches_type_org_and_normalised_url():
    configs = [
        {'id': 'github', 'scmType': 'GitHub', 'scmUrl': 'https://gitlab.internal.example', 'scmOrg': None},
        {'id': 'other-org', 'scmType': 'GitLab', 'scmUrl': 'https://gitlab.internal.example', 'scmOrg': 'team'},
        {'id': 'slash', 'scmType': 'GitLab', 'scmUrl': 'https://GITLAB.internal.example/', 'scmOrg': None},
        {'id': 'exact', 'scmType': 'GitLab', 'scmUrl': 'https://gitlab.internal.example', 'scmOrg': ''},
        {'id': 'broken', 'scmType': 'GitLab', 'scmUrl': 'not a url', 'scmOrg': None},
        {'id': 'api-v4', 'scmType': 'GitLab', 'scmUrl': 'https://gitlab.internal.example/api/v4', 'scmOrg': None},
        None,
    ]
    found = find_scm_config(configs, 'gitlab', 'https://gitlab.internal.example', None)
    assert [config['id'] for config in found] == ['exact', 'slash', 'api-v4']
    found = find_scm_config(configs, 'GitLab', 'HTTPS://GitLab.Internal.Example:443/api/v4/', None)
    assert [config['id'] for config in found] == ['exact', 'slash', 'api-v4']
    found = find_scm_config(configs, 'GitLab', 'https://GITLAB.internal.example/', None)
    assert [config['id'] for config in found] == ['slash', 'exact', 'api-v4']
    assert [c['id'] for c in find_scm_config(configs, 'GitLab', 'https://gitlab.internal.example', 'team')] == ['other-org']
    assert find_scm_config(configs, 'GitLab', 'https://elsewhere.example') == []


def test_broker_host_for_compares_host_names_case_insensitively():
    me = {'userOrganizationsAndUserOrganizationRoles': [
        {'organization': {'brokerHosts': [{'realDomain': 'GitLab.Internal.Example', 'virtualDomain': 'vd-1'}]}},
        {'organization': {'brokerHosts': [{'realDomain': '127.0.0.1:8443', 'virtualDomain': 'vd-2'}]}},
        {'organization': None},
    ]}
    assert broker_host_for(me, 'https://gitlab.internal.example:9443/gl')['virtualDomain'] == 'vd-1'
    assert broker_host_for(me, 'https://127.0.0.1:8443')['virtualDomain'] == 'vd-2'
    assert broker_host_for(me, 'https://127.0.0.1:9443') is None
    assert broker_host_for({}, 'https://gitlab.internal.example') is None


# -- options refused before any request -----------------------------------------------------------
@pytest.mark.parametrize('overrides, words', [
    ({'api_key': None}, 'api_key is not set: give api_key or set MOBB_API_KEY'),
    ({'api_key': '  '}, 'api_key is not set'),
    ({'api_url': 'api.mobb.ai/v1/graphql'}, "api_url must be an http(s) URL with a host, such as "
                                            "https://api.mobb.ai/v1/graphql, got 'api.mobb.ai/v1/graphql'"),
    ({'api_url': 'https://key:secret@api.mobb.ai/v1/graphql'}, 'api_url must not carry credentials'),
    ({'api_url': ''}, 'api_url is empty'),
    ({'timeout': 0}, 'timeout must be a positive number'),
    ({'retries': -1}, 'retries must be 0 or more'),
    ({'ca_path': '/nonexistent/ca.pem'}, 'ca_path /nonexistent/ca.pem is not a file'),
])
def test_unusable_options_fail_before_any_request(mobb, acme, overrides, words):
    options = {'api_url': mobb.graphql_url, 'api_key': acme['admin']}
    options.update(overrides)
    with pytest.raises(MobbOptionError) as caught:
        MobbClient(**options)
    assert words in str(caught.value)
    assert graphql_log(mobb) == []


# -- reading ------------------------------------------------------------------------------------
def test_me_reads_configs_and_broker_hosts_and_tokens_only_when_asked(mobb, acme, client):
    mobb.seed(scm_configs=[{'user': 'admin@acme.example', 'scm_url': f'https://{GITLAB_HOST}', 'token': 'glpat-stored'}])
    plain = client.me()
    assert plain['email'] == 'admin@acme.example'
    assert 'token' not in plain['scmConfigs'][0]
    assert plain['scmConfigs'][0]['isTokenAvailable'] is True
    assert broker_host_for(plain, f'https://{GITLAB_HOST}')['virtualDomain'] == 'vd-1'
    assert client.me(with_tokens=True)['scmConfigs'][0]['token'] == 'glpat-stored'


def test_each_call_has_its_own_request_id_and_retries_reuse_it(mobb, client):
    mobb.fault('status', status=503)
    client.me()
    client.me()
    ids = [entry['request_id'] for entry in graphql_log(mobb)]
    assert len(ids) == 3
    assert ids[0] == ids[1] != ids[2]
    assert all(uuid.UUID(value).version == 4 for value in ids)


def test_refused_api_key_is_one_clear_error_and_not_retried(mobb, acme):
    wrong_key = 'mobb-wrong-key-' + uuid.uuid4().hex
    with MobbClient(mobb.graphql_url, wrong_key) as mobb_client:
        with pytest.raises(MobbAccessDeniedError) as caught:
            mobb_client.me()
    message = str(caught.value)
    assert message.startswith('Mobb refused the API key (access-denied')
    assert 'api_key or MOBB_API_KEY' in message
    assert wrong_key not in message and '\n' not in message
    log = graphql_log(mobb)
    assert [entry['error_code'] for entry in log] == ['access-denied']
    assert caught.value.result_fields() == {'request_id': log[0]['request_id']}


def test_schema_mismatch_is_reported_as_such(client):
    with pytest.raises(MobbSchemaMismatchError, match=r"Mobb rejected the collection's Me request \(validation-failed: "
                                                      r"field 'emial' not found"):
        client.execute('Me', 'query Me { me { emial } }')


def test_internal_error_is_an_answer_and_not_retried(mobb, client, warnings_seen):
    mobb.fault('internal_error')
    with pytest.raises(MobbGraphQLError, match=r'^Mobb answered Me with an error \(INTERNAL_ERROR: Internal Server Error\)$'):
        client.me()
    assert len(graphql_log(mobb)) == 1
    assert warnings_seen == []


# -- retries --------------------------------------------------------------------------------------
TRANSIENT_FAULTS = [
    pytest.param({'kind': 'status', 'status': 502}, 'HTTP 502 Bad Gateway', id='502'),
    pytest.param({'kind': 'status', 'status': 503}, 'HTTP 503 Service Unavailable', id='503'),
    pytest.param({'kind': 'status', 'status': 504}, 'HTTP 504 Gateway Timeout', id='504'),
    pytest.param({'kind': 'html200'}, 'HTTP 200 with a proxy page saying "bad gateway"', id='html200'),
    pytest.param({'kind': 'drop'}, 'Remote end closed connection without response', id='drop'),
]


@pytest.mark.parametrize('fault, cause', TRANSIENT_FAULTS)
def test_transient_failures_are_retried_with_a_warning_each(mobb, client, warnings_seen, fault, cause):
    mobb.fault(count=2, **fault)
    assert client.me()['email'] == 'admin@acme.example'
    assert [entry['fault'] for entry in graphql_log(mobb)] == [fault['kind']] * 2 + [None]
    assert warnings_seen == [f'Mobb API at {mobb.graphql_url}: {cause}; retry 1 of 3 in 0.5 s',
                             f'Mobb API at {mobb.graphql_url}: {cause}; retry 2 of 3 in 1.0 s']


@pytest.mark.parametrize('fault, final_words', [
    ({'kind': 'status', 'status': 503}, 'still answered HTTP 503 after 3 retries'),
    ({'kind': 'html200'}, 'still answered with a proxy page saying "bad gateway" after 3 retries'),
    ({'kind': 'drop'}, 'after 3 retries (Remote end closed connection without response)'),
], ids=['503', 'html200', 'drop'])
def test_exhausted_retries_fail_after_retries_plus_one_attempts(mobb, client, warnings_seen, fault, final_words):
    mobb.fault(count=10, **fault)
    with pytest.raises(MobbRequestError) as caught:
        client.me()
    assert final_words in str(caught.value)
    assert len(graphql_log(mobb)) == 4
    assert [warning.split('; ')[-1] for warning in warnings_seen] == [
        'retry 1 of 3 in 0.5 s', 'retry 2 of 3 in 1.0 s', 'retry 3 of 3 in 2.0 s']


def test_status_and_proxy_page_retries_share_one_budget(mobb, client, warnings_seen):
    mobb.fault('status', count=2, status=502)
    mobb.fault('html200', count=5)
    with pytest.raises(MobbRequestError, match='proxy page saying "bad gateway" after 3 retries'):
        client.me()
    assert [entry['fault'] for entry in graphql_log(mobb)] == ['status', 'status', 'html200', 'html200']
    assert len(warnings_seen) == 3


def test_retries_zero_means_one_attempt(mobb, acme, warnings_seen):
    mobb.fault('status', status=502)
    with MobbClient(mobb.graphql_url, acme['admin'], retries=0, warn=warnings_seen.append) as mobb_client:
        with pytest.raises(MobbRequestError, match='still answered HTTP 502 after 0 retries'):
            mobb_client.me()
    assert len(graphql_log(mobb)) == 1
    assert warnings_seen == []


def test_unreachable_api_is_retried_then_reported(warnings_seen):
    with socket_closed_port() as port:
        url = f'http://127.0.0.1:{port}/v1/graphql'
        with MobbClient(url, 'any-key', retries=1, warn=warnings_seen.append) as mobb_client:
            with pytest.raises(MobbRequestError) as caught:
                mobb_client.me()
    assert str(caught.value) == (f'cannot reach the Mobb API at {url} after 1 retries (Failed to establish a new '
                                 'connection: [Errno 111] Connection refused): check api_url and the network')
    assert len(warnings_seen) == 1


def test_slow_answer_is_a_timeout(mobb, acme):
    mobb.fault('delay', seconds=2.5)
    with MobbClient(mobb.graphql_url, acme['admin'], timeout=1, retries=0) as mobb_client:
        with pytest.raises(MobbRequestError, match=r'did not answer within 1 s: check api_url and the network, '
                                                   r'or raise timeout$'):
            mobb_client.me()


# -- wrong endpoints, redirects, TLS, proxies ------------------------------------------------------
def test_wrong_path_says_api_url_must_be_the_graphql_url(mobb, acme):
    with MobbClient(mobb.url + '/graphql', acme['admin']) as mobb_client:
        with pytest.raises(MobbRequestError, match=r'\(HTTP 404\): api_url must be the full GraphQL URL'):
            mobb_client.me()


def test_html_page_that_is_not_a_proxy_error_is_not_retried(stub_server, warnings_seen):
    server = stub_server(headers={'Content-Type': 'text/html'}, body=b'<html><body>Mobb - Sign in</body></html>')
    with MobbClient(server.url, 'any-key', warn=warnings_seen.append) as mobb_client:
        with pytest.raises(MobbRequestError, match=r'answered with text/html, not GraphQL JSON: api_url must be'):
            mobb_client.me()
    assert len(server.received) == 1
    assert warnings_seen == []


def test_redirects_are_not_followed_so_the_key_stays_home(mobb, acme, stub_server):
    server = stub_server(status=307, headers={'Location': mobb.graphql_url})
    with MobbClient(server.url, acme['admin']) as mobb_client:
        with pytest.raises(MobbRequestError, match=rf'redirects to {mobb.graphql_url} \(HTTP 307\): set api_url'):
            mobb_client.me()
    assert graphql_log(mobb) == []


def test_secret_echoed_in_an_error_is_redacted(stub_server):
    key = 'mobb-key-' + uuid.uuid4().hex
    body = json.dumps({'errors': [{'message': f'bad header x-mobb-key={key}\nsee logs',
                                   'extensions': {'code': 'unexpected'}}]}).encode()
    server = stub_server(headers={'Content-Type': 'application/json'}, body=body)
    with MobbClient(server.url, key) as mobb_client:
        with pytest.raises(MobbGraphQLError) as caught:
            mobb_client.me()
    assert str(caught.value) == 'Mobb answered Me with an error (unexpected: bad header x-mobb-key=******** see logs)'
    assert server.received[0]['headers']['x-mobb-key'] == key


@pytest.fixture(scope='module')
def tls_authority():
    return trustme.CA()


@pytest.fixture
def tls_server(stub_server, tls_authority):
    return stub_server(headers={'Content-Type': 'application/json'}, body=ME_ANSWER,
                       certificate=tls_authority.issue_cert('localhost'))


def test_tls_with_an_unknown_ca_fails_without_retrying(tls_server, warnings_seen):
    with MobbClient(tls_server.url, 'any-key', warn=warnings_seen.append) as mobb_client:
        with pytest.raises(MobbRequestError, match=r'^TLS verification of the Mobb API at .* failed \(.*certificate '
                                                   r'verify failed.*\): set ca_path to the CA bundle'):
            mobb_client.me()
    assert tls_server.received == []
    assert warnings_seen == []


def test_tls_with_ca_path_succeeds(tls_server, tls_authority, tmp_path):
    ca_file = tmp_path / 'ca.pem'
    tls_authority.cert_pem.write_to_path(str(ca_file))
    with MobbClient(tls_server.url, 'any-key', ca_path=str(ca_file)) as mobb_client:
        assert mobb_client.me()['id'] == 'u1'


def test_tls_without_validation_succeeds_with_a_warning(tls_server, warnings_seen):
    with MobbClient(tls_server.url, 'any-key', validate_certs=False, warn=warnings_seen.append) as mobb_client:
        assert mobb_client.me()['id'] == 'u1'
    assert warnings_seen == [f'validate_certs is false: the certificate of the Mobb API at {tls_server.url} '
                             'is not checked']


def test_proxy_from_the_environment_is_used(mobb, acme, stub_server, monkeypatch):
    proxy = stub_server(forward=True)
    monkeypatch.setenv('HTTP_PROXY', proxy.proxy_url)
    monkeypatch.delenv('NO_PROXY', raising=False)
    monkeypatch.delenv('no_proxy', raising=False)
    with MobbClient(mobb.graphql_url, acme['admin']) as mobb_client:
        assert mobb_client.me()['email'] == 'admin@acme.example'
    assert [urllib.parse.urlsplit(entry['path']).path for entry in proxy.received] == ['/v1/graphql']


def test_broken_proxy_is_named_in_the_error(mobb, acme, monkeypatch):
    with socket_closed_port() as port:
        monkeypatch.setenv('HTTP_PROXY', f'http://127.0.0.1:{port}')
        monkeypatch.delenv('NO_PROXY', raising=False)
        monkeypatch.delenv('no_proxy', raising=False)
        with MobbClient(mobb.graphql_url, acme['admin'], retries=0) as mobb_client:
            with pytest.raises(MobbRequestError, match=r'^the proxy for .* failed .*check HTTPS_PROXY and NO_PROXY$'):
                mobb_client.me()
    monkeypatch.delenv('HTTP_PROXY')  # the control client below must reach the server directly
    assert graphql_log(mobb) == []


# -- the token operations against a real (local) GitLab ------------------------------------------
def test_validate_then_update_stores_the_token(mobb, client, gitlab, gitlab_token):
    client.validate_scm_token('GitLab', gitlab.url, gitlab_token)
    assert mobb.scm_configs() == []
    config_id = client.update_scm_token('GitLab', gitlab.url, gitlab_token)
    stored = mobb.scm_configs()
    assert [config['id'] for config in stored] == [config_id]
    assert stored[0]['token_sha256'] == hashlib.sha256(gitlab_token.encode()).hexdigest()
    assert [(entry['operation'], entry['result']) for entry in graphql_log(mobb)] == [
        ('validateScmToken', 'ValidateScmTokenSuccess'), ('updateScmToken', 'ScmAccessTokenUpdateSuccess')]


def test_rejected_token_is_bad_scm_credentials_and_never_in_the_message(mobb, client, gitlab):
    revoked = gitlab.seed(users=[{'username': 'old-bot'}],
                          tokens=[{'kind': 'personal', 'user': 'old-bot', 'name': 'mobb', 'revoked': True}])
    token = revoked['tokens'][0]['token']
    for call in (client.validate_scm_token, client.update_scm_token):
        with pytest.raises(MobbScmError) as caught:
            call('GitLab', gitlab.url, token)
        assert caught.value.typename == 'BadScmCredentials'
        assert str(caught.value).startswith(f'GitLab at {gitlab.url} rejected the token (BadScmCredentials: ')
        assert 'scope api' in str(caught.value)
        assert token not in str(caught.value)
    assert mobb.scm_configs() == []


def test_broker_down_is_repo_unreachable(mobb, client, gitlab, gitlab_token):
    host = urllib.parse.urlsplit(gitlab.url).netloc
    mobb.seed(organizations=[{'name': 'brokered', 'broker_hosts': [{'real_domain': host}]}],
              users=[{'email': 'admin@acme.example', 'organization': 'brokered', 'role': 'Admin'}])
    mobb.set_broker(host, False)
    with pytest.raises(MobbScmError, match=r'^Mobb cannot reach GitLab at .* \(RepoUnreachableError: Mobb could not '
                                           r'reach the repository.*\): check that the broker is connected') as caught:
        client.update_scm_token('GitLab', gitlab.url, gitlab_token)
    assert caught.value.typename == 'RepoUnreachableError'
    assert mobb.scm_configs() == []


def test_unknown_scm_type_is_invalid_scm_type(client, gitlab, gitlab_token):
    with pytest.raises(MobbScmError, match=r"^Mobb does not accept scm_type 'Gitlab' \(InvalidScmTypeError: "):
        client.update_scm_token('Gitlab', gitlab.url, gitlab_token)


def test_member_may_not_change_the_integration(mobb, acme, gitlab, gitlab_token):
    with MobbClient(mobb.graphql_url, acme['member']) as mobb_client:
        with pytest.raises(MobbGraphQLError, match=r'permission-error: .*needs role Admin or Owner'):
            mobb_client.update_scm_token('GitLab', gitlab.url, gitlab_token)
    assert mobb.scm_configs() == []


# -- connection status ----------------------------------------------------------------------------
def test_connected_takes_one_request(mobb, client, gitlab, gitlab_token):
    client.update_scm_token('GitLab', gitlab.url, gitlab_token)
    mobb.clear_requests()
    answer = client.connection_status(gitlab.url)
    assert answer['connected'] is True and answer['message'] is None
    assert answer['me']['scmConfigs'][0]['scmUrl'] == gitlab.url
    assert [entry['operation'] for entry in graphql_log(mobb)] == ['checkScmConnectionStatus']


def test_not_connected_as_graphql_errors_takes_two_requests(mobb, client, gitlab):
    answer = client.connection_status(gitlab.url)
    assert answer == {'connected': False, 'message': f'No SCM token is stored for {gitlab.url}',
                      'me': answer['me']}
    assert answer['me']['email'] == 'admin@acme.example'
    assert [entry['operation'] for entry in graphql_log(mobb)] == ['checkScmConnectionStatus', 'Me']


def test_not_connected_as_status_error_takes_one_request(mobb, client, gitlab):
    mobb.settings(check_failure='status')
    answer = client.connection_status(gitlab.url)
    assert answer['connected'] is False
    assert answer['message'] == f'Mobb reports connection status Error for {gitlab.url}'
    assert len(graphql_log(mobb)) == 1


def test_connection_status_with_a_refused_key_raises(mobb, acme, gitlab):
    with MobbClient(mobb.graphql_url, 'wrong') as mobb_client:
        with pytest.raises(MobbAccessDeniedError):
            mobb_client.connection_status(gitlab.url)


# -- a store is retried only when it provably never reached Mobb ----------------------------------
def update_requests(mobb):
    return [entry for entry in graphql_log(mobb) if entry['operation'] == 'updateScmToken']


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def wait_for(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, 'timed out waiting'
        time.sleep(0.1)


UNKNOWN_TAIL = ('Mobb may or may not have stored the token; updateScmToken is not retried, since the first attempt '
                'may have landed or may still land')


def test_store_that_times_out_is_unknown_not_retried_and_lands_later(mobb, acme, gitlab, gitlab_token, warnings_seen):
    mobb.fault('delay', seconds=2.5, operation='updateScmToken')
    with MobbClient(mobb.graphql_url, acme['admin'], timeout=1, retries=3, warn=warnings_seen.append) as mobb_client:
        with pytest.raises(MobbUnknownOutcomeError) as caught:
            mobb_client.update_scm_token('GitLab', gitlab.url, gitlab_token)
        landed_at_failure = mobb.scm_configs()
    assert isinstance(caught.value, MobbRequestError)
    assert str(caught.value) == (f'the Mobb API at {mobb.graphql_url} did not answer updateScmToken within 1 s: '
                                 + UNKNOWN_TAIL)
    assert caught.value.request_id == update_requests(mobb)[0]['request_id']
    assert_no_secret(str(caught.value), gitlab_token, acme['admin'])
    assert warnings_seen == []
    assert landed_at_failure == []  # Mobb was still holding the request when the client gave up
    # The server serves the request after the delay: the store lands although the client gave up.
    wait_for(lambda: [config['token_sha256'] for config in mobb.scm_configs()] == [sha256(gitlab_token)])
    assert mobb.scm_configs()[0]['writes'] == 1
    assert len(update_requests(mobb)) == 1


@pytest.mark.parametrize('fault, cause', [
    ({'kind': 'drop'}, 'the connection to the Mobb API at {url} failed while updateScmToken was sent or answered '
                       '(Remote end closed connection without response)'),
    ({'kind': 'status', 'status': 502}, 'the Mobb API at {url} answered updateScmToken with HTTP 502 Bad Gateway'),
    ({'kind': 'status', 'status': 503}, 'the Mobb API at {url} answered updateScmToken with HTTP 503 Service '
                                        'Unavailable'),
    ({'kind': 'status', 'status': 500}, 'the Mobb API at {url} answered updateScmToken with HTTP 500 Internal '
                                        'Server Error'),
    ({'kind': 'html200'}, 'the Mobb API at {url} answered updateScmToken with a proxy page saying "bad gateway"'),
], ids=['drop', '502', '503', '500', 'html200'])
def test_store_whose_answer_is_lost_is_unknown_and_not_retried(mobb, client, gitlab, gitlab_token, warnings_seen,
                                                               fault, cause):
    mobb.fault(count=3, operation='updateScmToken', **fault)
    with pytest.raises(MobbUnknownOutcomeError) as caught:
        client.update_scm_token('GitLab', gitlab.url, gitlab_token)
    assert str(caught.value) == cause.format(url=mobb.graphql_url) + ': ' + UNKNOWN_TAIL
    assert '\n' not in str(caught.value)
    assert_no_secret(str(caught.value), gitlab_token)
    assert [entry['fault'] for entry in update_requests(mobb)] == [fault['kind']]
    assert warnings_seen == []
    # These faults stop the request before Mobb: nothing was stored, yet the client cannot know.
    assert mobb.scm_configs() == []


def test_queries_are_still_retried_on_the_faults_a_store_is_not(mobb, client, gitlab, gitlab_token, warnings_seen):
    mobb.fault('drop', operation='validateScmToken')
    mobb.fault('status', status=502, operation='validateScmToken')
    mobb.fault('html200', operation='Me')
    client.validate_scm_token('GitLab', gitlab.url, gitlab_token)
    assert client.me()['email'] == 'admin@acme.example'
    assert [(entry['operation'], entry['fault']) for entry in graphql_log(mobb)] == [
        ('validateScmToken', 'drop'), ('validateScmToken', 'status'), ('validateScmToken', None),
        ('Me', 'html200'), ('Me', None)]
    assert len(warnings_seen) == 3


@pytest.mark.parametrize('fault, stored', [('internal_error', False), ('internal_error_after', True)],
                         ids=['before the write', 'after the write'])
def test_store_answered_internal_error_is_unknown_and_not_retried(mobb, client, gitlab, gitlab_token, warnings_seen,
                                                                  fault, stored):
    """Hasura's INTERNAL_ERROR does not say whether updateScmToken's action handler wrote:
    the local Mobb's two faults give the same answer, one before and one after the write."""
    mobb.fault(fault, count=3, operation='updateScmToken')
    with pytest.raises(MobbUnknownOutcomeError) as caught:
        client.update_scm_token('GitLab', gitlab.url, gitlab_token)
    assert str(caught.value) == ('Mobb answered updateScmToken with an error (INTERNAL_ERROR: Internal Server Error): '
                                 + UNKNOWN_TAIL)
    assert caught.value.request_id == update_requests(mobb)[0]['request_id']
    assert len(update_requests(mobb)) == 1 and warnings_seen == []
    assert [c['token_sha256'] for c in mobb.scm_configs()] == ([sha256(gitlab_token)] if stored else [])


def graphql_errors(*codes):
    return json.dumps({'data': None, 'errors': [
        {'message': 'it failed', **({'extensions': {'code': code}} if code else {})} for code in codes]}).encode()


@pytest.mark.parametrize('codes', [('INTERNAL_ERROR',), ('unexpected',), ('a-code-mobb-adds-later',), (None,),
                                   ('permission-error', 'INTERNAL_ERROR')],
                         ids=['INTERNAL_ERROR', 'unexpected', 'unknown code', 'no code', 'a refusal and an error'])
def test_store_answered_with_an_error_that_is_not_a_refusal_is_unknown(stub_server, codes):
    server = stub_server(headers={'Content-Type': 'application/json'}, body=graphql_errors(*codes))
    with MobbClient(server.url, 'any-key') as mobb_client:
        with pytest.raises(MobbUnknownOutcomeError, match=r'^Mobb answered updateScmToken with an error \('
                                                          r'%s: it failed\)' % (codes[-1] or 'no code')):
            mobb_client.update_scm_token('GitLab', 'https://gitlab.internal.example', 'glpat-unknown')
    assert len(server.received) == 1


@pytest.mark.parametrize('codes, error_class', [
    (('access-denied',), MobbAccessDeniedError), (('permission-error',), MobbGraphQLError),
    (('validation-failed',), MobbSchemaMismatchError), (('parse-failed',), MobbGraphQLError),
    (('permission-error', 'validation-failed'), MobbGraphQLError)])
def test_store_answered_with_a_refusal_code_is_a_refusal(stub_server, codes, error_class):
    server = stub_server(headers={'Content-Type': 'application/json'}, body=graphql_errors(*codes))
    with MobbClient(server.url, 'any-key') as mobb_client:
        with pytest.raises(error_class) as caught:
            mobb_client.update_scm_token('GitLab', 'https://gitlab.internal.example', 'glpat-refused')
    assert not isinstance(caught.value, MobbRequestError)
    assert caught.value.code == codes[0]


def test_store_to_a_closed_port_is_retried_and_is_not_unknown(warnings_seen):
    with socket_closed_port() as port:
        url = f'http://127.0.0.1:{port}/v1/graphql'
        with MobbClient(url, 'any-key', retries=2, warn=warnings_seen.append) as mobb_client:
            with pytest.raises(MobbRequestError) as caught:
                mobb_client.update_scm_token('GitLab', 'https://gitlab.internal.example', 'glpat-never-sent')
    assert not isinstance(caught.value, MobbUnknownOutcomeError)
    assert str(caught.value) == (f'cannot reach the Mobb API at {url} after 2 retries (Failed to establish a new '
                                 'connection: [Errno 111] Connection refused): check api_url and the network')
    assert [warning.split('; ')[-1] for warning in warnings_seen] == ['retry 1 of 2 in 0.5 s', 'retry 2 of 2 in 1.0 s']


def test_store_to_an_unknown_host_is_not_unknown(warnings_seen):
    url = 'http://mobb-api.invalid/v1/graphql'
    with MobbClient(url, 'any-key', retries=1, warn=warnings_seen.append) as mobb_client:
        with pytest.raises(MobbRequestError) as caught:
            mobb_client.update_scm_token('GitLab', 'https://gitlab.internal.example', 'glpat-never-sent')
    assert not isinstance(caught.value, MobbUnknownOutcomeError)
    assert str(caught.value).startswith(f'cannot reach the Mobb API at {url} after 1 retries (')
    assert len(warnings_seen) == 1


SUCCESS_ANSWER = json.dumps({'data': {'updateScmToken': {'__typename': 'ScmAccessTokenUpdateSuccess',
                                                         'id': 'cfg-1'}}}).encode()


def test_store_whose_connection_opens_on_the_retry_succeeds(stub_server):
    """Connection refused, then the port listens: the store goes out once, on the retry."""
    stub = stub_server(headers={'Content-Type': 'application/json'}, body=SUCCESS_ANSWER)
    # The stub's handler on a second socket, bound (so connections are refused) but listening
    # only once the first retry is charged.
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), stub._server.RequestHandlerClass,
                                             bind_and_activate=False)
    server.server_bind()
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    warnings = []

    def listen_on_first_retry(message):
        warnings.append(message)
        if len(warnings) == 1:
            server.server_activate()
            thread.start()

    url = f'http://127.0.0.1:{port}/v1/graphql'
    try:
        with MobbClient(url, 'any-key', retries=3, warn=listen_on_first_retry) as mobb_client:
            assert mobb_client.update_scm_token('GitLab', 'https://gitlab.internal.example', 'glpat-x') == 'cfg-1'
    finally:
        if thread.is_alive():
            server.shutdown()
        server.server_close()
    assert [warning.split('; ')[-1] for warning in warnings] == ['retry 1 of 3 in 0.5 s']
    assert 'Connection refused' in warnings[0]
    assert len(stub.received) == 1


@pytest.mark.parametrize('headers, body, cause', [
    ({'Content-Type': 'text/html'}, b'<html><body>Mobb - Sign in</body></html>',
     'the Mobb API at {url} answered updateScmToken with text/html, not GraphQL JSON'),
    ({'Content-Type': 'application/json'}, b'{"data": {"updateScmToken": {"id": "cfg-1"',
     'the Mobb API at {url} answered updateScmToken with application/json, not GraphQL JSON'),
    ({'Content-Type': 'application/json'}, b'{}', 'Mobb answered updateScmToken without data or errors'),
    ({'Content-Type': 'application/json'}, b'{"data": {"updateScmToken": null}}',
     'Mobb answered updateScmToken without a result'),
    ({'Content-Type': 'application/json'}, b'{"data": {"updateScmToken": {"__typename": "ScmTokenQueued"}}}',
     'Mobb answered updateScmToken with an unexpected result type ScmTokenQueued'),
], ids=['html', 'truncated-json', 'no-data', 'null-result', 'unknown-member'])
def test_unreadable_answer_to_a_store_is_unknown(stub_server, warnings_seen, headers, body, cause):
    server = stub_server(headers=headers, body=body)
    with MobbClient(server.url, 'any-key', warn=warnings_seen.append) as mobb_client:
        with pytest.raises(MobbUnknownOutcomeError) as caught:
            mobb_client.update_scm_token('GitLab', 'https://gitlab.internal.example', 'glpat-unread')
    assert str(caught.value) == cause.format(url=server.url) + ': ' + UNKNOWN_TAIL
    assert len(server.received) == 1
    assert warnings_seen == []


@pytest.mark.parametrize('status, error_class, words', [
    (404, MobbRequestError, 'no Mobb GraphQL endpoint at'),
    (403, MobbAccessDeniedError, 'refused the request with HTTP 403'),
    (307, MobbRequestError, 'redirects to nowhere (HTTP 307)'),
    (429, MobbRequestError, 'answered updateScmToken with HTTP 429'),
])
def test_refusal_of_a_store_by_status_is_not_unknown(stub_server, status, error_class, words):
    server = stub_server(status=status, headers={'Content-Type': 'text/html'}, body=b'<html>no</html>')
    with MobbClient(server.url, 'any-key') as mobb_client:
        with pytest.raises(error_class) as caught:
            mobb_client.update_scm_token('GitLab', 'https://gitlab.internal.example', 'glpat-refused')
    assert not isinstance(caught.value, MobbUnknownOutcomeError)
    assert words in str(caught.value)
    assert len(server.received) == 1


def test_store_to_a_server_with_an_untrusted_certificate_is_not_unknown(tls_server, warnings_seen):
    with MobbClient(tls_server.url, 'any-key', warn=warnings_seen.append) as mobb_client:
        with pytest.raises(MobbRequestError) as caught:
            mobb_client.update_scm_token('GitLab', 'https://gitlab.internal.example', 'glpat-never-sent')
    assert not isinstance(caught.value, MobbUnknownOutcomeError)
    assert str(caught.value).startswith('TLS verification of the Mobb API at ')
    assert tls_server.received == [] and warnings_seen == []


# -- the stored token in the connection check's one request ---------------------------------------
@pytest.fixture
def stored_token(mobb, client, gitlab, gitlab_token):
    client.update_scm_token('GitLab', gitlab.url, gitlab_token)
    mobb.clear_requests()
    return gitlab_token


@pytest.mark.parametrize('return_tokens', [True, False])
def test_connection_status_reads_the_stored_token_in_the_same_request(mobb, client, gitlab, stored_token,
                                                                      return_tokens):
    mobb.settings(return_tokens=return_tokens)
    answer = client.connection_status(gitlab.url, with_tokens=True)
    assert set(answer) == {'connected', 'message', 'me'}
    assert answer['connected'] is True and answer['message'] is None
    config = answer['me']['scmConfigs'][0]
    assert config['token'] == (stored_token if return_tokens else None)
    assert config['isTokenAvailable'] is True
    assert broker_host_for(answer['me'], f'https://{GITLAB_HOST}')['virtualDomain'] == 'vd-1'
    assert [entry['operation'] for entry in graphql_log(mobb)] == ['checkScmConnectionStatus']


def test_connection_status_without_tokens_selects_no_token(mobb, client, gitlab, stored_token):
    answer = client.connection_status(gitlab.url)
    assert 'token' not in answer['me']['scmConfigs'][0]
    assert stored_token not in json.dumps(answer)


@pytest.mark.parametrize('return_tokens', [True, False])
def test_failed_check_reads_the_stored_token_in_the_second_request(mobb, client, gitlab, stored_token,
                                                                   return_tokens):
    mobb.settings(return_tokens=return_tokens)
    gitlab.reset()  # the stored token is gone: Mobb's check fails with an error and no data
    answer = client.connection_status(gitlab.url, with_tokens=True)
    assert answer['connected'] is False
    assert answer['message'].startswith('Invalid SCM credentials: GitLab rejected the token')
    assert answer['me']['scmConfigs'][0]['token'] == (stored_token if return_tokens else None)
    assert answer['me']['userOrganizationsAndUserOrganizationRoles']  # the same shape as the one-request answer
    assert [entry['operation'] for entry in graphql_log(mobb)] == ['checkScmConnectionStatus', 'Me']
    assert_no_secret(answer['message'], stored_token)


def test_stored_token_read_with_the_check_is_redacted_from_its_message(stub_server):
    stored = 'glpat-' + uuid.uuid4().hex
    body = json.dumps({
        'data': {'checkScmConnectionStatus': None,
                 'me': {'id': 'u1', 'email': 'a@b', 'userOrganizationsAndUserOrganizationRoles': [],
                        'scmConfigs': [{'id': 'c1', 'scmType': 'GitLab', 'scmUrl': 'https://gitlab.example',
                                        'isTokenAvailable': True, 'token': stored}]}},
        'errors': [{'message': f'GitLab rejected token {stored}', 'extensions': {'code': 'unexpected'}}],
    }).encode()
    server = stub_server(headers={'Content-Type': 'application/json'}, body=body)
    with MobbClient(server.url, 'any-key') as mobb_client:
        answer = mobb_client.connection_status('https://gitlab.example', with_tokens=True)
        assert answer['message'] == 'GitLab rejected token ********'
        assert answer['me']['scmConfigs'][0]['token'] == stored
        # A token read once stays out of every later message of this client.
        server.body = json.dumps({'errors': [{'message': f'no such token {stored}',
                                              'extensions': {'code': 'unexpected'}}]}).encode()
        with pytest.raises(MobbGraphQLError) as caught:
            mobb_client.me()
    assert str(caught.value) == 'Mobb answered Me with an error (unexpected: no such token ********)'
    assert len(server.received) == 2


def test_stored_token_read_with_a_refused_check_is_redacted_from_the_error(stub_server):
    stored = 'glpat-' + uuid.uuid4().hex
    body = json.dumps({
        'data': {'me': {'id': 'u1', 'email': 'a@b', 'userOrganizationsAndUserOrganizationRoles': [],
                        'scmConfigs': [{'id': 'c1', 'token': stored}]}},
        'errors': [{'message': f'unexpected value {stored}', 'extensions': {'code': 'validation-failed'}}],
    }).encode()
    server = stub_server(headers={'Content-Type': 'application/json'}, body=body)
    with MobbClient(server.url, 'any-key') as mobb_client:
        with pytest.raises(MobbSchemaMismatchError) as caught:
            mobb_client.connection_status('https://gitlab.example', with_tokens=True)
    assert '(validation-failed: unexpected value ********)' in str(caught.value)
    assert stored not in str(caught.value)


# -- the REST form of the connection check (rest_url) ---------------------------------------------
@pytest.fixture
def rest_client(mobb, acme, warnings_seen):
    with MobbClient(mobb.graphql_url, acme['admin'], warn=warnings_seen.append,
                    rest_url=mobb.rest_check_url) as mobb_client:
        yield mobb_client


def endpoints(mobb):
    return [(entry['endpoint'], entry['operation']) for entry in graphql_log(mobb)]


def test_rest_check_connected_asks_rest_then_reads_me_through_graphql(mobb, rest_client, gitlab, gitlab_token):
    rest_client.update_scm_token('GitLab', gitlab.url, gitlab_token)
    mobb.clear_requests()
    answer = rest_client.connection_status(gitlab.url, with_tokens=True)
    assert answer['connected'] is True and answer['message'] is None
    assert answer['me']['scmConfigs'][0]['token'] == gitlab_token
    assert endpoints(mobb) == [('rest', 'checkScmConnectionStatus'), ('graphql', 'Me')]
    # Each request has its own id, as over GraphQL.
    assert len({entry['request_id'] for entry in graphql_log(mobb)}) == 2


def test_rest_check_alone_takes_one_get(mobb, rest_client, gitlab, gitlab_token):
    rest_client.update_scm_token('GitLab', gitlab.url, gitlab_token)
    mobb.clear_requests()
    assert rest_client.rest_connection_status(gitlab.url) == {'connected': True, 'message': None}
    assert endpoints(mobb) == [('rest', 'checkScmConnectionStatus')]


def test_rest_check_not_connected_is_an_answer_with_mobbs_message(mobb, rest_client, gitlab):
    answer = rest_client.connection_status(gitlab.url)
    assert answer['connected'] is False
    assert answer['message'] == f'No SCM token is stored for {gitlab.url}'
    assert answer['me']['email'] == 'admin@acme.example'
    assert endpoints(mobb) == [('rest', 'checkScmConnectionStatus'), ('graphql', 'Me')]


def test_rest_check_status_error_is_not_connected(mobb, rest_client, gitlab):
    mobb.settings(check_failure='status')
    answer = rest_client.rest_connection_status(gitlab.url)
    assert answer == {'connected': False, 'message': f'Mobb reports connection status Error for {gitlab.url}'}


def test_rest_check_with_a_refused_key_raises_access_denied(mobb, acme, gitlab):
    with MobbClient(mobb.graphql_url, 'wrong-key', rest_url=mobb.rest_check_url) as mobb_client:
        with pytest.raises(MobbAccessDeniedError) as caught:
            mobb_client.connection_status(gitlab.url)
    assert 'access-denied: Authentication hook unauthorized this request' in str(caught.value)
    assert 'wrong-key' not in str(caught.value)
    assert endpoints(mobb) == [('rest', 'checkScmConnectionStatus')]


@pytest.mark.parametrize('fault, cause', [
    (dict(kind='status', status=502), 'HTTP 502 Bad Gateway'),
    (dict(kind='status', status=504), 'HTTP 504 Gateway Timeout'),
    (dict(kind='html200'), 'HTTP 200 with a proxy page saying "bad gateway"'),
    (dict(kind='drop'), 'Remote end closed connection without response'),
])
def test_rest_check_retries_transient_failures_as_queries_do(mobb, rest_client, gitlab, warnings_seen, fault, cause):
    mobb.fault(operation='checkScmConnectionStatus', **fault)
    answer = rest_client.rest_connection_status(gitlab.url)
    assert answer['connected'] is False
    assert len(warnings_seen) == 1
    assert warnings_seen[0].startswith(f'Mobb API at {mobb.rest_check_url}: ')
    assert cause in warnings_seen[0] and 'retry 1 of 3' in warnings_seen[0]
    assert [entry['fault'] for entry in graphql_log(mobb)] == [fault['kind'], None]


def test_rest_check_exhausted_retries_fail(mobb, acme, gitlab, warnings_seen):
    mobb.fault('status', status=503, count=3)
    with MobbClient(mobb.graphql_url, acme['admin'], retries=2, warn=warnings_seen.append,
                    rest_url=mobb.rest_check_url) as mobb_client:
        with pytest.raises(MobbRequestError) as caught:
            mobb_client.rest_connection_status(gitlab.url)
    assert str(caught.value) == (f'Mobb REST endpoint at {mobb.rest_check_url} still answered HTTP 503 after 2 '
                                 'retries: try again later')
    assert len(warnings_seen) == 2


def test_rest_check_internal_error_is_not_connected_and_not_retried(mobb, rest_client, gitlab, warnings_seen):
    mobb.fault('internal_error')
    answer = rest_client.rest_connection_status(gitlab.url)
    assert answer == {'connected': False, 'message': 'Internal Server Error'}
    assert warnings_seen == [] and len(graphql_log(mobb)) == 1


def test_rest_check_at_a_wrong_path_says_what_rest_url_must_be(mobb, acme, gitlab):
    with MobbClient(mobb.graphql_url, acme['admin'], rest_url=mobb.url + '/api/rest/nope') as mobb_client:
        with pytest.raises(MobbRequestError) as caught:
            mobb_client.rest_connection_status(gitlab.url)
    assert str(caught.value).startswith(f'no Mobb REST endpoint at {mobb.url}/api/rest/nope (HTTP 404): rest_url '
                                        "must be the full URL of Mobb's REST endpoint")


def test_rest_check_pointed_at_the_graphql_url_is_refused_clearly(mobb, acme, gitlab):
    with MobbClient(mobb.graphql_url, acme['admin'], rest_url=mobb.graphql_url) as mobb_client:
        with pytest.raises(MobbSchemaMismatchError) as caught:
            mobb_client.rest_connection_status(gitlab.url)
    assert '(HTTP 404, not-found: resource does not exist)' in str(caught.value)


def test_rest_check_of_an_unreachable_endpoint_names_rest_url(mobb, acme, warnings_seen):
    with socket_closed_port() as port:
        with MobbClient(mobb.graphql_url, acme['admin'], retries=1, warn=warnings_seen.append,
                        rest_url=f'http://127.0.0.1:{port}/api/rest/check') as mobb_client:
            with pytest.raises(MobbRequestError) as caught:
                mobb_client.rest_connection_status('https://gitlab.example')
    assert str(caught.value).startswith(f'cannot reach the Mobb API at http://127.0.0.1:{port}/api/rest/check '
                                        'after 1 retries (')
    assert str(caught.value).endswith('check rest_url and the network')


def test_rest_check_sends_the_key_and_scm_url_and_follows_no_redirect(stub_server):
    server = stub_server(status=302, headers={'Location': 'http://elsewhere.example/'})
    with MobbClient('http://127.0.0.1:9/v1/graphql', 'the-key', rest_url=server.url) as mobb_client:
        with pytest.raises(MobbRequestError) as caught:
            mobb_client.rest_connection_status('https://gitlab.example')
    assert 'redirects to http://elsewhere.example/ (HTTP 302): set rest_url to the final URL' in str(caught.value)
    [received] = server.received
    assert received['headers']['x-mobb-key'] == 'the-key'
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(received['path']).query) == {'scmUrl': ['https://gitlab.example']}


@pytest.mark.parametrize('status, body', [
    (400, {'path': '$', 'error': 'GitLab rejected token {stored} with key {key}', 'code': 'unexpected'}),
    (200, {'errors': [{'message': 'GitLab rejected token {stored} with key {key}',
                       'extensions': {'code': 'unexpected'}}]}),
])
def test_rest_check_errors_are_redacted_in_either_error_form(stub_server, status, body):
    stored = 'glpat-' + uuid.uuid4().hex
    key = 'key-' + uuid.uuid4().hex
    text = json.dumps(body).replace('{stored}', stored).replace('{key}', key)
    server = stub_server(status=status, headers={'Content-Type': 'application/json'}, body=text.encode())
    with MobbClient('http://127.0.0.1:9/v1/graphql', key, rest_url=server.url) as mobb_client:
        mobb_client._remember_tokens({'scmConfigs': [{'token': stored}]})
        answer = mobb_client.rest_connection_status('https://gitlab.example')
    assert answer == {'connected': False, 'message': 'GitLab rejected token ******** with key ********'}


def test_rest_check_answer_that_is_not_json_is_an_error(stub_server):
    server = stub_server(headers={'Content-Type': 'text/plain'}, body=b'hello')
    with MobbClient('http://127.0.0.1:9/v1/graphql', 'k', rest_url=server.url) as mobb_client:
        with pytest.raises(MobbRequestError) as caught:
            mobb_client.rest_connection_status('https://gitlab.example')
    assert 'answered with text/plain, not JSON' in str(caught.value)


def test_rest_url_must_be_an_http_url(mobb, acme):
    with pytest.raises(MobbOptionError) as caught:
        MobbClient(mobb.graphql_url, acme['admin'], rest_url='ftp://mobb.example/x')
    assert 'rest_url' in str(caught.value)


def test_without_rest_url_the_rest_check_is_refused(client):
    with pytest.raises(MobbOptionError):
        client.rest_connection_status('https://gitlab.example')
