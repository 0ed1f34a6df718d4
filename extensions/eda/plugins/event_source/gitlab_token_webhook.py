# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ansible-rulebook event source: GitLab's webhooks for expiring project and group access tokens."""

from __future__ import annotations

import asyncio
import collections
import datetime
import hmac
import json
import logging
import re
import ssl
import time
from urllib.parse import urlsplit

from aiohttp import web

DOCUMENTATION = r"""
---
short_description: Receive GitLab's webhooks for expiring project and group access tokens
description:
  - Listens over HTTP(S) for the webhooks that GitLab sends 7 days (and, with the project or group
    setting for extended expiry webhooks, also 30 and 60 days) before a project or group access token
    expires, and puts one event per token on the rulebook's queue.
  - Every request must carry the hook's secret in C(X-Gitlab-Token); it is compared in constant time.
    A request without it or with another is answered 401 and triggers nothing.
  - Only C(object_kind) C(access_token) with C(event_name) C(expiring_access_token) makes an event; other
    hook events are answered 200 and ignored, so that GitLab does not disable a hook that also sends them.
  - The same event (C(X-Gitlab-Event-UUID)) is put once; so is a token (server, project or group, token id)
    within O(dedupe_seconds). GitLab is answered at once, before the rulebook runs anything.
  - A body that is not a JSON object, is larger than O(max_body_bytes) or lacks a field the event needs
    is refused (400 or 413) with a log line that says why.
  - Personal access tokens, service accounts' tokens included, get e-mails from GitLab, not webhooks,
    so they are kept by the scheduled run of C(mobb.scm.rotate) alone.
  - "The event is C({gitlab_token: {gitlab_url, kind, source_id, source_path, token_id, token_name,
    expires_at, created_at, event_name, event_uuid}}): C(kind) is C(project) or C(group), C(created_at)
    is ISO 8601 in UTC whichever of GitLab's two formats the payload used."
options:
  host:
    description: The address to listen on.
    type: str
    default: 0.0.0.0
  port:
    description: The TCP port to listen on.
    type: int
    required: true
  secret:
    description:
      - The secret token configured on the GitLab hook (its C(token)); never logged.
    type: str
    required: true
  certfile:
    description: A certificate (PEM) to serve HTTPS with; GitLab verifies it unless the hook disables that.
    type: str
  keyfile:
    description: The private key of O(certfile), when it is not in that file.
    type: str
  password:
    description: The password of O(keyfile).
    type: str
  max_body_bytes:
    description: The largest body accepted; GitLab's token payloads are well under 4 KiB.
    type: int
    default: 65536
  dedupe_seconds:
    description: A token's events within this many seconds of its last one are put once.
    type: int
    default: 3600
"""

EXAMPLES = r"""
- name: Rotate Mobb's GitLab tokens when GitLab warns
  hosts: all
  sources:
    - mobb.scm.gitlab_token_webhook:
        port: 5000
        secret: "{{ mobb_scm_webhook_secret }}"
  rules:
    - name: A token nears expiry
      condition: event.gitlab_token is defined
      action:
        run_playbook:
          name: mobb.scm.rotate
"""

LOGGER = logging.getLogger(__name__)

TOKEN_EVENT = ('access_token', 'expiring_access_token')
# How many event UUIDs and tokens are remembered for de-duplication: enough for any fleet's day.
REMEMBERED = 10000
# Events accepted but not yet taken by the rulebook; past this, GitLab is answered 503.
PENDING = 1000
DATE = re.compile(r'^\d{4}-\d{2}-\d{2}$')


