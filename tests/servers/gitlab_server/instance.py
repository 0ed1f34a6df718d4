"""One served GitLab instance: its aiohttp application, faults and request log.

Every request to a GitLab path passes through :func:`gitlab_middleware`, which in order:
logs it, applies a queued fault if one matches, rejects unknown routes like Grape's
catch-all, authenticates the caller for the matched endpoint, turns :class:`ApiError`
into GitLab's JSON error, and stamps a ``Date`` header from the instance's clock.
"""
from __future__ import annotations

import asyncio
import email.utils
import http
import socket

from aiohttp import web

from gitlab_server import api, control, hooks, members, model, service_accounts
from gitlab_server.control import SERVER

HTML_ERROR_PAGE = (
    '<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title></head>\n'
    '<body>\n<h1>502 Bad Gateway</h1>\n<p>The upstream GitLab did not answer.</p>\n'
    '<hr><center>nginx</center>\n</body>\n</html>\n'
)
# GitLab's own wording where it differs from the standard reason phrase.
GITLAB_REASONS = {400: 'Bad request'}
RATE_LIMIT = 600


class InstanceServer:
    """A GitLab instance served on its own port."""

    def __init__(self, name, host, ssl_context=None, clock=None):
        self.name = name
        self.host = host
        self.ssl_context = ssl_context
        self.state = model.Instance(name, clock=clock, host=host)
        self.faults = []
        self.log = []
        # Every webhook delivery (X-Gitlab-Token redacted), for GET /_test/hook_deliveries.
        self.hook_deliveries = []
        self.seq = 0
        self.port = None
        self.runner = None
        self.app = web.Application(middlewares=[gitlab_middleware])
        self.app[SERVER] = self
        self.app[api.STATE] = self.state
        self.app.on_response_prepare.append(stamp_date)
        api.add_routes(self.app)
        members.add_routes(self.app)
        service_accounts.add_routes(self.app)
        hooks.add_routes(self.app)
        control.add_routes(self.app)

    @property
    def url(self):
        scheme = 'https' if self.ssl_context else 'http'
        url_host = '127.0.0.1' if self.host in ('0.0.0.0', '') else self.host
        return f'{scheme}://{url_host}:{self.port}'

    def document(self):
        return {
            'name': self.name, 'url': self.url, 'admin_username': 'root',
            'admin_token': self.state.admin_token.secret,
            'tls': self.ssl_context is not None,
        }

    async def start(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self.runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self.runner.setup()
        await web.SockSite(self.runner, sock, ssl_context=self.ssl_context).start()

    async def stop(self):
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def reset(self):
        self.state.reset()
        self.faults.clear()
        self.log.clear()
        self.hook_deliveries.clear()

    def take_fault(self, request):
        for fault in self.faults:
            if fault.matches(request):
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
                return fault
        return None


async def stamp_date(request, response):
    """The client sees the instance's clock, moved or not."""
    state = request.app[api.STATE]
    response.headers['Date'] = email.utils.format_datetime(state.clock.now(), usegmt=True)


def logged_query(request):
    query = {}
    for key in request.query:
        if key != 'private_token':
            values = request.query.getall(key)
            query[key] = values if len(values) > 1 else values[0]
    return query


@web.middleware
async def gitlab_middleware(request, handler):
    if request.path.startswith(control.PREFIX):
        return await handler(request)
    server = request.app[SERVER]
    server.seq += 1
    token = api.identify(request)
    entry = {
        'seq': server.seq, 'method': request.method, 'path': request.rel_url.raw_path,
        'query': logged_query(request), 'status': None,
        'token_id': token.id if token else None,
        'user_agent': request.headers.get('User-Agent'),
        'username': server.state.users[token.user_id].username if token else None,
        'fault': None, 'time': model.iso_timestamp(server.state.clock.now()),
    }
    server.log.append(entry)
    if request.body_exists:
        # Read now: after a delay the client may be gone, and with it the unread body.
        await request.read()
    fault = server.take_fault(request)
    if fault is not None:
        entry['fault'] = fault.kind
        response = await apply_fault(request, fault, server)
        if response is None:
            response = await dispatch(request, handler)
    else:
        response = await dispatch(request, handler)
    # A dropped connection never answered; its placeholder response cannot be written.
    entry['status'] = None if fault is not None and fault.kind == 'drop' else response.status
    return response


async def dispatch(request, handler):
    try:
        match_info = request.match_info
        spec = api.spec_of(match_info.handler) if match_info.http_exception is None else None
        if spec is None or not spec.exists_on(request.app[api.STATE]):
            # Grape's catch-all route answers unknown paths and methods alike.
            raise model.ApiError(404, {'error': '404 Not Found'})
        request[api.CALLER] = api.authenticate(request, spec)
        return await handler(request)
    except model.ApiError as error:
        return api.error_response(error)


async def apply_fault(request, fault, server):
    """The faulty response, or None when the request should then proceed (``delay``)."""
    if fault.kind == 'delay':
        await asyncio.sleep(fault.seconds)
        return None
    if fault.kind == 'drop':
        # aiohttp quietly gives up writing this response to the closed transport.
        request.transport.close()
        return web.Response(status=499)
    if fault.kind == 'html200':
        return web.Response(status=200, text=HTML_ERROR_PAGE, content_type='text/html')
    if fault.kind == 'rate_limit':
        now = server.state.clock.now()
        reset_at = int(now.timestamp()) + fault.retry_after
        headers = {
            'RateLimit-Name': 'throttle_authenticated_api', 'RateLimit-Limit': str(RATE_LIMIT),
            'RateLimit-Observed': str(RATE_LIMIT + 1), 'RateLimit-Remaining': '0',
            'RateLimit-Reset': str(reset_at),
            'RateLimit-ResetTime': email.utils.formatdate(reset_at, usegmt=True),
            'Retry-After': str(fault.retry_after),
        }
        return web.Response(status=429, text='Retry later\n', content_type='text/plain', headers=headers)
    return api.json_response({'message': f'{fault.status} {reason_phrase(fault.status)}'}, status=fault.status)


def reason_phrase(status):
    if status in GITLAB_REASONS:
        return GITLAB_REASONS[status]
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return 'Error'  # e.g. a CDN's 520-530
