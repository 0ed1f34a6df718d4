"""Mobb's GraphQL API as Hasura serves it: graphql-core executes documents against
``schema.graphql``; resolvers read and change ``MobbState``; every failure becomes a
Hasura-style error (HTTP 200, ``{"data": null, "errors": [{"message", "extensions":
{"code", "path"}}]}``).

Choices where Mobb's behaviour is not public (documented in tests/servers/README.md):
- a Member calling ``updateScmToken`` or ``checkScmConnectionStatusAdmin`` gets
  ``permission-error`` (Hasura's code for a permission check that failed);
- a failed connection check is GraphQL errors with code ``unexpected`` (how Hasura relays
  an action handler's error) or, with the setting ``check_failure: status``, ``status:
  Error``;
- ``validateScmToken`` has no unreachable member in its union: an unreachable SCM there is
  ``BadScmCredentials`` carrying the unreachable message.
"""
from __future__ import annotations

import dataclasses
import inspect
import os
import re
import sys
import traceback
import urllib.parse

import graphql

from mobb_server import scm
from mobb_server.state import INTEGRATION_ROLES, SCM_TYPES, normalise_url

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'schema.graphql')

ACCESS_DENIED_MESSAGE = 'Authentication hook unauthorized this request'


class HasuraError(Exception):
    def __init__(self, message, code, path='$'):
        super().__init__(message)
        self.message = message
        self.code = code
        self.path = path

    def document(self):
        return {'message': self.message, 'extensions': {'code': self.code, 'path': self.path}}


def error_response(*errors):
    return {'data': None, 'errors': [error.document() for error in errors]}


@dataclasses.dataclass
class Context:
    """What a resolver needs; ``scm_checks`` collects verdicts for the request log."""
    state: object
    checker: scm.GitLabChecker
    user: object
    scm_checks: list = dataclasses.field(default_factory=list)


def load_schema():
    with open(SCHEMA_PATH, encoding='utf-8') as handle:
        schema = graphql.build_schema(handle.read())
    for union in ('ScmAccessTokenUpdateResponse', 'ValidateScmTokenResponse', 'RepoValidationResponse'):
        schema.type_map[union].resolve_type = _typename
    schema.type_map['BaseError'].resolve_type = _typename
    query = schema.query_type.fields
    query['me'].resolve = resolve_me
    query['checkScmConnectionStatus'].resolve = resolve_check_connection
    query['checkScmConnectionStatusAdmin'].resolve = resolve_check_connection_admin
    query['validateScmToken'].resolve = resolve_validate_token
    query['validateRepoUrl'].resolve = resolve_validate_repo_url
    schema.mutation_type.fields['updateScmToken'].resolve = resolve_update_token
    return schema


def _typename(value, _info, _type):
    return value['__typename']


# -- results --------------------------------------------------------------------------------
def _failure(typename, message, scm_type=None):
    result = {'__typename': typename, 'status': 'Error', 'error': message}
    if typename != 'InvalidScmTypeError' and typename != 'InvalidRepoUrlError':
        result['scmType'] = scm_type
    return result


def _invalid_scm_type(scm_type):
    return _failure('InvalidScmTypeError',
                    f'Invalid SCM type {scm_type!r}; valid types: {", ".join(SCM_TYPES)}')


def _verdict_failure(verdict, scm_type, unreachable_typename='RepoUnreachableError'):
    if verdict.outcome in (scm.UNAUTHORIZED, scm.INSUFFICIENT_SCOPE):
        return _failure('BadScmCredentials', verdict.message, scm_type)
    return _failure(unreachable_typename, verdict.message, scm_type)


def _require_integration_role(context, org=None):
    """The organization in which the caller may change the integration, else an error."""
    state, user = context.state, context.user
    if org is not None:
        if user.roles.get(org.id) in INTEGRATION_ROLES:
            return org
        role = user.roles.get(org.id, 'none')
        raise HasuraError(f'permission denied: role {role} in organization {org.name!r} may not change the '
                          f'SCM integration; Admin or Owner required', 'permission-error')
    org = user.integration_organization(state.organizations)
    if org is None:
        roles = ', '.join(sorted(set(user.roles.values()))) or 'none'
        raise HasuraError(f'permission denied: role {roles} may not change the SCM integration; '
                          f'Admin or Owner required', 'permission-error')
    return org


async def _check(context, url, token, owner=None):
    """Check a token the way Mobb reaches ``url`` for ``owner`` (default: the caller)."""
    state = context.state
    broker = state.broker_for(owner or context.user, url)
    verdict = await context.checker.check(
        url, token, broker=broker, timeout=state.settings['scm_timeout'],
        require_api_scope=state.settings['require_api_scope'])
    context.scm_checks.append({'url': url, 'outcome': verdict.outcome, 'detail': verdict.detail})
    return verdict


