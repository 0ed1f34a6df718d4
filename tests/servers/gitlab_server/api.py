"""GitLab REST API v4 routes for access tokens, users, projects, groups and the version.

Each handler declares which token scopes it accepts (``@endpoint``); the middleware in
:mod:`gitlab_server.instance` authenticates the caller before the handler runs, so
handlers receive an authenticated :class:`Caller` in ``request[CALLER]``.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
import urllib.parse

from aiohttp import web

from gitlab_server import model
from gitlab_server.model import ApiError

PREFIX = '/api/v4'
CALLER = web.RequestKey('caller', object)
STATE = web.AppKey('state', model.Instance)

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
# GitLab stops counting (no X-Total, X-Total-Pages, rel="last") above this many records.
COUNT_LIMIT = 10_000
ANY_SCOPE = ('*',)
# Authenticating with a revoked token on these paths revokes the token's descendants.
REUSE_DETECTION_PATH = re.compile(r'access_tokens/(\d+|self)/rotate$')
SORTS = {
    'created_asc': ('created_at', False), 'created_desc': ('created_at', True),
    'expires_asc': ('expires_at', False), 'expires_desc': ('expires_at', True),
    'last_used_asc': ('last_used_at', False), 'last_used_desc': ('last_used_at', True),
    'name_asc': ('name', False), 'name_desc': ('name', True),
}
EXPIRED_DESCRIPTION = 'Token is expired. You can either do re-authorization or token refresh.'
REVOKED_DESCRIPTION = 'Token was revoked. You have to re-authorize from the user.'
SCOPE_DESCRIPTION = 'The request requires higher privileges than provided by the access token.'


@dataclasses.dataclass
class Caller:
    user: model.User
    token: model.Token


@dataclasses.dataclass(frozen=True)
class EndpointSpec:
    """Which scopes a token needs here (None: ``api``, plus ``read_api`` on GET), whether anonymous
    is fine, and for routes that only some GitLab versions have, whether this instance has it."""

    scopes: tuple | None = None
    anonymous: bool = False
    available: object = None

    def exists_on(self, state):
        return self.available is None or self.available(state)

    def allowed_scopes(self, method):
        if self.scopes is not None:
            return self.scopes
        return ('api', 'read_api') if method in ('GET', 'HEAD') else ('api',)


def endpoint(scopes=None, anonymous=False, available=None):
    def decorate(handler):
        handler.gitlab_spec = EndpointSpec(scopes, anonymous, available)
        return handler
    return decorate


def spec_of(handler):
    return getattr(handler, 'gitlab_spec', EndpointSpec())


# ---------------------------------------------------------------------------- responses
def json_response(body, status=200, headers=None):
    return web.Response(
        status=status, headers=headers, content_type='application/json',
        text=json.dumps(body, separators=(',', ':')))


def error_response(error):
    return json_response(error.body, status=error.status, headers=error.headers)


def no_content():
    return web.Response(status=204)


def bearer_challenge(error, description, scope=None):
    parts = ['realm="The API"', f'error="{error}"', f'error_description="{description}"']
    if scope:
        parts.append(f'scope="{scope}"')
    return {'WWW-Authenticate': 'Bearer ' + ', '.join(parts)}


def invalid_token(description):
    return ApiError(401, {'error': 'invalid_token', 'error_description': description},
                    bearer_challenge('invalid_token', description))


def insufficient_scope(scopes):
    scope = ' '.join(scopes)
    return ApiError(403, {'error': 'insufficient_scope', 'error_description': SCOPE_DESCRIPTION,
                          'scope': scope},
                    bearer_challenge('insufficient_scope', SCOPE_DESCRIPTION, scope))


# ------------------------------------------------------------------------ authentication
def presented_secret(request):
    """The token the request carries: PRIVATE-TOKEN, ?private_token=, or a Bearer header."""
    secret = request.headers.get('PRIVATE-TOKEN') or request.query.get('private_token')
    if secret:
        return secret
    scheme, _space, value = request.headers.get('Authorization', '').partition(' ')
    if scheme.lower() == 'bearer' and value.strip():
        return value.strip()
    return None


def authenticate(request, spec):
    """Validate the presented token like GitLab's API guard; None for allowed anonymous calls."""
    state = request.app[STATE]
    secret = presented_secret(request)
    if secret is None:
        if spec.anonymous:
            return None
        raise model.unauthorized()
    token = state.tokens_by_secret.get(secret)
    if token is None:
        raise model.unauthorized()
    # GitLab checks expiry before revocation, and reuse detection only on a revoked token.
    if token.expired(state.clock.today()):
        raise invalid_token(EXPIRED_DESCRIPTION)
    if token.revoked:
        if REUSE_DETECTION_PATH.search(request.path):
            state.revoke_descendants(token)
        raise invalid_token(REVOKED_DESCRIPTION)
    allowed = spec.allowed_scopes(request.method)
    if allowed != ANY_SCOPE and not set(allowed) & set(token.scopes):
        raise insufficient_scope(allowed)
    state.touch(token, request.remote)
    return Caller(state.users[token.user_id], token)


