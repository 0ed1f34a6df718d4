"""Every operation of GitLab's OpenAPI extract for service accounts, answered by the local server,
validated by openapi-core.

``gitlab-openapi-service-accounts.yaml`` is the extract from ``../shared/reference`` (GitLab
19.5's generated document, CC BY-SA 4.0): instance, project and group service accounts and the
tokens of the latter two. Each operation is called over real HTTP for its success status and
for every error status the extract declares that the local server produces; each response is
validated against the extract. The project routes are served with the instance setting
``project_service_accounts`` on (GitLab 18.11+). Statuses the extract leaves out (409, 422,
429, ...) and what the bodies say are pinned in ``test_gitlab_service_accounts.py``.

The extract has quirks, fixed in an in-memory copy: those every GitLab extract shares by
conftest's ``OpenApiExtract.shared_quirks``, this one's by ``patch_quirks``; each fix says why.
"""
from __future__ import annotations

import json

import pytest
from openapi_core.exceptions import OpenAPIError

SPEC_FILE = 'gitlab-openapi-service-accounts.yaml'
TOKEN_ENTITIES = ('APIEntitiesPersonalAccessToken', 'APIEntitiesPersonalAccessTokenWithToken')
ACCOUNT = {'$ref': '#/components/schemas/APIEntitiesServiceAccount'}
TOKEN = {'$ref': '#/components/schemas/APIEntitiesPersonalAccessToken'}
LISTS = {
    '/api/v4/service_accounts': ACCOUNT,
    '/api/v4/projects/{id}/service_accounts': ACCOUNT,
    '/api/v4/groups/{id}/service_accounts': ACCOUNT,
    '/api/v4/projects/{id}/service_accounts/{user_id}/personal_access_tokens': TOKEN,
    '/api/v4/groups/{id}/service_accounts/{user_id}/personal_access_tokens': TOKEN,
}
ROTATES = ('/api/v4/projects/{id}/service_accounts/{user_id}/personal_access_tokens/{token_id}/rotate',
           '/api/v4/groups/{id}/service_accounts/{user_id}/personal_access_tokens/{token_id}/rotate')


def patch_quirks(spec):
    """This extract's own quirks fixed (``spec`` is a copy, with the shared ones fixed already)."""
    schemas = spec['components']['schemas']
    # A service account has no public e-mail unless one is set: GitLab sends null.
    schemas['APIEntitiesServiceAccount']['properties']['public_email']['nullable'] = True
    # The lists answer arrays; the extract names the item schema as the whole body.
    for path, item_schema in LISTS.items():
        content = spec['paths'][path]['get']['responses']['200']['content']['application/json']
        content['schema'] = {'type': 'array', 'items': item_schema}
    # GitLab's code answers rotate with `status :ok` (200); the extract says 201.
    for path in ROTATES:
        responses = spec['paths'][path]['post']['responses']
        responses['200'] = responses.pop('201')
    return spec


@pytest.fixture(scope='module')
def extract(openapi_extract):
    return openapi_extract(SPEC_FILE, patch_quirks, TOKEN_ENTITIES)


# ----------------------------------------------------------------------- scenarios
# Each returns [(expected status, response), ...] for one operation. In the standard team
# (conftest), alice owns the group `team`, dave maintains it, carol maintains `team/app` and
# bob develops there.
def service_account(t, **fields):
    return t.instance.seed(service_accounts=[fields])['service_accounts'][0]


def token_of(t, username, **token):
    return t.instance.seed(tokens=[dict({'kind': 'personal', 'user': username, 'name': 'ci',
                                         'scopes': ['api']}, **token)])['tokens'][0]


def create_instance_account(t):
    return [(201, t.admin_raw('POST', '/service_accounts', json={'name': 'Mobb'})),
            (400, t.admin_raw('POST', '/service_accounts', json={'username': 'alice'})),
            (401, t.raw('POST', '/service_accounts')),
            (403, t.raw('POST', '/service_accounts', token=t.secrets['alice']))]


def list_instance_accounts(t):
    service_account(t)
    service_account(t, group='team')
    return [(200, t.admin_raw('GET', '/service_accounts')),
            (200, t.admin_raw('GET', '/service_accounts', params={'order_by': 'username', 'sort': 'asc'})),
            (400, t.admin_raw('GET', '/service_accounts', params={'sort': 'sideways'})),
            (401, t.raw('GET', '/service_accounts')),
            (403, t.raw('GET', '/service_accounts', token=t.secrets['alice']))]