# -- resolvers ------------------------------------------------------------------------------
def resolve_me(_root, info):
    context = info.context
    state, user = context.state, context.user
    return_tokens = state.settings['return_tokens']
    return {
        'id': user.id, 'email': user.email, 'name': None,
        'userOrganizationsAndUserOrganizationRoles': [
            {'organization': {'brokerHosts': [
                {'realDomain': host.real_domain, 'virtualDomain': host.virtual_domain}
                for host in state.organizations[org_id].broker_hosts]}}
            for org_id in user.roles],
        'scmConfigs': [{
            'id': config.id, 'orgId': config.org_id, 'userId': config.user_id,
            'scmType': config.scm_type, 'scmUrl': config.scm_url, 'scmOrg': config.scm_org,
            'scmUsername': config.scm_username,
            'token': config.token if return_tokens else None,
            'refreshToken': config.refresh_token if return_tokens else None,
            'tokenLastUpdate': config.token_last_update,
            'isTokenAvailable': config.token is not None, 'isTokenOauth': config.is_token_oauth,
        } for config in state.configs_of(user)],
    }


async def resolve_update_token(_root, info, scmType, url, token, org=None, username=None, refreshToken=None):
    context = info.context
    state = context.state
    state.saw_secret(token)
    state.saw_secret(refreshToken)
    organization = _require_integration_role(context)
    if scmType not in SCM_TYPES:
        return _invalid_scm_type(scmType)
    scm_url = normalise_url(url)
    if scm_url is None:
        return _failure('RepoUnreachableError',
                        f'Invalid SCM URL {url!r}: expected http:// or https:// and a host name', scmType)
    if scmType != 'GitLab':
        return _failure('BadScmCredentials', 'The local Mobb server validates GitLab tokens only', scmType)
    verdict = await _check(context, scm_url, token)
    if not verdict.ok:
        return _verdict_failure(verdict, scmType)
    config = state.store_token(context.user, organization, scmType, scm_url, token, org, username, refreshToken)
    return {'__typename': 'ScmAccessTokenUpdateSuccess', 'id': config.id, 'token': token}


async def resolve_validate_token(_root, info, scmType, url, token, scmOrg=None):
    context = info.context
    context.state.saw_secret(token)
    if scmType not in SCM_TYPES:
        return _invalid_scm_type(scmType)
    scm_url = normalise_url(url)
    if scm_url is None:
        return _failure('BadScmCredentials',
                        f'Invalid SCM URL {url!r}: expected http:// or https:// and a host name', scmType)
    if scmType != 'GitLab':
        return _failure('BadScmCredentials', 'The local Mobb server validates GitLab tokens only', scmType)
    verdict = await _check(context, scm_url, token)
    if not verdict.ok:
        return _verdict_failure(verdict, scmType, unreachable_typename='BadScmCredentials')
    return {'__typename': 'ValidateScmTokenSuccess', 'status': 'OK'}


async def _connection_status(context, config, url):
    if config is None or config.token is None:
        return _not_connected(context, f'No SCM token is stored for {url}')
    verdict = await _check(context, config.scm_url, config.token, owner=context.state.users[config.user_id])
    if verdict.ok:
        return {'status': 'OK'}
    return _not_connected(context, verdict.message)


def _not_connected(context, message):
    if context.state.settings['check_failure'] == 'status':
        return {'status': 'Error'}
    raise HasuraError(message, 'unexpected')


async def resolve_check_connection(_root, info, scmUrl):
    context = info.context
    url = normalise_url(scmUrl)
    if url is None:
        return _not_connected(context, f'Invalid SCM URL {scmUrl!r}: expected http:// or https:// and a host name')
    return await _connection_status(context, context.state.config_for_url(context.user, url), url)


async def resolve_check_connection_admin(_root, info, scmUuid):
    context = info.context
    state = context.state
    config = state.scm_configs.get(scmUuid)
    if config is None:
        raise HasuraError(f'SCM config {scmUuid!r} not found', 'not-found')
    _require_integration_role(context, state.organizations[config.org_id])
    return await _connection_status(context, config, config.scm_url)


async def resolve_validate_repo_url(_root, info, repoUrl):
    context = info.context
    state = context.state
    repo_url = normalise_url(repoUrl)
    if repo_url is None or urllib.parse.urlsplit(repo_url).path.strip('/') == '':
        return _failure('InvalidRepoUrlError', f'Invalid repository URL {repoUrl!r}')
    configs = [config for config in state.configs_of(context.user)
               if config.token and (repo_url + '/').startswith(config.scm_url + '/')]
    if not configs:
        return _failure('BadScmCredentials', f'No SCM token is stored for {repoUrl}', None)
    config = max(configs, key=lambda candidate: len(candidate.scm_url))
    verdict = await _check(context, config.scm_url, config.token)
    if not verdict.ok:
        return _verdict_failure(verdict, config.scm_type)
    project_path = repo_url[len(config.scm_url):].strip('/')
    project_path = project_path[:-4] if project_path.endswith('.git') else project_path
    api = f'{config.scm_url}/api/v4/projects/{urllib.parse.quote(project_path, safe="")}'
    timeout = state.settings['scm_timeout']
    status, project, failure = await context.checker.get_json(api, config.token, timeout)
    if failure or status != 200:
        return _failure('RepoUnreachableError', scm.UNREACHABLE_MESSAGE, config.scm_type)
    branch = project.get('default_branch') or 'main'
    status, branch_body, failure = await context.checker.get_json(
        f'{api}/repository/branches/{urllib.parse.quote(branch, safe="")}', config.token, timeout)
    commit = (branch_body.get('commit') or {}) if status == 200 and not failure else {}
    return {'__typename': 'RepoValidationSuccess', 'status': 'OK', 'scmType': config.scm_type,
            'defaultBranch': branch, 'defaultBranchSha': commit.get('id', ''),
            'defaultBranchLastModified': commit.get('committed_date') or project.get('last_activity_at') or ''}


