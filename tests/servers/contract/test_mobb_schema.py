"""The local Mobb server against Mobb's published API: schema, documents, Hasura's errors.

The documents in mobb_api_documents.graphql are copied verbatim from Mobb's API notes;
they must validate against the local schema and run over HTTP with the published union
members, and a document Mobb would refuse must be refused here the way Hasura does.
"""
from __future__ import annotations

import importlib
import inspect
import pathlib

import graphql
import pytest
import requests

from mobb_server import graphql_api

HERE = pathlib.Path(__file__).parent
PUBLISHED = (HERE / 'mobb_api_documents.graphql').read_text()
SCHEMA = graphql_api.load_schema()


def _post(mobb, body, api_key=None, raw=None):
    headers = {'x-mobb-key': api_key} if api_key else {}
    if raw is not None:
        headers['Content-Type'] = 'application/json'
        return requests.post(mobb.graphql_url, data=raw, headers=headers, timeout=10)
    return requests.post(mobb.graphql_url, json=body, headers=headers, timeout=10)


def _only_error(response):
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer['data'] is None, answer
    assert len(answer['errors']) == 1, answer
    return answer['errors'][0]


@pytest.fixture
def admin_key(mobb):
    seeded = mobb.seed(organizations=[{'name': 'acme'}],
                       users=[{'email': 'admin@acme.test', 'organization': 'acme', 'role': 'Admin'}])
    return seeded['users'][0]['api_key']


# -- the schema ---------------------------------------------------------------------------------
def test_published_documents_validate_against_the_local_schema():
    document = graphql.parse(PUBLISHED)
    names = [d.name.value for d in document.definitions if isinstance(d, graphql.OperationDefinitionNode)]
    assert names == ['updateScmToken', 'Me', 'checkScmConnectionStatus']
    assert graphql.validate(SCHEMA, document) == []


@pytest.mark.parametrize('union, members', [
    ('ScmAccessTokenUpdateResponse',
     {'ScmAccessTokenUpdateSuccess', 'InvalidScmTypeError', 'BadScmCredentials', 'RepoUnreachableError'}),
    ('ValidateScmTokenResponse', {'ValidateScmTokenSuccess', 'BadScmCredentials', 'InvalidScmTypeError'}),
    ('RepoValidationResponse',
     {'RepoValidationSuccess', 'RepoUnreachableError', 'BadScmCredentials', 'InvalidRepoUrlError'}),
])
def test_unions_have_the_published_members(union, members):
    assert {member.name for member in SCHEMA.type_map[union].types} == members


def test_roots_enums_and_arguments_are_named_as_in_mobb():
    assert SCHEMA.query_type.name == 'query_root'
    assert SCHEMA.mutation_type.name == 'mutation_root'
    assert set(SCHEMA.type_map['Status'].values) == {'OK', 'Error'}
    update = SCHEMA.mutation_type.fields['updateScmToken']
    assert {name: str(arg.type) for name, arg in update.args.items()} == {
        'scmType': 'String!', 'url': 'String!', 'token': 'String!',
        'org': 'String', 'username': 'String', 'refreshToken': 'String'}
    query = SCHEMA.query_type.fields
    assert {name: str(arg.type) for name, arg in query['validateScmToken'].args.items()} == {
        'scmType': 'String!', 'url': 'String!', 'token': 'String!', 'scmOrg': 'String'}
    assert str(query['checkScmConnectionStatus'].args['scmUrl'].type) == 'String!'
    assert str(query['checkScmConnectionStatusAdmin'].args['scmUuid'].type) == 'String!'
    assert str(query['validateRepoUrl'].args['repoUrl'].type) == 'String!'
    assert str(query['checkScmConnectionStatus'].type) == 'ValidationSuccess'
    assert set(SCHEMA.type_map['ScmConfig'].fields) == {
        'id', 'orgId', 'scmType', 'scmUrl', 'scmUsername', 'scmOrg', 'token', 'refreshToken',
        'tokenLastUpdate', 'isTokenAvailable', 'isTokenOauth', 'userId'}
    assert set(SCHEMA.type_map['BrokerHostsType'].fields) == {'realDomain', 'virtualDomain'}