def update_instance_account(t):
    account = service_account(t)
    url = f'/service_accounts/{account["id"]}'
    return [(200, t.admin_raw('PATCH', url, json={'name': 'Mobb', 'username': 'mobb-bot'})),
            (400, t.admin_raw('PATCH', f'/service_accounts/{t.user_ids["alice"]}', json={'name': 'x'})),
            (401, t.raw('PATCH', url)),
            (403, t.raw('PATCH', url, token=t.secrets['alice'])),
            (404, t.admin_raw('PATCH', '/service_accounts/999', json={'name': 'x'}))]


class Place:
    """A group or project and the callers that pass or fail its service-account gate."""

    def __init__(self, t, kind):
        self.t = t
        self.kind = kind
        self.path = 'team' if kind == 'group' else 'team/app'
        self.base = f'/{kind}s/{self.path.replace("/", "%2F")}/service_accounts'
        self.member = 'alice' if kind == 'group' else 'carol'    # passes the gate
        self.outsider = 'dave' if kind == 'group' else 'bob'     # a member below the gate
        if kind == 'project':
            t.instance.settings(project_service_accounts=True)

    def account(self, **fields):
        return service_account(self.t, **{self.kind: self.path}, **fields)

    def call(self, method, suffix='', user='root', **kwargs):
        return self.t.raw(method, self.base + suffix, token=self.t.secrets[user] if user else None, **kwargs)


def create_account(kind):
    def scenario(t):
        place = Place(t, kind)
        refused = [(400, place.call('POST', user=place.member, json={'name': 'Mobb'}))] if kind == 'group' else \
            [(400, place.call('POST', json={'username': 'carol'}))]
        return [(201, place.call('POST', json={'name': 'Mobb', 'username': 'mobb-bot'})),
                (201, place.call('POST')),
                *refused,
                (401, place.call('POST', user=None)),
                (403, place.call('POST', user=place.outsider)),
                (404, t.admin_raw('POST', f'/{kind}s/999/service_accounts'))]
    return scenario


def list_accounts(kind):
    def scenario(t):
        place = Place(t, kind)
        place.account()
        place.account()
        return [(200, place.call('GET')),
                (200, place.call('GET', user=place.member, params={'order_by': 'username', 'sort': 'asc'})),
                (400, place.call('GET', params={'order_by': 'name'})),
                (401, place.call('GET', user=None)),
                (403, place.call('GET', user=place.outsider)),
                (404, t.admin_raw('GET', f'/{kind}s/no%2Fsuch/service_accounts'))]
    return scenario


def get_account(kind):
    def scenario(t):
        place = Place(t, kind)
        account = place.account()
        outside = service_account(t)
        return [(200, place.call('GET', f'/{account["id"]}', user=place.member)),
                (400, place.call('GET', '/abc')),
                (401, place.call('GET', f'/{account["id"]}', user=None)),
                (403, place.call('GET', f'/{account["id"]}', user=place.outsider)),
                (404, place.call('GET', f'/{outside["id"]}'))]
    return scenario


def delete_account(kind):
    def scenario(t):
        place = Place(t, kind)
        account = place.account()
        return [(400, place.call('DELETE', f'/{account["id"]}', params={'hard_delete': 'perhaps'})),
                (401, place.call('DELETE', f'/{account["id"]}', user=None)),
                (403, place.call('DELETE', f'/{account["id"]}', user=place.outsider)),
                (204, place.call('DELETE', f'/{account["id"]}', params={'hard_delete': 'true'})),
                (404, place.call('DELETE', f'/{account["id"]}'))]
    return scenario


def update_account(kind):
    def scenario(t):
        place = Place(t, kind)
        account = place.account()
        return [(200, place.call('PATCH', f'/{account["id"]}', user=place.member, json={'name': 'Mobb'})),
                (400, place.call('PATCH', f'/{account["id"]}', json={'username': 'erin'})),
                (401, place.call('PATCH', f'/{account["id"]}', user=None)),
                (403, place.call('PATCH', f'/{account["id"]}', user=place.outsider)),
                (404, place.call('PATCH', f'/{t.user_ids["erin"]}', json={'name': 'x'}))]
    return scenario


def list_tokens(kind):
    def scenario(t):
        place = Place(t, kind)
        account = place.account()
        token_of(t, account['username'], expires_at=None)
        token_of(t, account['username'], name='old', revoked=True, last_used_days_ago=3)
        url = f'/{account["id"]}/personal_access_tokens'
        return [(200, place.call('GET', url)),
                (200, place.call('GET', url, user=place.member, params={'state': 'active', 'sort': 'name_desc'})),
                (400, place.call('GET', url, params={'state': 'sleeping'})),
                (401, place.call('GET', url, user=None)),
                (403, place.call('GET', url, user=place.outsider)),
                (404, place.call('GET', f'/{t.user_ids["erin"]}/personal_access_tokens'))]
    return scenario