# -- Hasura's error style -------------------------------------------------------------------
_REWRITES = (
    (re.compile(r"^Cannot query field '([^']+)' on type '([^']+)'\..*", re.S),
     lambda m: f"field '{m[1]}' not found in type: '{m[2]}'"),
    (re.compile(r"^Argument '[^(']+\(([^:']+):\)' of type '[^']+' is required, but it was not provided\.$"),
     lambda m: f"missing required field '{m[1]}'"),
    (re.compile(r"^Unknown argument '([^']+)' on field '[^.]+\.([^']+)'\..*", re.S),
     lambda m: f"'{m[2]}' has no argument named '{m[1]}'"),
    (re.compile(r"^Variable '\$([^']+)' (of required type '[^']+' was not provided|has invalid value: "
                r"Expected a value of non-null type '[^']+' to be provided)\.$"),
     lambda m: f'expecting a value for non-nullable variable: "{m[1]}"'),
    (re.compile(r"^Field '[^']+' of type '([^']+)' must have a selection of subfields\..*", re.S),
     lambda m: f"missing selection set for '{m[1]}'"),
)


def hasura_message(message):
    for pattern, rewrite in _REWRITES:
        match = pattern.match(message)
        if match:
            return rewrite(match)
    return message


def _field_paths(document, operation):
    """Map each field (and argument) node of ``operation`` to Hasura's path: $.selectionSet.a..."""
    fragments = {definition.name.value: definition for definition in document.definitions
                 if isinstance(definition, graphql.FragmentDefinitionNode)}
    paths = {}

    def walk(selection_set, prefix, seen):
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, graphql.FieldNode):
                path = f'{prefix}.selectionSet.{(selection.alias or selection.name).value}'
                paths[id(selection)] = path
                for argument in selection.arguments or ():
                    paths[id(argument)] = path
                walk(selection.selection_set, path, seen)
            elif isinstance(selection, graphql.InlineFragmentNode):
                walk(selection.selection_set, prefix, seen)
            elif selection.name.value in fragments and selection.name.value not in seen:
                walk(fragments[selection.name.value].selection_set, prefix, seen | {selection.name.value})

    walk(operation.selection_set, '$', frozenset())
    return paths


def validation_error(error, document, operation):
    paths = _field_paths(document, operation) if operation is not None else {}
    path = next((paths[id(node)] for node in error.nodes or () if id(node) in paths), '$')
    return HasuraError(hasura_message(error.message), 'validation-failed', path)


def select_operation(document, operation_name):
    """The operation to run, or a HasuraError as Hasura words it."""
    operations = [definition for definition in document.definitions
                  if isinstance(definition, graphql.OperationDefinitionNode)]
    if operation_name:
        for operation in operations:
            if operation.name and operation.name.value == operation_name:
                return operation
        raise HasuraError(f'no such operation found in the document: "{operation_name}"', 'validation-failed')
    if len(operations) != 1:
        raise HasuraError('exactly one operation has to be present in the document when operationName '
                          'is not specified', 'validation-failed')
    return operations[0]


async def execute(schema, document, operation, variables, context):
    """Run a validated operation; ``(response document, first error code or None)``."""
    errors = graphql.validate(schema, document)
    if errors:
        error = validation_error(errors[0], document, operation)
        return error_response(error), error.code
    result = graphql.execute(schema, document, variable_values=variables,
                             operation_name=operation.name.value if operation.name else None,
                             context_value=context)
    if inspect.isawaitable(result):
        result = await result
    if result.errors:
        translated = []
        for error in result.errors:
            original = error.original_error
            if isinstance(original, HasuraError):
                translated.append(original)
            elif original is None or isinstance(original, graphql.GraphQLError):
                # Variable values that do not fit their declared types.
                translated.append(HasuraError(hasura_message(error.message), 'validation-failed'))
            else:
                # A bug in this server: show it on stderr (no locals, so no secrets).
                traceback.print_exception(type(original), original, original.__traceback__, file=sys.stderr)
                translated.append(HasuraError('unexpected error: ' + type(original).__name__, 'unexpected'))
        return error_response(*translated), translated[0].code
    return {'data': result.data}, None