def identify(request):
    """The token a request presents, without validating it (for the request log)."""
    secret = presented_secret(request)
    return request.app[STATE].tokens_by_secret.get(secret) if secret else None


# ----------------------------------------------------------------------- parameters
class Params:
    """Request parameters (query string plus JSON or form body) with Grape-style validation."""

    def __init__(self, values):
        self.values = values
        self.errors = []

    @classmethod
    async def read(cls, request):
        values = {}
        for key in request.query:
            if key == 'private_token':
                continue
            items = request.query.getall(key)
            values[key.removesuffix('[]')] = items if key.endswith('[]') else items[-1]
        if request.body_exists:
            if request.content_type == 'application/json':
                try:
                    body = await request.json()
                except ValueError as exc:
                    raise model.bad_request() from exc
                if isinstance(body, dict):
                    values.update(body)
            else:
                form = await request.post()
                for key in form:
                    items = form.getall(key)
                    values[key.removesuffix('[]')] = items if key.endswith('[]') else items[-1]
        return cls(values)

    def required(self, name):
        if name not in self.values or self.values[name] is None:
            self.errors.append(f'{name} is missing')
            return None
        return self.values[name]

    def string(self, name, required=False):
        value = self.required(name) if required else self.values.get(name)
        if value is None:
            return None
        if isinstance(value, (list, dict)):
            self.errors.append(f'{name} is invalid')
            return None
        return str(value)

    def integer(self, name, choices=None, default=None):
        value = self.values.get(name)
        if value is None or value == '':
            return default
        try:
            number = int(value)
        except (TypeError, ValueError):
            self.errors.append(f'{name} is invalid')
            return None
        if choices is not None and number not in choices:
            self.errors.append(f'{name} does not have a valid value')
            return None
        return number

    def boolean(self, name):
        value = self.values.get(name)
        if value is None or value == '':
            return None
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ('true', '1', 't', 'yes'):
            return True
        if text in ('false', '0', 'f', 'no'):
            return False
        self.errors.append(f'{name} is invalid')
        return None

    def date(self, name):
        value = self.values.get(name)
        if value is None or value == '':
            return None
        parsed = parse_date(value)
        if parsed is None:
            self.errors.append(f'{name} is invalid')
        return parsed

    def datetime(self, name):
        value = self.values.get(name)
        if value is None or value == '':
            return None
        parsed = parse_datetime(value)
        if parsed is None:
            self.errors.append(f'{name} is invalid')
        return parsed

    def choice(self, name, choices):
        value = self.string(name)
        if value is not None and value not in choices:
            self.errors.append(f'{name} does not have a valid value')
            return None
        return value

    def scopes(self, name, choices, required=True):
        value = self.required(name) if required else self.values.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            value = [part.strip() for part in value.split(',') if part.strip()]
        if not isinstance(value, list) or any(not isinstance(v, str) or v not in choices for v in value):
            self.errors.append(f'{name} does not have a valid value')
            return None
        return value

    def check(self):
        if self.errors:
            raise model.param_errors(self.errors)


def parse_date(value):
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value[:10]) if len(value) == 10 else parse_datetime(value).date()
    except (ValueError, AttributeError):
        return None


def parse_datetime(value):
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace('Z', '+00:00'))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=model.UTC)


