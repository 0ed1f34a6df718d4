"""Every operation of GitLab's OpenAPI extract for tokens, answered by the local server, validated by openapi-core.

``gitlab-openapi-access-tokens.yaml`` is the extract from ``../shared/reference`` (GitLab
19.5's generated document, CC BY-SA 4.0). Each operation below is called over real HTTP
for its success status and for every error status the extract declares that the local
server can produce, and each response is validated against the extract with openapi-core.
Statuses the extract leaves out (401 on most endpoints, 422 on admin PAT creation, ...)
are pinned by the behaviour tests in the other ``test_gitlab_*`` modules instead.

The extract has quirks, fixed in an in-memory copy: those every GitLab extract shares by
conftest's ``OpenApiExtract.shared_quirks``, this one's by ``patch_quirks``; each fix says why.
"""
from __future__ import annotations

import json

import pytest
from openapi_core.exceptions import OpenAPIError

SPEC_FILE = 'gitlab-openapi-access-tokens.yaml'
TOKEN_ENTITIES = ('APIEntitiesPersonalAccessToken', 'APIEntitiesPersonalAccessTokenWithToken',
                  'APIEntitiesResourceAccessToken', 'APIEntitiesResourceAccessTokenWithToken')
ASSOCIATIONS = {
    'type': 'object', 'required': ['groups', 'projects'],
    'properties': {
        'groups': {'type': 'array', 'items': {
            'type': 'object', 'required': ['id', 'name', 'access_levels'],
            'properties': {'id': {'type': 'integer'}, 'name': {'type': 'string'},
                           'access_levels': {'type': 'integer'}}}},
        'projects': {'type': 'array', 'items': {
            'type': 'object', 'required': ['id', 'path_with_namespace', 'access_levels'],
            'properties': {'id': {'type': 'integer'}, 'path_with_namespace': {'type': 'string'},
                           'access_levels': {'type': 'object'}}}},
    },
}


def patch_quirks(spec):
    """This extract's own quirks fixed (``spec`` is a copy, with the shared ones fixed already)."""
    schemas = spec['components']['schemas']
    for name in TOKEN_ENTITIES:
        properties = schemas[name]['properties']
        if 'access_level' in properties:
            # Create accepts Planner (15), so tokens can hold it; the entity enum omits it.
            properties['access_level']['enum'] = sorted({*properties['access_level']['enum'], 15})
    # GitLab reports KAS settings as null when KAS is not configured.
    for field in ('externalUrl', 'externalK8sProxyUrl', 'version'):
        schemas['APIEntitiesMetadata']['properties']['kas']['properties'][field]['nullable'] = True
    # GitLab's code sets 200 on every rotate endpoint; the extract says 201 for this one.
    rotate = spec['paths']['/api/v4/personal_access_tokens/{id}/rotate']['post']['responses']
    rotate['200'] = rotate.pop('201')
    # The extract reuses the token entity here; GitLab answers {"groups": [...], "projects": [...]}.
    associations = spec['paths']['/api/v4/personal_access_tokens/self/associations']['get']['responses']
    associations['200']['content']['application/json']['schema'] = ASSOCIATIONS
    return spec


@pytest.fixture(scope='module')
def extract(openapi_extract):
    return openapi_extract(SPEC_FILE, patch_quirks, TOKEN_ENTITIES)


# ----------------------------------------------------------------------- scenarios
# Each returns [(expected status, response), ...] for one operation.
def seed_token(team, **token):
    return team.instance.seed(tokens=[token])['tokens'][0]


def bot(team, kind, path, **token):
    return seed_token(team, kind=kind, **{kind: path}, name=token.pop('name', 'bot'), **token)


