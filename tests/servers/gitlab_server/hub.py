"""The hub: one process serving many GitLab instances, each on its own port, plus a control port.

TLS instances share one leaf certificate (127.0.0.1, localhost) signed by a test CA made
at hub start; the CA's PEM file is what clients pass as ``ssl_verify``/``ca_path``.
"""
from __future__ import annotations

import asyncio
import os
import ssl

import trustme
from aiohttp import web

from gitlab_server import hooks, model
from gitlab_server.control import ControlError, read_body, reply
from gitlab_server.instance import InstanceServer

HUB = web.AppKey('hub', object)
MAX_INSTANCES_PER_CALL = 1000


class HubError(ControlError):
    """A bad hub control request: answered 400 with the message."""


class Hub:
    def __init__(self, host='127.0.0.1', state_dir=None):
        self.host = host
        self.state_dir = state_dir
        self.instances = {}
        self._counter = 0
        self.control_port = None
        self.runner = None
        self.ca_path = None
        self.ssl_context = None
        self._stopping = set()

    def make_ca(self):
        """Create the test CA and the TLS server context; write the CA's PEM into the state dir."""
        authority = trustme.CA(organization_name='mobb.scm test GitLab CA')
        leaf = authority.issue_cert('127.0.0.1', 'localhost')
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(context)
        self.ssl_context = context
        self.ca_path = os.path.join(self.state_dir, 'gitlab-ca.pem')
        authority.cert_pem.write_to_path(self.ca_path)

    async def start(self, port=0):
        app = web.Application()
        app[HUB] = self
        app.add_routes([
            web.get('/_hub/instances', list_instances),
            web.post('/_hub/instances', create_instances),
            web.delete('/_hub/instances/{name}', delete_instance),
            web.post('/_hub/clock', advance_clocks),
        ])
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, port)
        await site.start()
        self.control_port = site._server.sockets[0].getsockname()[1]  # pylint: disable=protected-access

    @property
    def control_url(self):
        url_host = '127.0.0.1' if self.host in ('0.0.0.0', '') else self.host
        return f'http://{url_host}:{self.control_port}'

    async def new_instance(self, tls=False):
        if tls and self.ssl_context is None:
            raise HubError('this hub has no CA: start it with a state directory')
        self._counter += 1
        name = f'gl{self._counter}'
        server = InstanceServer(name, self.host, ssl_context=self.ssl_context if tls else None,
                                clock=model.Clock())
        await server.start()
        self.instances[name] = server
        return server

    async def remove_instance(self, name):
        server = self.instances.pop(name)
        # Stop in the background: a request stuck in a delay fault must not hold up the caller.
        task = asyncio.get_running_loop().create_task(server.stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def ready_document(self):
        return {
            'control_url': self.control_url, 'ca_path': self.ca_path,
            'instances': [s.document() for s in self.instances.values()],
        }

    async def stop(self):
        for server in list(self.instances.values()):
            await server.stop()
        self.instances.clear()
        if self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)
        if self.runner is not None:
            await self.runner.cleanup()


async def list_instances(request):
    return reply([s.document() for s in request.app[HUB].instances.values()])


async def create_instances(request):
    hub = request.app[HUB]
    try:
        body = await read_body(request)
        count = body.get('count', 1)
        if not isinstance(count, int) or not 1 <= count <= MAX_INSTANCES_PER_CALL:
            raise HubError(f'"count" must be an integer from 1 to {MAX_INSTANCES_PER_CALL}')
        tls = body.get('tls', False)
        if not isinstance(tls, bool):
            raise HubError('"tls" must be true or false')
        created = [await hub.new_instance(tls=tls) for _number in range(count)]
    except ControlError as exc:
        return reply({'error': str(exc)}, status=400)
    return reply([s.document() for s in created], status=201)


async def delete_instance(request):
    hub = request.app[HUB]
    name = request.match_info['name']
    if name not in hub.instances:
        return reply({'error': f'no instance {name!r}'}, status=404)
    await hub.remove_instance(name)
    return web.Response(status=204)


async def advance_clocks(request):
    hub = request.app[HUB]
    try:
        body = await read_body(request)
        days = body.get('advance_days')
        if not isinstance(days, (int, float)) or isinstance(days, bool):
            raise HubError('give "advance_days": a number of days')
    except ControlError as exc:
        return reply({'error': str(exc)}, status=400)
    servers = list(hub.instances.values())
    old_todays = [server.state.clock.today() for server in servers]
    for server in servers:
        server.state.clock.advance(days)
    # Every instance's expiry worker runs at once; the answer waits for all their deliveries.
    await asyncio.gather(*(hooks.clock_moved(server, old) for server, old in zip(servers, old_todays)))
    return reply({s.name: model.iso_timestamp(s.state.clock.now()) for s in hub.instances.values()})