# ------------------------------------------------------------------------- pagination
def paginate(request, items):
    """One page of items and GitLab's pagination headers, Link URLs built from the request's Host."""
    params = request.query
    try:
        page = max(int(params.get('page', 1)), 1)
    except ValueError as exc:
        raise model.param_errors(['page is invalid']) from exc
    try:
        per_page = int(params.get('per_page', DEFAULT_PER_PAGE))
    except ValueError as exc:
        raise model.param_errors(['per_page is invalid']) from exc
    per_page = DEFAULT_PER_PAGE if per_page < 1 else min(per_page, MAX_PER_PAGE)
    total = len(items)
    total_pages = max(math.ceil(total / per_page), 1)
    chunk = items[(page - 1) * per_page: page * per_page]
    next_page = page + 1 if page < total_pages else None
    prev_page = page - 1 if page > 1 else None
    counted = total <= COUNT_LIMIT
    headers = {
        'X-Per-Page': str(per_page), 'X-Page': str(page),
        'X-Next-Page': str(next_page or ''), 'X-Prev-Page': str(prev_page or ''),
    }
    if counted:
        headers['X-Total'] = str(total)
        headers['X-Total-Pages'] = str(total_pages)
    links = []
    if prev_page:
        links.append(f'<{page_url(request, prev_page, per_page)}>; rel="prev"')
    if next_page:
        links.append(f'<{page_url(request, next_page, per_page)}>; rel="next"')
    links.append(f'<{page_url(request, 1, per_page)}>; rel="first"')
    if counted:
        links.append(f'<{page_url(request, total_pages, per_page)}>; rel="last"')
    headers['Link'] = ', '.join(links)
    return chunk, headers


def page_url(request, page, per_page):
    # The token never goes into a Link URL: clients re-send their own credentials.
    query = [(k, v) for k, v in request.query.items() if k not in ('page', 'per_page', 'private_token')]
    query += [('page', str(page)), ('per_page', str(per_page))]
    return f'{request.scheme}://{request.host}{request.rel_url.raw_path}?{urllib.parse.urlencode(query)}'


# --------------------------------------------------------------------------- entities
def date_text(value):
    return value.isoformat() if value else None


def token_entity(state, token, secret=False, last_used_ips=False):
    body = {
        'id': token.id, 'name': token.name, 'revoked': token.revoked,
        'created_at': model.iso_timestamp(token.created_at), 'description': token.description,
        'scopes': list(token.scopes), 'user_id': token.user_id,
        'last_used_at': model.iso_timestamp(token.last_used_at),
        'active': token.active(state.clock.today()), 'expires_at': date_text(token.expires_at),
    }
    if last_used_ips:
        body['last_used_ips'] = list(token.last_used_ips)
    if secret:
        body['token'] = token.secret
    return body


def resource_token_entity(state, token, secret=False):
    body = token_entity(state, token, last_used_ips=True)
    body['access_level'] = state.token_access_level(token)
    body['resource_type'] = token.resource_type
    body['resource_id'] = token.resource_id
    if secret:
        body['token'] = token.secret
    return body


def base_url(request):
    return f'{request.scheme}://{request.host}'


def user_basic(request, user):
    return {
        'id': user.id, 'username': user.username, 'name': user.name, 'state': 'active',
        'locked': False, 'avatar_url': f'{base_url(request)}/uploads/-/system/user/avatar/{user.id}/avatar.png',
        'web_url': f'{base_url(request)}/{user.username}',
    }


def current_user_entity(request, user):
    body = user_basic(request, user)
    created = model.iso_timestamp(user.created_at)
    body.update({
        'created_at': created, 'bio': '', 'location': '', 'public_email': '', 'linkedin': '',
        'twitter': '', 'discord': '', 'website_url': '', 'github': '', 'job_title': '',
        'organization': '', 'bot': user.bot, 'confirmed_at': created, 'email': user.email,
        'theme_id': 3, 'color_scheme_id': 1, 'projects_limit': 100000,
        'can_create_group': not (user.bot or user.external),
        'can_create_project': not (user.bot or user.external),
        'two_factor_enabled': False, 'external': user.external, 'private_profile': False,
        'commit_email': user.email,
    })
    if user.admin:
        body['is_admin'] = True
    return body


def namespace_entity(request, state, project):
    if project.group_id:
        group = state.groups[project.group_id]
        return {'id': group.id, 'name': group.name, 'path': group.path, 'kind': 'group',
                'full_path': group.full_path, 'parent_id': group.parent_id,
                'web_url': f'{base_url(request)}/groups/{group.full_path}'}
    owner = state.users[project.owner_id]
    return {'id': owner.namespace_id, 'name': owner.name, 'path': owner.username, 'kind': 'user',
            'full_path': owner.username, 'parent_id': None, 'web_url': f'{base_url(request)}/{owner.username}'}