def test_collection_documents_validate_against_the_local_schema():
    """Every GraphQL document the collection sends is one the schema accepts."""
    module = importlib.import_module('ansible_collections.mobb.scm.plugins.module_utils.mobb')
    documents = {name: value for name, value in inspect.getmembers(module, lambda v: isinstance(v, str))
                 if value.lstrip().startswith(('query ', 'mutation '))}
    assert documents, 'plugins/module_utils/mobb.py defines no GraphQL documents'
    for name, text in documents.items():
        assert graphql.validate(SCHEMA, graphql.parse(text)) == [], name


# -- the published documents over HTTP ----------------------------------------------------------
def test_published_me_returns_every_requested_field(mobb, admin_key):
    response = _post(mobb, {'query': PUBLISHED, 'operationName': 'Me'}, admin_key)
    assert response.status_code == 200
    me = response.json()['data']['me']
    assert me['email'] == 'admin@acme.test'
    assert me['scmConfigs'] == []
    assert me['userOrganizationsAndUserOrganizationRoles'] == [{'organization': {'brokerHosts': []}}]


def test_published_update_with_unknown_scm_type_is_invalid_scm_type(mobb, admin_key):
    variables = {'scmType': 'Gitlab', 'url': 'https://gitlab.acme.test', 'token': 'glpat-unused'}
    response = _post(mobb, {'query': PUBLISHED, 'operationName': 'updateScmToken', 'variables': variables},
                     admin_key)
    assert response.status_code == 200
    result = response.json()['data']['updateScmToken']
    assert result['__typename'] == 'InvalidScmTypeError'
    assert result['status'] == 'Error'
    assert 'Gitlab' in result['error'] and 'GitLab' in result['error']
    assert mobb.scm_configs() == []


def test_published_check_without_a_stored_token_fails_with_a_message(mobb, admin_key):
    response = _post(mobb, {'query': PUBLISHED, 'operationName': 'checkScmConnectionStatus',
                            'variables': {'scmUrl': 'https://gitlab.acme.test'}}, admin_key)
    error = _only_error(response)
    assert error['message'] == 'No SCM token is stored for https://gitlab.acme.test'
    assert error['extensions']['code'] == 'unexpected'


def test_introspection_names_hasuras_root_types(mobb, admin_key):
    response = _post(mobb, {'query': '{ __schema { queryType { name } mutationType { name } } }'}, admin_key)
    assert response.json() == {'data': {'__schema': {'queryType': {'name': 'query_root'},
                                                     'mutationType': {'name': 'mutation_root'}}}}


# -- Hasura's errors ----------------------------------------------------------------------------
@pytest.mark.parametrize('query, message, path', [
    ('query Me { me { id emial } }',
     "field 'emial' not found in type: 'MeResponse'", '$.selectionSet.me.selectionSet.emial'),
    ('query Me { me { scmConfigs { tokenLastUpdated } } }',
     "field 'tokenLastUpdated' not found in type: 'ScmConfig'",
     '$.selectionSet.me.selectionSet.scmConfigs.selectionSet.tokenLastUpdated'),
    ('mutation u { updateScmTokens(scmType: "GitLab", url: "u", token: "t") { __typename } }',
     "field 'updateScmTokens' not found in type: 'mutation_root'", '$.selectionSet.updateScmTokens'),
    ('mutation u { updateScmToken(scmType: "GitLab", url: "u", token: "t") '
     '{ ... on ScmAccessTokenUpdateSuccess { id tokn } } }',
     "field 'tokn' not found in type: 'ScmAccessTokenUpdateSuccess'",
     '$.selectionSet.updateScmToken.selectionSet.tokn'),
    ('query c { checkScmConnectionStatus(scmURL: "u") { status } }',
     "'checkScmConnectionStatus' has no argument named 'scmURL'", '$.selectionSet.checkScmConnectionStatus'),
    ('query c { checkScmConnectionStatus { status } }',
     "missing required field 'scmUrl'", '$.selectionSet.checkScmConnectionStatus'),
    ('query Me { me }', "missing selection set for 'MeResponse'", '$.selectionSet.me'),
])
def test_invalid_documents_fail_validation_like_hasura(mobb, admin_key, query, message, path):
    error = _only_error(_post(mobb, {'query': query}, admin_key))
    assert error == {'message': message, 'extensions': {'code': 'validation-failed', 'path': path}}
    assert mobb.requests()[-1]['error_code'] == 'validation-failed'