def self_rotate_pat(t):
    short = seed_token(t, kind='personal', user='erin', name='short', scopes=['read_user'])
    return [
        (200, t.raw('POST', '/personal_access_tokens/self/rotate', token=t.secrets['bob'])),
        (400, t.raw('POST', '/personal_access_tokens/self/rotate', token=t.secrets['carol'],
                    json={'expires_at': t.day(400)})),
        (401, t.raw('POST', '/personal_access_tokens/self/rotate', token=t.secrets['bob'])),
        (403, t.raw('POST', '/personal_access_tokens/self/rotate', token=short['token'])),
    ]


def get_self(t):
    return [(200, t.raw('GET', '/personal_access_tokens/self', token=t.secrets['bob'])),
            (401, t.raw('GET', '/personal_access_tokens/self', token='glpat-00000000000000000000'))]


def delete_self(t):
    return [(204, t.raw('DELETE', '/personal_access_tokens/self', token=t.secrets['bob']))]


def associations(t):
    return [
        (200, t.raw('GET', '/personal_access_tokens/self/associations', token=t.secrets['alice'])),
        (200, t.raw('GET', '/personal_access_tokens/self/associations', token=t.secrets['bob'],
                    params={'min_access_level': 30})),
        (400, t.raw('GET', '/personal_access_tokens/self/associations', token=t.secrets['bob'],
                    params={'min_access_level': 33})),
        (401, t.raw('GET', '/personal_access_tokens/self/associations')),
    ]


def list_pats(t):
    bot(t, 'project', 'team/app')
    t.instance.seed(tokens=[{'kind': 'personal', 'user': 'bob', 'name': 'used', 'last_used_days_ago': 1}])
    return [
        (200, t.admin_raw('GET', '/personal_access_tokens')),
        (200, t.raw('GET', '/personal_access_tokens', token=t.secrets['bob'], params={'state': 'active'})),
        (400, t.admin_raw('GET', '/personal_access_tokens', params={'state': 'sleeping'})),
        (401, t.raw('GET', '/personal_access_tokens', token=t.secrets['bob'], params={'user_id': 1})),
    ]


def get_pat(t):
    return [(200, t.admin_raw('GET', f'/personal_access_tokens/{t.token_ids["bob"]}')),
            (401, t.raw('GET', '/personal_access_tokens/1', token=t.secrets['bob'])),
            (404, t.admin_raw('GET', '/personal_access_tokens/999'))]


def delete_pat(t):
    return [(400, t.raw('DELETE', '/personal_access_tokens/1', token=t.secrets['bob'])),
            (204, t.admin_raw('DELETE', f'/personal_access_tokens/{t.token_ids["bob"]}')),
            (404, t.admin_raw('DELETE', '/personal_access_tokens/999'))]


def rotate_pat(t):
    return [(200, t.admin_raw('POST', f'/personal_access_tokens/{t.token_ids["bob"]}/rotate',
                              json={'expires_at': t.day(30)})),
            (400, t.admin_raw('POST', f'/personal_access_tokens/{t.token_ids["bob"]}/rotate')),
            (404, t.admin_raw('POST', '/personal_access_tokens/999/rotate'))]


def create_pat_for_user(t):
    path = f'/users/{t.user_ids["bob"]}/personal_access_tokens'
    return [(201, t.admin_raw('POST', path, json={'name': 'n', 'scopes': ['api'], 'description': 'd'})),
            (201, t.admin_raw('POST', path, json={'name': 'n', 'scopes': ['api'], 'expires_at': t.day(3)})),
            (400, t.admin_raw('POST', path, json={'name': 'n', 'scopes': ['root']})),
            (404, t.admin_raw('POST', '/users/999/personal_access_tokens', json={'name': 'n', 'scopes': ['api']}))]


def current_user(t):
    agent = seed_token(t, kind='personal', user='erin', name='agent', scopes=['k8s_proxy'])
    return [(200, t.admin_raw('GET', '/user')), (200, t.raw('GET', '/user', token=t.secrets['bob'])),
            (401, t.raw('GET', '/user')), (403, t.raw('GET', '/user', token=agent['token']))]