def project_entity(request, state, project, user):
    namespace = namespace_entity(request, state, project)
    direct = state.direct_access(user, project) if user else 0
    inherited = state.inherited_group_access(user, project.group_id) if user and project.group_id else 0
    return {
        'id': project.id, 'description': None, 'name': project.name,
        'name_with_namespace': ' / '.join(project.full_path.split('/')),
        'path': project.path, 'path_with_namespace': project.full_path,
        'created_at': model.iso_timestamp(project.created_at), 'default_branch': 'main',
        'visibility': 'private', 'web_url': f'{base_url(request)}/{project.full_path}',
        'namespace': namespace,
        'extended_prat_expiry_webhook_execute': project.extended_expiry_webhooks,
        'permissions': {
            'project_access': {'access_level': direct, 'notification_level': 3} if direct else None,
            'group_access': {'access_level': inherited, 'notification_level': 3} if inherited else None,
        },
    }


def group_entity(request, group):
    return {
        'id': group.id, 'web_url': f'{base_url(request)}/groups/{group.full_path}', 'name': group.name,
        'path': group.path, 'description': '', 'visibility': 'private',
        'full_name': ' / '.join(group.full_path.split('/')), 'full_path': group.full_path,
        'parent_id': group.parent_id, 'created_at': model.iso_timestamp(group.created_at),
        'extended_grat_expiry_webhook_execute': group.extended_expiry_webhooks,
    }


# ------------------------------------------------------------------- token filtering
def token_filters(params):
    """Parse the list filters shared by personal, project and group token lists."""
    filters = {
        'revoked': params.boolean('revoked'),
        'state': params.choice('state', ('active', 'inactive')),
        'created_before': params.datetime('created_before'),
        'created_after': params.datetime('created_after'),
        'last_used_before': params.datetime('last_used_before'),
        'last_used_after': params.datetime('last_used_after'),
        'expires_before': params.date('expires_before'),
        'expires_after': params.date('expires_after'),
        'search': params.string('search'),
        'sort': params.string('sort'),
    }
    return filters


def name_matches(name, query):
    """GitLab's fuzzy name search: every word of 3+ characters must appear; else an exact match."""
    words = [w for w in query.lower().split() if len(w) >= 3]
    if not words:
        return name.lower() == query.strip().lower()
    return all(word in name.lower() for word in words)


def filter_tokens(tokens, filters, today):
    def keep(token):
        if filters['revoked'] is not None and token.revoked != filters['revoked']:
            return False
        if filters['state'] == 'active' and not (
                not token.revoked and (token.expires_at is None or token.expires_at > today)):
            return False
        if filters['state'] == 'inactive' and not (
                token.revoked or (token.expires_at is not None and token.expires_at < today)):
            return False
        checks = (
            ('created_before', token.created_at, lambda v, f: v <= f),
            ('created_after', token.created_at, lambda v, f: v >= f),
            ('last_used_before', token.last_used_at, lambda v, f: v <= f),
            ('last_used_after', token.last_used_at, lambda v, f: v >= f),
            ('expires_before', token.expires_at, lambda v, f: v < f),
            ('expires_after', token.expires_at, lambda v, f: v >= f),
        )
        for key, value, accepts in checks:
            if filters[key] is not None and (value is None or not accepts(value, filters[key])):
                return False
        return filters['search'] is None or name_matches(token.name, filters['search'])

    kept = sorted((t for t in tokens if keep(t)), key=lambda t: t.id)
    if filters['sort'] in SORTS:
        attribute, descending = SORTS[filters['sort']]
        with_value = [t for t in kept if getattr(t, attribute) is not None]
        without_value = [t for t in kept if getattr(t, attribute) is None]
        with_value.sort(key=lambda t: getattr(t, attribute), reverse=descending)
        kept = with_value + without_value
    return kept


# ------------------------------------------------------------------------ lookups
def find_source(request, kind, ref, caller):
    """``find_project!``/``find_group!``: 404 when missing or invisible to the caller."""
    state = request.app[STATE]
    source = state.resolve_source(kind, ref)
    if source is None or caller is None or not state.can_read(caller.user, source):
        raise model.not_found(kind.capitalize())
    return source


