"""Test control routes of an instance, under ``/_test/`` (never GitLab paths, never logged).

Errors answer 400 ``{"error": "..."}`` and change nothing.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re

from aiohttp import web

from gitlab_server import api, hooks, model

PREFIX = '/_test/'
# The InstanceServer (gitlab_server.instance) that owns this application.
SERVER = web.AppKey('server', object)
FAULT_KINDS = ('status', 'html200', 'delay', 'drop', 'rate_limit')


@dataclasses.dataclass
class Fault:
    """The next ``count`` GitLab requests matching ``method`` and the ``path`` regex misbehave."""

    kind: str
    count: int = 1
    method: str | None = None
    path: str | None = None
    status: int = 500
    seconds: float = 5.0
    retry_after: int = 1

    def matches(self, request):
        if self.method and self.method.upper() != request.method:
            return False
        return not self.path or re.search(self.path, request.rel_url.raw_path) is not None

    def describe(self):
        return dataclasses.asdict(self)


class ControlError(Exception):
    """A bad control request: answered 400 with the message."""


def reply(body, status=200):
    return web.json_response(body, status=status)


async def read_body(request):
    if not request.body_exists:
        return {}
    try:
        body = await request.json()
    except json.JSONDecodeError as exc:
        raise ControlError(f'the body is not JSON: {exc}') from exc
    if not isinstance(body, dict):
        raise ControlError('the body must be a JSON object')
    return body


def control_route(handler):
    async def wrapped(request):
        try:
            return await handler(request)
        except (ControlError, ValueError, KeyError, TypeError) as exc:
            return reply({'error': str(exc)}, status=400)
    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def server_of(request):
    return request.app[SERVER]


# ---------------------------------------------------------------------------- seed
def token_record(state, token):
    """A token as tests see it: everything but the secret."""
    resource = state.resource_of(token)
    return {
        'id': token.id, 'kind': token.kind, 'name': token.name, 'description': token.description,
        'scopes': list(token.scopes), 'user_id': token.user_id,
        'username': state.users[token.user_id].username,
        'expires_at': api.date_text(token.expires_at), 'revoked': token.revoked,
        'active': token.active(state.clock.today()),
        'created_at': model.iso_timestamp(token.created_at),
        'last_used_at': model.iso_timestamp(token.last_used_at),
        'previous_id': token.previous_id, 'resource_type': token.resource_type,
        'resource_id': token.resource_id, 'resource_path': resource.full_path if resource else None,
        'access_level': state.token_access_level(token),
    }


def need(item, key, what):
    if key not in item:
        raise ControlError(f'{what} needs "{key}": {json.dumps(item)}')
    return item[key]


def seed_user(state, item):
    user = state.add_user(need(item, 'username', 'a user'), name=item.get('name'),
                          admin=bool(item.get('admin', False)), email=item.get('email'))
    return dict(item, id=user.id)


def seed_member(state, item):
    user = state.find_user_by_username(need(item, 'username', 'a member'))
    if user is None:
        raise ControlError(f'member: no user {item["username"]!r}')
    source = resolve_seed_source(state, item)
    expires_at = item.get('expires_at')
    state.add_member(user, source, int(item.get('access_level', model.DEVELOPER)),
                     dt.date.fromisoformat(expires_at) if expires_at else None)
    return dict(item, user_id=user.id, source_id=source.id)


def seed_service_account(state, item):
    """A service account of the instance, a top-level group (made if missing) or a project."""
    unknown = set(item) - {'username', 'name', 'email', 'group', 'project'}
    if unknown:
        raise ControlError(f'unknown service account fields {sorted(unknown)}')
    if 'group' in item and 'project' in item:
        raise ControlError(f'a service account belongs to a group or a project, not both: {json.dumps(item)}')
    owner = {}
    if 'group' in item:
        if '/' in item['group'].strip('/'):
            raise ControlError(f'service account: {item["group"]!r} is a subgroup; GitLab 18.x provisions '
                               'group service accounts in top-level groups only')
        owner['group'] = state.ensure_group(item['group'])
    if 'project' in item:
        owner['project'] = resolve_seed_source(state, {'project': item['project']})
    user = state.create_service_account(
        name=item.get('name'), username=item.get('username'), email=item.get('email'), **owner)
    return dict(item, id=user.id, username=user.username, email=user.email)


def resolve_seed_source(state, item):
    if 'project' in item:
        source = state.find_project_by_path(item['project'])
        if source is None:
            raise ControlError(f'no project {item["project"]!r}')
        return source
    if 'group' in item:
        source = state.find_group_by_path(item['group'])
        if source is None:
            raise ControlError(f'no group {item["group"]!r}')
        return source
    raise ControlError(f'needs "project" or "group": {json.dumps(item)}')


def seed_expiry(state, item, user=None):
    if 'expires_in_days' in item:
        return state.clock.today() + dt.timedelta(days=int(item['expires_in_days']))
    if 'expires_at' in item:
        value = item['expires_at']
        return None if value is None else dt.date.fromisoformat(value)
    if user is not None:
        return state.creation_expiry(user)
    return state.default_expiry(state.settings.max_lifetime_days)


def seed_token(state, item):
    kind = need(item, 'kind', 'a token')
    name = need(item, 'name', 'a token')
    scopes = item.get('scopes') or (['api', 'read_user'] if kind == 'personal' else ['api'])
    created_at = state.clock.now() - dt.timedelta(days=int(item.get('created_days_ago', 0)))
    if kind == 'personal':
        user = state.find_user_by_username(need(item, 'user', 'a personal token'))
        if user is None:
            raise ControlError(f'token {name!r}: no user {item["user"]!r}')
        expires_at = seed_expiry(state, item, user)
        token = state.add_token('personal', user, name, scopes, expires_at, item.get('description'),
                                created_at=created_at)
    elif kind in ('project', 'group'):
        resource = resolve_seed_source(state, {kind: need(item, kind, f'a {kind} token')})
        expires_at = seed_expiry(state, item)
        bot = state.add_bot_user(resource, name)
        state.add_member(bot, resource, int(item.get('access_level', model.MAINTAINER)))
        token = state.add_token(kind, bot, name, scopes, expires_at, item.get('description'),
                                resource=resource, created_at=created_at)
    else:
        raise ControlError(f'token kind must be personal, project or group, not {kind!r}')
    token.revoked = bool(item.get('revoked', False))
    if 'last_used_days_ago' in item:
        token.last_used_at = state.clock.now() - dt.timedelta(days=int(item['last_used_days_ago']))
    return dict(item, id=token.id, token=token.secret, user_id=token.user_id,
                expires_at=api.date_text(token.expires_at))


def seed_extended_setting(item, name):
    """The extended expiry-webhook setting a seeded project/group item names (None: left as is)."""
    value = item.get(name)
    if value is not None and not isinstance(value, bool):
        raise ControlError(f'{name} must be true or false')
    return value


def seed_group(state, item):
    extended = seed_extended_setting(item, hooks.GROUP_SETTING)
    group = state.ensure_group(need(item, 'path', 'a group'))
    if extended is not None:
        group.extended_expiry_webhooks = extended
    return dict(item, id=group.id)


def seed_project(state, item):
    extended = seed_extended_setting(item, hooks.PROJECT_SETTING)
    project = state.add_project(need(item, 'path', 'a project'))
    project.extended_expiry_webhooks = bool(extended)
    return dict(item, id=project.id)


SEED_LISTS = ('users', 'groups', 'projects', 'service_accounts', 'members', 'tokens')


def seed_document(state, body):
    """Add users, groups, projects, service accounts, memberships and tokens, in that order; all or nothing."""
    if not isinstance(body, dict):
        raise ControlError('a seed document is a JSON object')
    unknown = set(body) - set(SEED_LISTS)
    if unknown:
        raise ControlError(f'unknown seed lists: {sorted(unknown)}')
    saved = state.snapshot()
    try:
        return {
            'users': [seed_user(state, item) for item in body.get('users', [])],
            'groups': [seed_group(state, item) for item in body.get('groups', [])],
            'projects': [seed_project(state, item) for item in body.get('projects', [])],
            'service_accounts': [seed_service_account(state, item)
                                 for item in body.get('service_accounts', [])],
            'members': [seed_member(state, item) for item in body.get('members', [])],
            'tokens': [seed_token(state, item) for item in body.get('tokens', [])],
        }
    except Exception:
        state.restore(saved)
        raise


@control_route
async def seed(request):
    return reply(seed_document(server_of(request).state, await read_body(request)))


# ------------------------------------------------------------------ clock, settings
@control_route
async def get_clock(request):
    return reply({'now': model.iso_timestamp(server_of(request).state.clock.now())})


@control_route
async def set_clock(request):
    """``{"advance_days": N}`` or ``{"now": "2027-01-01T00:00:00Z"}``; answers once the expiry
    worker's webhook deliveries for the days crossed have all finished."""
    server = server_of(request)
    clock = server.state.clock
    old_today = clock.today()
    body = await read_body(request)
    if 'now' in body:
        moment = api.parse_datetime(body['now'])
        if moment is None:
            raise ControlError(f'"now" is not an ISO 8601 timestamp: {body["now"]!r}')
        clock.set(moment)
    elif 'advance_days' in body:
        clock.advance(float(body['advance_days']))
    else:
        raise ControlError('give "advance_days" or "now"')
    await hooks.clock_moved(server, old_today)
    return reply({'now': model.iso_timestamp(clock.now())})


