"""Project and group webhooks, the project/group settings PUT routes, and the expiry worker's
access-token events.

Hooks are managed through GitLab's hooks API (``/projects/:id/hooks``, ``/groups/:id/hooks``).
When an instance's clock moves forward (or a test runs the worker), every calendar day crossed
runs GitLab's daily expiry worker: project and group access tokens 7 days (60, 30 and 7 with
the extended setting) before expiry send one ``Resource Access Token Hook`` event to the hooks
with ``resource_access_token_events`` on their project or group and the groups above it. All
deliveries of one clock move run concurrently, each with GitLab's 10 s timeout; the clock
request answers once they have all finished. Failures are recorded in the instance's delivery
log (``GET /_test/hook_deliveries``), never raised.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid

import aiohttp
from aiohttp import web

from gitlab_server import model
from gitlab_server.api import (
    CALLER, PREFIX, STATE, Params, find_source, group_entity, json_response, no_content, paginate,
    project_entity)

DELIVERY_TIMEOUT = 10.0
EVENT_HEADER = 'Resource Access Token Hook'
REDACTED_TOKEN = '[hook token]'
# Trigger flags GitLab's hooks API takes besides access-token events, with GitLab's defaults.
OTHER_FLAGS = {
    'push_events': True, 'issues_events': False, 'confidential_issues_events': False,
    'merge_requests_events': False, 'tag_push_events': False, 'note_events': False,
    'confidential_note_events': False, 'job_events': False, 'pipeline_events': False,
    'wiki_page_events': False, 'deployment_events': False, 'releases_events': False,
    'subgroup_events': False, 'member_events': False, 'emoji_events': False,
    'feature_flag_events': False, 'repository_update_events': False,
}
PROJECT_SETTING = 'extended_prat_expiry_webhook_execute'
GROUP_SETTING = 'extended_grat_expiry_webhook_execute'


def setting_name(kind):
    return PROJECT_SETTING if kind == 'project' else GROUP_SETTING


# ---------------------------------------------------------------------- entities
def hook_entity(hook):
    """The hook as GitLab's API renders it: never its token."""
    body = {
        'id': hook.id, 'url': hook.url, 'created_at': model.iso_timestamp(hook.created_at),
        f'{hook.source_type}_id': hook.source_id,
        'resource_access_token_events': hook.resource_access_token_events,
        'enable_ssl_verification': hook.enable_ssl_verification,
        'alert_status': 'executable', 'disabled_until': None,
    }
    body.update({name: hook.flags.get(name, default) for name, default in OTHER_FLAGS.items()})
    return body


# ---------------------------------------------------------------------- routes
def hook_handlers(kind):
    """The hooks routes of projects or groups: Maintainer+ of a project, Owner of a group."""
    needed = model.MAINTAINER if kind == 'project' else model.OWNER

    def managed_source(request):
        state, caller = request.app[STATE], request[CALLER]
        source = find_source(request, kind, request.match_info['id'], caller)
        if state.access_level(caller.user, source) < needed:
            raise model.forbidden()
        return source

    def existing_hook(request, source):
        hook = request.app[STATE].find_hook(source, request.match_info['hook_id'])
        if hook is None:
            raise model.not_found('Hook')
        return hook

    async def hook_params(request, creating):
        params = await Params.read(request)
        values = {
            'url': params.string('url', required=creating),
            'token': params.string('token'),
            'resource_access_token_events': params.boolean('resource_access_token_events'),
            'enable_ssl_verification': params.boolean('enable_ssl_verification'),
        }
        flags = {name: params.boolean(name) for name in OTHER_FLAGS}
        params.check()
        url = values['url']
        if url is not None and not url.lower().startswith(('http://', 'https://')):
            raise model.ApiError(422, {'message': {'url': ['is blocked: Only allowed schemes are http, https']}})
        values['flags'] = {name: value for name, value in flags.items() if value is not None}
        return values

    async def list_hooks(request):
        source = managed_source(request)
        page, headers = paginate(request, request.app[STATE].hooks_of(source))
        return json_response([hook_entity(h) for h in page], headers=headers)

    async def get_hook(request):
        return json_response(hook_entity(existing_hook(request, managed_source(request))))

    async def create_hook(request):
        values = await hook_params(request, creating=True)
        source = managed_source(request)
        hook = request.app[STATE].add_hook(
            source, values['url'], token=values['token'] or None, flags=values['flags'],
            resource_access_token_events=bool(values['resource_access_token_events']),
            enable_ssl_verification=values['enable_ssl_verification'] is not False)
        return json_response(hook_entity(hook), status=201)

    async def update_hook(request):
        values = await hook_params(request, creating=False)
        hook = existing_hook(request, managed_source(request))
        if values['url'] is not None:
            hook.url = values['url']
        if values['token'] is not None:
            hook.token = values['token'] or None
        for name in ('resource_access_token_events', 'enable_ssl_verification'):
            if values[name] is not None:
                setattr(hook, name, values[name])
        hook.flags.update(values['flags'])
        return json_response(hook_entity(hook))

    async def delete_hook(request):
        hook = existing_hook(request, managed_source(request))
        del request.app[STATE].hooks[hook.id]
        return no_content()

    async def update_source(request):
        """``PUT /projects/:id`` / ``PUT /groups/:id``: only the extended expiry-webhook setting."""
        state, caller = request.app[STATE], request[CALLER]
        params = await Params.read(request)
        extended = params.boolean(setting_name(kind))
        params.check()
        source = managed_source(request)
        if extended is not None:
            source.extended_expiry_webhooks = extended
        if kind == 'project':
            return json_response(project_entity(request, state, source, caller.user))
        return json_response(group_entity(request, source))

    return list_hooks, get_hook, create_hook, update_hook, delete_hook, update_source