def find_resource_token(state, resource, token_id):
    if not str(token_id).isdigit():
        return None
    token = state.tokens.get(int(token_id))
    if token is None or token.resource_type != model.source_kind(resource) or token.resource_id != resource.id:
        return None
    return token


def owns_or_admin(caller, user):
    return user is not None and (caller.user.admin or caller.user.id == user.id)


# --------------------------------------------------------------------- handlers
@endpoint(scopes=('api', 'read_api', 'read_user'))
async def get_current_user(request):
    return json_response(current_user_entity(request, request[CALLER].user))


@endpoint(scopes=('api', 'read_api', 'read_user'), anonymous=True)
async def list_users(request):
    state = request.app[STATE]
    username = request.query.get('username')
    users = sorted(state.users.values(), key=lambda u: u.id)
    if username is not None:
        users = [u for u in users if u.username.lower() == username.lower()]
    page, headers = paginate(request, users)
    return json_response([user_basic(request, u) for u in page], headers=headers)


@endpoint(scopes=('api', 'read_api', 'read_user', 'ai_features'))
async def get_version(request):
    settings = request.app[STATE].settings
    return json_response({
        'version': settings.version, 'revision': settings.revision,
        'kas': {'enabled': False, 'externalUrl': None, 'externalK8sProxyUrl': None, 'version': None},
        'enterprise': settings.version.endswith('-ee'),
    })


async def get_project(request):
    caller = request[CALLER]
    project = find_source(request, 'project', request.match_info['id'], caller)
    return json_response(project_entity(request, request.app[STATE], project, caller.user))


async def get_group(request):
    group = find_source(request, 'group', request.match_info['id'], request[CALLER])
    return json_response(group_entity(request, group))


async def list_personal_tokens(request):
    state, caller = request.app[STATE], request[CALLER]
    raw_user_id = request.query.get('user_id')
    if not caller.user.admin and raw_user_id not in (None, ''):
        # restrict_non_admins! runs before parameter validation.
        if not raw_user_id.isdigit() or int(raw_user_id) != caller.user.id:
            raise model.unauthorized()
    params = await Params.read(request)
    user_id = params.integer('user_id')
    filters = token_filters(params)
    params.check()
    if caller.user.admin:
        if 'user_id' in params.values:
            if user_id is None or user_id not in state.users:
                raise model.not_found()
            tokens = [t for t in state.tokens.values() if t.user_id == user_id]
        else:
            tokens = list(state.tokens.values())
    else:
        tokens = [t for t in state.tokens.values() if t.user_id == caller.user.id]
    page, headers = paginate(request, filter_tokens(tokens, filters, state.clock.today()))
    return json_response([token_entity(state, t) for t in page], headers=headers)


def personal_token_by_id(request):
    token_id = request.match_info['token_id']
    return request.app[STATE].tokens.get(int(token_id)) if token_id.isdigit() else None


async def get_personal_token(request):
    state, caller = request.app[STATE], request[CALLER]
    token = personal_token_by_id(request)
    if token is None or not owns_or_admin(caller, state.users[token.user_id]):
        raise model.not_found() if caller.user.admin else model.unauthorized()
    return json_response(token_entity(state, token, last_used_ips=True))


async def rotate_personal_token(request):
    state, caller = request.app[STATE], request[CALLER]
    params = await Params.read(request)
    expires_at = params.date('expires_at')
    params.check()
    token = personal_token_by_id(request)
    if token is None or not owns_or_admin(caller, state.users[token.user_id]):
        raise model.not_found() if caller.user.admin else model.unauthorized()
    new_token = state.rotate(token, caller.user, expires_at)
    return json_response(token_entity(state, new_token, secret=True))


async def revoke_personal_token(request):
    state, caller = request.app[STATE], request[CALLER]
    token = personal_token_by_id(request)
    if token is None:
        raise model.record_not_found()
    if not owns_or_admin(caller, state.users[token.user_id]):
        raise model.bad_request()
    token.revoked = True
    return no_content()


@endpoint(scopes=ANY_SCOPE)
async def get_self_token(request):
    state = request.app[STATE]
    return json_response(token_entity(state, request[CALLER].token, last_used_ips=True))


@endpoint(scopes=ANY_SCOPE)
async def revoke_self_token(request):
    request[CALLER].token.revoked = True
    return no_content()