class Refused(Exception):
    """A request that makes no event: its status and the reason logged and answered."""

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def created_at_iso(value):
    """GitLab's ``created_at`` as ISO 8601 UTC: projects' payloads use ISO 8601
    (``2024-02-05T03:13:44.855Z``), groups' ``2024-01-29 09:08:33 UTC`` (gitlab-org/gitlab #460466)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(' UTC'):
        text = text[:-4].replace(' ', 'T') + '+00:00'
    elif text.endswith('Z'):
        text = text[:-1] + '+00:00'
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def server_url(value):
    """``scheme://host[:port][/path]``, scheme and host lowercased (one server, one key for the
    de-duplication and the rulebook's throttle), without a trailing slash; None when ``value`` is
    no http(s) URL."""
    if not isinstance(value, str):
        return None
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in ('http', 'https') or not parts.hostname:
        return None
    return '%s://%s%s' % (parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip('/'))


def instance_url(headers, payload):
    """The GitLab server that sent the hook: ``X-Gitlab-Instance``, else the project's ``web_url``
    without its ``path_with_namespace`` (which keeps a relative URL root such as ``/gitlab``)."""
    url = server_url(headers.get('X-Gitlab-Instance'))
    if url:
        return url
    project = payload.get('project')
    if isinstance(project, dict):
        web_url = server_url(project.get('web_url'))
        path = project.get('path_with_namespace')
        if web_url and isinstance(path, str) and web_url.endswith('/' + path.strip('/')):
            return web_url[:-len(path.strip('/')) - 1]
    return None


def token_source(payload):
    """('project' or 'group', its id, its full path) from a project's or a group's payload."""
    if isinstance(payload.get('project'), dict):
        project = payload['project']
        return 'project', project.get('id', payload.get('project_id')), project.get('path_with_namespace')
    if isinstance(payload.get('group'), dict):
        group = payload['group']
        return 'group', group.get('group_id', payload.get('group_id')), group.get('full_path') or group.get('group_path')
    return None, None, None


def token_event(headers, payload):
    """The event for one token-expiry payload; Refused(400) naming what is missing."""
    attributes = payload.get('object_attributes')
    if not isinstance(attributes, dict):
        raise Refused(400, 'the payload has no object_attributes')
    missing = []
    token_id, name, expires_at = attributes.get('id'), attributes.get('name'), attributes.get('expires_at')
    if not isinstance(token_id, int) or isinstance(token_id, bool):
        missing.append('object_attributes.id')
    if not isinstance(name, str) or not name:
        missing.append('object_attributes.name')
    if not isinstance(expires_at, str) or not DATE.match(expires_at):
        missing.append('object_attributes.expires_at (YYYY-MM-DD)')
    kind, source_id, source_path = token_source(payload)
    if kind is None:
        missing.append('project or group')
    elif not isinstance(source_id, int) or not isinstance(source_path, str):
        missing.append('%s id and path' % kind)
    url = instance_url(headers, payload)
    if url is None:
        missing.append('the GitLab URL (X-Gitlab-Instance or project.web_url)')
    if missing:
        raise Refused(400, 'the payload lacks %s' % ', '.join(missing))
    return {
        'gitlab_url': url,
        'kind': kind,
        'source_id': source_id,
        'source_path': source_path,
        'token_id': token_id,
        'token_name': name,
        'expires_at': expires_at,
        'created_at': created_at_iso(attributes.get('created_at')),
        'event_name': payload.get('event_name'),
        'event_uuid': headers.get('X-Gitlab-Event-UUID'),
    }


class Recent:
    """Keys seen lately, the oldest forgotten first once there are ``REMEMBERED``."""

    def __init__(self, seconds=None):
        self.seconds = seconds
        self.seen = collections.OrderedDict()

    def repeat(self, key, now):
        """True when ``key`` was seen (within ``seconds``, when set); remembers it either way."""
        last = self.seen.pop(key, None)
        repeated = last is not None and (self.seconds is None or now - last < self.seconds)
        self.seen[key] = last if repeated else now
        while len(self.seen) > REMEMBERED:
            self.seen.popitem(last=False)
        return repeated

    def forget(self, key):
        self.seen.pop(key, None)


class TokenHookReceiver:
    """Answers each webhook request at once and keeps its event in ``pending``, from which
    ``forward`` puts them on the rulebook's queue (which holds one event at a time)."""

    def __init__(self, secret, max_body_bytes, dedupe_seconds):
        self.pending = asyncio.Queue(PENDING)
        self.secret = secret.encode('utf-8')
        self.max_body_bytes = max_body_bytes
        self.events = Recent()
        self.tokens = Recent(dedupe_seconds)

    def authentic(self, request):
        received = request.headers.get('X-Gitlab-Token', '').encode('utf-8', 'replace')
        return hmac.compare_digest(received, self.secret)

    async def payload(self, request):
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            raise Refused(413, 'the body has %d bytes, more than max_body_bytes (%d)'
                          % (request.content_length, self.max_body_bytes))
        body = bytearray()
        async for chunk in request.content.iter_chunked(16384):
            body.extend(chunk)
            if len(body) > self.max_body_bytes:
                raise Refused(413, 'the body is larger than max_body_bytes (%d)' % self.max_body_bytes)
        try:
            payload = json.loads(bytes(body))
        except ValueError:
            raise Refused(400, 'the body is not JSON') from None
        if not isinstance(payload, dict):
            raise Refused(400, 'the body is not a JSON object')
        return payload

    async def handle(self, request):
        peer = request.remote
        if not self.authentic(request):
            LOGGER.warning('Refused a request from %s: X-Gitlab-Token is missing or is not the hook secret', peer)
            return web.json_response({'error': 'unauthorized'}, status=401)
        try:
            payload = await self.payload(request)
            kind = (payload.get('object_kind'), payload.get('event_name'))
            if kind != TOKEN_EVENT:
                LOGGER.info('Ignored a %s/%s event from %s: not an expiring access token', kind[0], kind[1], peer)
                return web.json_response({'ignored': 'not an expiring access token event'})
            event = token_event(request.headers, payload)
        except Refused as refused:
            LOGGER.warning('Refused a request from %s: %s', peer, refused.reason)
            return web.json_response({'error': refused.reason}, status=refused.status)
        described = '%s token %d (%s) of %s %s on %s, expiring %s' % (
            event['kind'], event['token_id'], event['token_name'], event['kind'], event['source_path'],
            event['gitlab_url'], event['expires_at'])
        now = time.monotonic()
        if event['event_uuid'] and self.events.repeat(event['event_uuid'], now):
            LOGGER.info('Dropped a repeat of event %s: %s', event['event_uuid'], described)
            return web.json_response({'duplicate': 'event'})
        token_key = (event['gitlab_url'], event['kind'], event['source_id'], event['token_id'])
        if self.tokens.repeat(token_key, now):
            LOGGER.info('Dropped an event within dedupe_seconds of the last one for %s', described)
            return web.json_response({'duplicate': 'token'})
        try:
            self.pending.put_nowait({'gitlab_token': event})
        except asyncio.QueueFull:
            self.events.forget(event['event_uuid'])
            self.tokens.forget(token_key)
            LOGGER.warning('Refused an event for %s: %d events wait for the rulebook', described, PENDING)
            return web.json_response({'error': 'busy'}, status=503)
        LOGGER.info('Event for %s', described)
        return web.json_response({'accepted': True}, status=202)

    async def forward(self, queue):
        while True:
            await queue.put(await self.pending.get())