def add_routes(app):
    routes = []
    for kind in ('project', 'group'):
        list_hooks, get_hook, create_hook, update_hook, delete_hook, update_source = hook_handlers(kind)
        base = f'{PREFIX}/{kind}s/{{id}}'
        routes += [
            web.put(base, update_source),
            web.get(base + '/hooks', list_hooks),
            web.post(base + '/hooks', create_hook),
            web.get(base + '/hooks/{hook_id}', get_hook),
            web.put(base + '/hooks/{hook_id}', update_hook),
            web.delete(base + '/hooks/{hook_id}', delete_hook),
        ]
    app.add_routes(routes)


# ---------------------------------------------------------------------- payloads
def group_created_at(moment):
    """The group event's created_at: ``2024-01-29 09:08:33 UTC`` (GitLab issue #460466)."""
    return moment.astimezone(model.UTC).strftime('%Y-%m-%d %H:%M:%S UTC')


def event_payload(state, instance_url, token, resource):
    attributes = {
        'user_id': token.user_id, 'created_at': None, 'id': token.id, 'name': token.name,
        'expires_at': token.expires_at.isoformat(),
    }
    body = {'object_kind': 'access_token', 'event_name': 'expiring_access_token'}
    if isinstance(resource, model.Project):
        attributes['created_at'] = model.iso_timestamp(token.created_at)
        web_url = f'{instance_url}/{resource.full_path}'
        host = instance_url.split('://', 1)[-1].split(':', 1)[0]
        ssh_url = f'git@{host}:{resource.full_path}.git'
        http_url = f'{web_url}.git'
        if resource.group_id:
            namespace = state.groups[resource.group_id].name
        else:
            namespace = state.users[resource.owner_id].name
        body['project_id'] = resource.id
        body['project'] = {
            'id': resource.id, 'name': resource.name, 'description': None, 'web_url': web_url,
            'avatar_url': None, 'git_ssh_url': ssh_url, 'git_http_url': http_url,
            'namespace': namespace, 'visibility_level': 0,
            'path_with_namespace': resource.full_path, 'default_branch': 'main',
            'ci_config_path': None, 'homepage': web_url, 'url': ssh_url, 'ssh_url': ssh_url,
            'http_url': http_url,
        }
    else:
        attributes['created_at'] = group_created_at(token.created_at)
        body['group_id'] = resource.id
        body['group'] = {'group_name': resource.name, 'group_path': resource.path,
                         'group_id': resource.id, 'full_path': resource.full_path}
    body['object_attributes'] = attributes
    return body


# ---------------------------------------------------------------------- delivery
async def deliver(session, server, hook, event_uuid, payload):
    """POST one event to one hook; the delivery record, whatever happened."""
    headers = {
        'Content-Type': 'application/json', 'User-Agent': f'GitLab/{server.state.settings.version}',
        'X-Gitlab-Event': EVENT_HEADER, 'X-Gitlab-Instance': server.url,
        'X-Gitlab-Webhook-UUID': hook.uuid, 'X-Gitlab-Event-UUID': event_uuid,
    }
    if hook.token:
        headers['X-Gitlab-Token'] = hook.token
    logged_headers = dict(headers)
    if 'X-Gitlab-Token' in logged_headers:
        logged_headers['X-Gitlab-Token'] = REDACTED_TOKEN
    record = {'hook_id': hook.id, 'url': hook.url, 'event_uuid': event_uuid, 'status': None,
              'error': None, 'payload': payload, 'headers': logged_headers}
    try:
        async with session.post(hook.url, data=json.dumps(payload).encode(), headers=headers,
                                ssl=hook.enable_ssl_verification) as response:
            await response.read()
            record['status'] = response.status
            if not 200 <= response.status < 300:
                record['error'] = f'HTTP {response.status}'
    except asyncio.TimeoutError:
        record['error'] = f'timed out after {DELIVERY_TIMEOUT:g} s'
    except Exception as exc:  # pylint: disable=broad-except  # a delivery never fails the clock move
        record['error'] = f'{type(exc).__name__}: {exc}' if str(exc) else type(exc).__name__
    return record


async def run_expiry_worker(server, after, through):
    """Run the worker for each day D with ``after < D <= through``; deliver everything at once and
    return the delivery records (also appended to ``server.hook_deliveries``), in event order."""
    state = server.state
    jobs = []
    for _day, token, resource, _interval in state.expiring_token_events(after, through):
        hooks = state.token_event_hooks(resource)
        if not hooks:
            continue
        payload = event_payload(state, server.url, token, resource)
        event_uuid = str(uuid.uuid4())
        jobs += [(hook, event_uuid, payload) for hook in hooks]
    if not jobs:
        return []
    timeout = aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        records = await asyncio.gather(*(deliver(session, server, *job) for job in jobs))
    server.hook_deliveries.extend(records)
    return list(records)


async def clock_moved(server, old_today):
    """After a clock move: the worker for every day crossed forwards (nothing when moved back)."""
    new_today = server.state.clock.today()
    if new_today <= old_today:
        return []
    return await run_expiry_worker(server, old_today, new_today)


async def run_today(server):
    """The worker for today only (``POST /_test/hooks/run_expiry_worker``)."""
    today = server.state.clock.today()
    return await run_expiry_worker(server, today - dt.timedelta(days=1), today)