@control_route
async def get_settings(request):
    return reply(dataclasses.asdict(server_of(request).state.settings))


@control_route
async def set_settings(request):
    settings = server_of(request).state.settings
    body = await read_body(request)
    fields = {f.name: f.type for f in dataclasses.fields(settings)}
    unknown = set(body) - set(fields)
    if unknown:
        raise ControlError(f'unknown settings {sorted(unknown)}; known: {sorted(fields)}')
    if 'max_lifetime_days' in body and not (isinstance(body['max_lifetime_days'], int)
                                            and body['max_lifetime_days'] > 0):
        raise ControlError('max_lifetime_days must be a positive integer')
    for flag in ('require_expiry', 'allow_top_level_group_owners_to_create_service_accounts',
                 'service_access_tokens_expiration_enforced', 'project_service_accounts'):
        if flag in body and not isinstance(body[flag], bool):
            raise ControlError(f'{flag} must be true or false')
    if 'tier' in body and body['tier'] not in model.TIERS:
        raise ControlError(f'tier must be one of {list(model.TIERS)}, not {body["tier"]!r}')
    seats = body.get('licensed_seats')
    if seats is not None and not (isinstance(seats, int) and not isinstance(seats, bool) and seats >= 0):
        raise ControlError('licensed_seats must be null (no limit) or a whole number >= 0')
    for key, value in body.items():
        setattr(settings, key, value)
    return reply(dataclasses.asdict(settings))