def tls_context(args):
    if not args.get('certfile'):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args['certfile'], args.get('keyfile') or None, args.get('password') or None)
    return context


def checked_arguments(args):
    """The arguments with their defaults; ValueError naming every problem, before listening."""
    problems = []
    secret = args.get('secret')
    if not isinstance(secret, str) or not secret:
        problems.append('secret is required: the secret token configured on the GitLab hook')
    try:
        port = int(args.get('port'))
    except (TypeError, ValueError):
        port = None
    if port is None or not 0 <= port <= 65535:
        problems.append('port is required: a TCP port number (0-65535)')
    numbers = {}
    for name, default in (('max_body_bytes', 65536), ('dedupe_seconds', 3600)):
        try:
            numbers[name] = int(args.get(name, default))
        except (TypeError, ValueError):
            numbers[name] = -1
        if numbers[name] < 0:
            problems.append('%s must be a number of at least 0' % name)
    if problems:
        raise ValueError('mobb.scm.gitlab_token_webhook: ' + '; '.join(problems))
    return dict(host=args.get('host') or '0.0.0.0', port=port, secret=secret, **numbers)


async def main(queue, args):
    """Serve until cancelled (ansible-rulebook cancels sources when it stops)."""
    settings = checked_arguments(args)
    receiver = TokenHookReceiver(settings['secret'], settings['max_body_bytes'], settings['dedupe_seconds'])
    # Bodies are read, and their size checked, by the receiver itself.
    app = web.Application(client_max_size=settings['max_body_bytes'] + 1)
    app.router.add_post('/{path:.*}', receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings['host'], settings['port'], ssl_context=tls_context(args))
    await site.start()
    LOGGER.info('Listening for GitLab access token webhooks on %s:%d', settings['host'], settings['port'])
    try:
        await receiver.forward(queue)
    finally:
        await runner.cleanup()