def create_own_pat(t):
    return [(201, t.raw('POST', '/user/personal_access_tokens', token=t.secrets['bob'],
                        json={'name': 'agent', 'scopes': ['k8s_proxy', 'self_rotate']})),
            (400, t.raw('POST', '/user/personal_access_tokens', token=t.secrets['bob'],
                        json={'name': 'agent', 'scopes': ['api']}))]


def self_rotate_resource(kind, path):
    def scenario(t):
        encoded = path.replace('/', '%2F')
        url = f'/{kind}s/{encoded}/access_tokens/self/rotate'
        own = bot(t, kind, path)
        greedy = bot(t, kind, path, name='greedy')
        reader = bot(t, kind, path, name='reader', scopes=['read_api'])
        # A group token reaches the group's subgroups and projects, but is not their token.
        outsider = bot(t, 'group', 'team', name='outsider')
        outsider_url = '/projects/team%2Fapp/access_tokens/self/rotate' if kind == 'project' else \
            '/groups/team%2Fsub/access_tokens/self/rotate'
        return [
            (200, t.raw('POST', url, token=own['token'], json={'expires_at': t.day(20)})),
            (400, t.raw('POST', url, token=greedy['token'], json={'expires_at': t.day(500)})),
            (401, t.raw('POST', outsider_url, token=outsider['token'])),
            (403, t.raw('POST', url, token=reader['token'])),
            (404, t.raw('POST', f'/{kind}s/999/access_tokens/self/rotate', token=greedy['token'])),
            (405, t.raw('POST', url, token=t.secrets['alice'])),
        ]
    return scenario


def list_resource_tokens(kind, path):
    def scenario(t):
        bot(t, kind, path, access_level=15, description='planner')
        bot(t, kind, path, name='gone', revoked=True, expires_at=None)
        encoded = path.replace('/', '%2F')
        return [(200, t.admin_raw('GET', f'/{kind}s/{encoded}/access_tokens')),
                (400, t.admin_raw('GET', f'/{kind}s/{encoded}/access_tokens', params={'revoked': 'perhaps'})),
                (404, t.admin_raw('GET', f'/{kind}s/no%2Fsuch/access_tokens'))]
    return scenario


def create_resource_token(kind, path):
    def scenario(t):
        encoded = path.replace('/', '%2F')
        url = f'/{kind}s/{encoded}/access_tokens'
        return [(201, t.admin_raw('POST', url, json={'name': 'mobb', 'scopes': ['api'], 'access_level': 30})),
                (400, t.admin_raw('POST', url, json={'name': 'mobb', 'scopes': ['api'], 'access_level': 60})),
                (404, t.admin_raw('POST', f'/{kind}s/999/access_tokens', json={'name': 'mobb', 'scopes': ['api']}))]
    return scenario


def get_resource_token(kind, path):
    def scenario(t):
        token = bot(t, kind, path)
        encoded = path.replace('/', '%2F')
        return [(200, t.admin_raw('GET', f'/{kind}s/{encoded}/access_tokens/{token["id"]}')),
                (404, t.admin_raw('GET', f'/{kind}s/{encoded}/access_tokens/999'))]
    return scenario


def delete_resource_token(kind, path, member):
    def scenario(t):
        token = bot(t, kind, path)
        encoded = path.replace('/', '%2F')
        url = f'/{kind}s/{encoded}/access_tokens/{token["id"]}'
        return [(400, t.raw('DELETE', url, token=t.secrets[member])),
                (204, t.admin_raw('DELETE', url)),
                (404, t.admin_raw('DELETE', f'/{kind}s/{encoded}/access_tokens/999'))]
    return scenario


def rotate_resource_token(kind, path):
    def scenario(t):
        token = bot(t, kind, path)
        encoded = path.replace('/', '%2F')
        url = f'/{kind}s/{encoded}/access_tokens/{token["id"]}/rotate'
        return [(200, t.admin_raw('POST', url)),
                (400, t.admin_raw('POST', url)),
                (404, t.admin_raw('POST', f'/{kind}s/{encoded}/access_tokens/999/rotate'))]
    return scenario