def test_missing_non_null_variable_fails_validation(mobb, admin_key):
    error = _only_error(_post(mobb, {'query': PUBLISHED, 'operationName': 'checkScmConnectionStatus'},
                              admin_key))
    assert error['message'] == 'expecting a value for non-nullable variable: "scmUrl"'
    assert error['extensions']['code'] == 'validation-failed'


@pytest.mark.parametrize('headers', [
    {}, {'x-mobb-key': ''}, {'x-mobb-key': 'not-a-key'}, {'Authorization': 'Bearer not-a-key'},
], ids=['missing', 'empty', 'unknown', 'bearer-only'])
def test_missing_or_unknown_key_is_access_denied_with_http_200(mobb, admin_key, headers):
    response = requests.post(mobb.graphql_url, json={'query': 'query Me { me { id } }'}, headers=headers,
                             timeout=10)
    assert response.status_code == 200
    assert response.json() == {'data': None, 'errors': [{
        'message': 'Authentication hook unauthorized this request',
        'extensions': {'code': 'access-denied', 'path': '$'}}]}
    entry = mobb.requests()[-1]
    assert (entry['error_code'], entry['user'], entry['operation']) == ('access-denied', None, 'Me')
    assert admin_key not in response.text


def test_access_is_checked_before_the_document(mobb):
    error = _only_error(_post(mobb, {'query': 'query Me { me { nosuchfield } }'}, api_key='wrong'))
    assert error['extensions']['code'] == 'access-denied'


@pytest.mark.parametrize('raw, body, code, message', [
    (b'this is not json', None, 'invalid-json', 'Error in $: Failed reading: not a valid json value'),
    (b'[1, 2]', None, 'parse-failed', 'Error in $: parsing GQLReq failed, expected Object'),
    (None, {'variables': {}}, 'parse-failed', 'key "query" not found'),
    (None, {'query': ['me']}, 'parse-failed', 'expected Text, encountered list'),
    (None, {'query': 'query Me { me { id }'}, 'validation-failed', 'not a valid graphql query'),
    (None, {'query': 'query A { me { id } } query B { me { email } }'}, 'validation-failed',
     'exactly one operation has to be present in the document when operationName is not specified'),
    (None, {'query': 'query A { me { id } }', 'operationName': 'B'}, 'validation-failed',
     'no such operation found in the document: "B"'),
], ids=['not-json', 'not-object', 'no-query', 'query-not-text', 'syntax', 'two-operations', 'unknown-operation'])
def test_malformed_requests_get_hasura_errors_with_http_200(mobb, admin_key, raw, body, code, message):
    error = _only_error(_post(mobb, body, admin_key, raw=raw))
    assert error['extensions']['code'] == code
    assert error['message'].startswith(message)


def test_get_on_the_graphql_endpoint_is_hasuras_not_found(mobb):
    response = requests.get(mobb.graphql_url, timeout=10)
    assert response.status_code == 404
    assert response.json() == {'path': '$', 'error': 'resource does not exist', 'code': 'not-found'}