# -------------------------------------------------------------------------- faults
@control_route
async def add_fault(request):
    body = await read_body(request)
    kind = body.get('kind')
    if kind not in FAULT_KINDS:
        raise ControlError(f'fault "kind" must be one of {list(FAULT_KINDS)}, not {kind!r}')
    unknown = set(body) - {f.name for f in dataclasses.fields(Fault)}
    if unknown:
        raise ControlError(f'unknown fault fields {sorted(unknown)}')
    fault = Fault(**{k: v for k, v in body.items() if v is not None})
    if fault.path:
        try:
            re.compile(fault.path)
        except re.error as exc:
            raise ControlError(f'"path" is not a regular expression: {exc}') from exc
    if fault.count < 1:
        raise ControlError('"count" must be at least 1')
    if kind == 'status' and not 400 <= int(fault.status) <= 599:
        raise ControlError('"status" must be an HTTP error status (400-599)')
    server = server_of(request)
    server.faults.append(fault)
    return reply([f.describe() for f in server.faults])


@control_route
async def list_faults(request):
    return reply([f.describe() for f in server_of(request).faults])


@control_route
async def clear_faults(request):
    server_of(request).faults.clear()
    return reply([])


# ------------------------------------------------------------------ observations
@control_route
async def list_requests(request):
    return reply(server_of(request).log)


@control_route
async def clear_requests(request):
    server_of(request).log.clear()
    return reply([])


@control_route
async def list_hook_deliveries(request):
    return reply(server_of(request).hook_deliveries)


@control_route
async def clear_hook_deliveries(request):
    server_of(request).hook_deliveries.clear()
    return reply([])


@control_route
async def run_expiry_worker(request):
    """The daily expiry worker for today only; answers its delivery records."""
    return reply(await hooks.run_today(server_of(request)))


@control_route
async def list_secrets(request):
    return reply(list(server_of(request).state.issued_secrets))


@control_route
async def list_tokens(request):
    state = server_of(request).state
    return reply([token_record(state, t) for t in sorted(state.tokens.values(), key=lambda t: t.id)])


def user_record(user):
    """A user as tests see it."""
    return {
        'id': user.id, 'username': user.username, 'name': user.name, 'email': user.email,
        'user_type': user.user_type, 'admin': user.admin, 'bot': user.bot, 'external': user.external,
        'provisioned_by_group_id': user.provisioned_by_group_id,
        'provisioned_by_project_id': user.provisioned_by_project_id,
    }


def member_record(state, key, membership):
    kind, source_id, user_id = key
    source = (state.projects if kind == 'project' else state.groups)[source_id]
    return {
        'user_id': user_id, 'username': state.users[user_id].username, 'source_type': kind,
        'source_id': source_id, 'source_path': source.full_path, 'access_level': membership.access_level,
        'expires_at': api.date_text(membership.expires_at),
    }


@control_route
async def list_users(request):
    state = server_of(request).state
    return reply([user_record(u) for u in sorted(state.users.values(), key=lambda u: u.id)])


@control_route
async def list_members(request):
    state = server_of(request).state
    return reply([member_record(state, key, membership) for key, membership in sorted(state.members.items(), key=lambda item: item[0])])


@control_route
async def reset(request):
    server = server_of(request)
    server.reset()
    return reply(server.document())


def add_routes(app):
    app.add_routes([
        web.post(PREFIX + 'seed', seed),
        web.get(PREFIX + 'clock', get_clock),
        web.post(PREFIX + 'clock', set_clock),
        web.get(PREFIX + 'settings', get_settings),
        web.post(PREFIX + 'settings', set_settings),
        web.get(PREFIX + 'faults', list_faults),
        web.post(PREFIX + 'faults', add_fault),
        web.delete(PREFIX + 'faults', clear_faults),
        web.get(PREFIX + 'requests', list_requests),
        web.delete(PREFIX + 'requests', clear_requests),
        web.get(PREFIX + 'hook_deliveries', list_hook_deliveries),
        web.delete(PREFIX + 'hook_deliveries', clear_hook_deliveries),
        web.post(PREFIX + 'hooks/run_expiry_worker', run_expiry_worker),
        web.get(PREFIX + 'secrets', list_secrets),
        web.get(PREFIX + 'tokens', list_tokens),
        web.get(PREFIX + 'users', list_users),
        web.get(PREFIX + 'members', list_members),
        web.post(PREFIX + 'reset', reset),
    ])