def version(t):
    return [(200, t.admin_raw('GET', '/version')), (401, t.raw('GET', '/version'))]


SCENARIOS = {
    'postApiV4PersonalAccessTokensSelfRotate': self_rotate_pat,
    'getApiV4PersonalAccessTokensSelf': get_self,
    'deleteApiV4PersonalAccessTokensSelf': delete_self,
    'getApiV4PersonalAccessTokensSelfAssociations': associations,
    'getApiV4PersonalAccessTokens': list_pats,
    'getApiV4PersonalAccessTokensId': get_pat,
    'deleteApiV4PersonalAccessTokensId': delete_pat,
    'postApiV4PersonalAccessTokensIdRotate': rotate_pat,
    'postApiV4UsersUserIdPersonalAccessTokens': create_pat_for_user,
    'getApiV4User': current_user,
    'postApiV4UserPersonalAccessTokens': create_own_pat,
    'postApiV4ProjectsIdAccessTokensSelfRotate': self_rotate_resource('project', 'team/app'),
    'postApiV4GroupsIdAccessTokensSelfRotate': self_rotate_resource('group', 'team'),
    'getApiV4ProjectsIdAccessTokens': list_resource_tokens('project', 'team/app'),
    'postApiV4ProjectsIdAccessTokens': create_resource_token('project', 'team/app'),
    'getApiV4ProjectsIdAccessTokensTokenId': get_resource_token('project', 'team/app'),
    'deleteApiV4ProjectsIdAccessTokensTokenId': delete_resource_token('project', 'team/app', 'bob'),
    'postApiV4ProjectsIdAccessTokensTokenIdRotate': rotate_resource_token('project', 'team/app'),
    'getApiV4GroupsIdAccessTokens': list_resource_tokens('group', 'team/sub'),
    'postApiV4GroupsIdAccessTokens': create_resource_token('group', 'team'),
    'getApiV4GroupsIdAccessTokensTokenId': get_resource_token('group', 'team'),
    'deleteApiV4GroupsIdAccessTokensTokenId': delete_resource_token('group', 'team', 'dave'),
    'postApiV4GroupsIdAccessTokensTokenIdRotate': rotate_resource_token('group', 'team'),
    'getApiV4Version': version,
}


def test_every_operation_of_the_extract_has_a_scenario(extract):
    assert sorted(SCENARIOS) == sorted(operation[2] for operation in extract.operations())
    assert len(SCENARIOS) == 24


def test_the_patch_only_touches_what_it_documents(extract):
    patched, original = extract.patched, extract.raw
    assert sorted(patched['paths']) == sorted(original['paths'])
    assert patched['paths']['/api/v4/personal_access_tokens/{id}/rotate']['post']['responses'].keys() == {
        '200', '400', '404'}
    for path, item in original['paths'].items():
        for method, operation in item.items():
            assert patched['paths'][path][method]['operationId'] == operation['operationId']


@pytest.mark.parametrize('operation_id', sorted(SCENARIOS))
def test_responses_validate_against_the_extract(gl_team, extract, operation_id):
    outcomes = SCENARIOS[operation_id](gl_team)
    assert outcomes
    for expected, response in outcomes:
        extract.check(operation_id, expected, response)


def test_the_validator_rejects_a_response_that_breaks_the_extract(gl_team, extract):
    response = gl_team.admin_raw('GET', f'/personal_access_tokens/{gl_team.token_ids["bob"]}')
    extract.validate(response)
    broken = response.json()
    broken['created_at'] = 'yesterday'
    response._content = json.dumps(broken).encode()  # pylint: disable=protected-access
    with pytest.raises(OpenAPIError):
        extract.validate(response)