def create_token(kind):
    def scenario(t):
        place = Place(t, kind)
        account = place.account()
        url = f'/{account["id"]}/personal_access_tokens'
        return [(201, place.call('POST', url, json={'name': 'mobb', 'scopes': ['api', 'read_user'],
                                                    'description': 'Mobb', 'expires_at': t.day(30)})),
                (201, place.call('POST', url, user=place.member, json={'name': 'mobb', 'scopes': 'api'})),
                (400, place.call('POST', url, json={'name': 'mobb', 'scopes': ['root']})),
                (404, place.call('POST', f'/{t.user_ids["erin"]}/personal_access_tokens',
                                 json={'name': 'mobb', 'scopes': ['api']}))]
    return scenario


def revoke_token(kind):
    def scenario(t):
        place = Place(t, kind)
        account = place.account()
        token = token_of(t, account['username'])
        url = f'/{account["id"]}/personal_access_tokens/{token["id"]}'
        return [(401, place.call('DELETE', url, user=None)),
                (403, place.call('DELETE', url, user=place.outsider)),
                (204, place.call('DELETE', url)),
                (404, place.call('DELETE', f'/{account["id"]}/personal_access_tokens/{t.token_ids["erin"]}'))]
    return scenario


def rotate_token(kind):
    def scenario(t):
        place = Place(t, kind)
        account = place.account()
        token = token_of(t, account['username'])
        url = f'/{account["id"]}/personal_access_tokens/{token["id"]}/rotate'
        return [(200, place.call('POST', url, json={'expires_at': t.day(90)})),
                (400, place.call('POST', url)),
                (404, place.call('POST', f'/{account["id"]}/personal_access_tokens/{t.token_ids["erin"]}/rotate'))]
    return scenario


SCENARIOS = {
    'postApiV4ServiceAccounts': create_instance_account,
    'getApiV4ServiceAccounts': list_instance_accounts,
    'patchApiV4ServiceAccountsUserId': update_instance_account,
}
for _kind, _prefix in (('project', 'Projects'), ('group', 'Groups')):
    SCENARIOS.update({
        f'postApiV4{_prefix}IdServiceAccounts': create_account(_kind),
        f'getApiV4{_prefix}IdServiceAccounts': list_accounts(_kind),
        f'getApiV4{_prefix}IdServiceAccountsUserId': get_account(_kind),
        f'deleteApiV4{_prefix}IdServiceAccountsUserId': delete_account(_kind),
        f'patchApiV4{_prefix}IdServiceAccountsUserId': update_account(_kind),
        f'getApiV4{_prefix}IdServiceAccountsUserIdPersonalAccessTokens': list_tokens(_kind),
        f'postApiV4{_prefix}IdServiceAccountsUserIdPersonalAccessTokens': create_token(_kind),
        f'deleteApiV4{_prefix}IdServiceAccountsUserIdPersonalAccessTokensTokenId': revoke_token(_kind),
        f'postApiV4{_prefix}IdServiceAccountsUserIdPersonalAccessTokensTokenIdRotate': rotate_token(_kind),
    })


def test_every_operation_of_the_extract_has_a_scenario(extract):
    assert sorted(SCENARIOS) == sorted(operation[2] for operation in extract.operations())
    assert len(SCENARIOS) == 21


def test_the_patch_only_touches_what_it_documents(extract):
    patched, original = extract.patched, extract.raw
    assert sorted(patched['paths']) == sorted(original['paths'])
    for path in ROTATES:
        assert patched['paths'][path]['post']['responses'].keys() == {'200', '400', '404'}
    for path, item in original['paths'].items():
        for method, operation in item.items():
            assert patched['paths'][path][method]['operationId'] == operation['operationId']
            assert patched['paths'][path][method].get('parameters') == operation.get('parameters')


@pytest.mark.parametrize('operation_id', sorted(SCENARIOS))
def test_responses_validate_against_the_extract(gl_team, extract, operation_id):
    outcomes = SCENARIOS[operation_id](gl_team)
    assert outcomes
    for expected, response in outcomes:
        extract.check(operation_id, expected, response)


def test_the_validator_rejects_a_response_that_breaks_the_extract(gl_team, extract):
    response = gl_team.admin_raw('POST', '/service_accounts')
    extract.validate(response)
    broken = response.json()
    broken['id'] = str(broken['id'])
    response._content = json.dumps(broken).encode()  # pylint: disable=protected-access
    with pytest.raises(OpenAPIError):
        extract.validate(response)


def test_the_validator_rejects_a_list_that_is_not_an_array(gl_team, extract):
    response = gl_team.admin_raw('GET', '/service_accounts')
    extract.validate(response)
    response._content = json.dumps({'id': 1}).encode()  # pylint: disable=protected-access
    with pytest.raises(OpenAPIError):
        extract.validate(response)