@endpoint(scopes=('api', 'self_rotate'))
async def rotate_self_token(request):
    state, caller = request.app[STATE], request[CALLER]
    params = await Params.read(request)
    expires_at = params.date('expires_at')
    params.check()
    new_token = state.rotate(caller.token, caller.user, expires_at)
    return json_response(token_entity(state, new_token, secret=True))


@endpoint(scopes=ANY_SCOPE)
async def list_self_associations(request):
    state, caller = request.app[STATE], request[CALLER]
    params = await Params.read(request)
    minimum = params.integer('min_access_level', choices=(10, 15, 20, 25, 30, 40, 50), default=0)
    params.check()
    user = caller.user
    floor = max(minimum, 1)
    groups = [g for g in sorted(state.groups.values(), key=lambda g: g.id)
              if state.member_access_level(user, g) >= floor]
    projects = [p for p in sorted(state.projects.values(), key=lambda p: p.id)
                if state.member_access_level(user, p) >= floor]
    group_page, headers = paginate(request, groups)
    project_page = paginate(request, projects)[0]
    return json_response({
        'groups': [dict(group_entity(request, g), access_levels=state.member_access_level(user, g))
                   for g in group_page],
        'projects': [dict(project_entity(request, state, p, user),
                          access_levels={'project_access_level': state.direct_access(user, p) or None,
                                         'group_access_level': state.inherited_group_access(user, p.group_id)
                                         if p.group_id else None})
                     for p in project_page],
    }, headers=headers)


async def create_personal_token_for_user(request):
    caller = request[CALLER]
    if not caller.user.admin:
        raise model.forbidden()
    attributes = await personal_token_params(request, model.PERSONAL_TOKEN_SCOPES)
    user = request.app[STATE].users.get(int(request.match_info['user_id']))
    if user is None:
        raise model.not_found('User')
    return issue_personal_token(request, user, attributes)


async def create_own_personal_token(request):
    attributes = await personal_token_params(request, model.SELF_SERVICE_SCOPES)
    return issue_personal_token(request, request[CALLER].user, attributes)


async def personal_token_params(request, allowed_scopes):
    """Validated create parameters; an omitted expiry is None and filled in later."""
    params = await Params.read(request)
    attributes = {
        'name': params.string('name', required=True),
        'description': params.string('description'),
        'expires_at': params.date('expires_at'),
        'scopes': params.scopes('scopes', allowed_scopes),
    }
    params.check()
    return attributes


def issue_personal_token(request, user, attributes):
    """PersonalAccessTokens::CreateService: model errors are 422 on these endpoints."""
    state = request.app[STATE]
    expires_at = attributes['expires_at'] or state.creation_expiry(user)
    errors = state.token_model_errors(attributes['name'], attributes['description'], expires_at,
                                      attributes['scopes'], state.expiry_required(user))
    if errors:
        raise model.error_message(422, model.to_sentence(errors))
    token = state.add_token('personal', user, attributes['name'], attributes['scopes'], expires_at,
                            attributes['description'])
    return json_response(token_entity(state, token, secret=True), status=201)


def resource_handlers(kind):
    """The five access-token endpoints of projects or groups, plus self-rotation."""

    def token_not_found():
        return model.not_found(f'{kind} Access Token')

    async def list_tokens(request):
        state, caller = request.app[STATE], request[CALLER]
        params = await Params.read(request)
        filters = token_filters(params)
        params.check()
        resource = find_source(request, kind, request.match_info['id'], caller)
        if state.access_level(caller.user, resource) < model.manage_level(kind):
            raise model.unauthorized()
        tokens = filter_tokens(state.resource_tokens(resource), filters, state.clock.today())
        page, headers = paginate(request, tokens)
        return json_response([resource_token_entity(state, t) for t in page], headers=headers)

    async def get_token(request):
        state, caller = request.app[STATE], request[CALLER]
        resource = find_source(request, kind, request.match_info['id'], caller)
        if state.access_level(caller.user, resource) < model.manage_level(kind):
            raise model.unauthorized()
        token = find_resource_token(state, resource, request.match_info['token_id'])
        if token is None:
            raise token_not_found()
        return json_response(resource_token_entity(state, token))

    async def revoke_token(request):
        state, caller = request.app[STATE], request[CALLER]
        resource = find_source(request, kind, request.match_info['id'], caller)
        token = find_resource_token(state, resource, request.match_info['token_id'])
        if token is None:
            raise token_not_found()
        if state.access_level(caller.user, resource) < model.manage_level(kind):
            raise model.bad_request(f'{caller.user.name} cannot delete {state.users[token.user_id].name}')
        token.revoked = True
        return no_content()

    async def create_token(request):
        state, caller = request.app[STATE], request[CALLER]
        params = await Params.read(request)
        name = params.string('name', required=True)
        description = params.string('description')
        expires_at = params.date('expires_at')
        scopes = params.scopes('scopes', model.RESOURCE_TOKEN_SCOPES)
        access_level = params.integer('access_level', choices=model.ACCESS_LEVELS, default=model.MAINTAINER)
        params.check()
        resource = find_source(request, kind, request.match_info['id'], caller)
        token = state.create_resource_token(
            resource, caller.user, name, scopes, expires_at, description, access_level)
        return json_response(resource_token_entity(state, token, secret=True), status=201)

    async def rotate_token(request):
        state, caller = request.app[STATE], request[CALLER]
        params = await Params.read(request)
        expires_at = params.date('expires_at')
        params.check()
        resource = find_source(request, kind, request.match_info['id'], caller)
        token = None
        if state.access_level(caller.user, resource) >= model.manage_level(kind):
            token = find_resource_token(state, resource, request.match_info['token_id'])
        if token is None:
            # Only administrators learn whether the token exists.
            raise model.not_found() if caller.user.admin else model.unauthorized()
        new_token = state.rotate(token, caller.user, expires_at, check_role=True)
        return json_response(resource_token_entity(state, new_token, secret=True))

    @endpoint(scopes=('api', 'self_rotate'))
    async def rotate_self(request):
        state, caller = request.app[STATE], request[CALLER]
        params = await Params.read(request)
        expires_at = params.date('expires_at')
        params.check()
        if not caller.user.project_bot:
            raise model.method_not_allowed()
        resource = find_source(request, kind, request.match_info['id'], caller)
        token = find_resource_token(state, resource, caller.token.id)
        if token is None:
            raise model.unauthorized()
        new_token = state.rotate(token, caller.user, expires_at)
        return json_response(resource_token_entity(state, new_token, secret=True))

    return list_tokens, get_token, revoke_token, create_token, rotate_token, rotate_self


def add_routes(app):
    """Register every modelled GitLab route; ``self`` routes come before their ``{id}`` siblings."""
    routes = [
        web.get(PREFIX + '/user', get_current_user),
        web.post(PREFIX + '/user/personal_access_tokens', create_own_personal_token),
        web.get(PREFIX + '/users', list_users),
        web.post(PREFIX + r'/users/{user_id:\d+}/personal_access_tokens', create_personal_token_for_user),
        web.get(PREFIX + '/version', get_version),
        web.get(PREFIX + '/personal_access_tokens', list_personal_tokens),
        web.get(PREFIX + '/personal_access_tokens/self', get_self_token),
        web.delete(PREFIX + '/personal_access_tokens/self', revoke_self_token),
        web.get(PREFIX + '/personal_access_tokens/self/associations', list_self_associations),
        web.post(PREFIX + '/personal_access_tokens/self/rotate', rotate_self_token),
        web.get(PREFIX + '/personal_access_tokens/{token_id}', get_personal_token),
        web.delete(PREFIX + '/personal_access_tokens/{token_id}', revoke_personal_token),
        web.post(PREFIX + '/personal_access_tokens/{token_id}/rotate', rotate_personal_token),
        web.get(PREFIX + '/projects/{id}', get_project),
        web.get(PREFIX + '/groups/{id}', get_group),
    ]
    for kind in ('project', 'group'):
        list_tokens, get_token, revoke_token, create_token, rotate_token, rotate_self = resource_handlers(kind)
        base = f'{PREFIX}/{kind}s/{{id}}/access_tokens'
        routes += [
            web.get(base, list_tokens),
            web.post(base, create_token),
            web.post(base + '/self/rotate', rotate_self),
            web.get(base + '/{token_id}', get_token),
            web.delete(base + '/{token_id}', revoke_token),
            web.post(base + '/{token_id}/rotate', rotate_token),
        ]
    app.add_routes(routes)
