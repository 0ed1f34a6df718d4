"""``python -m mobb_server``: serve the local Mobb API until SIGTERM or SIGINT."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys

from aiohttp import web

from mobb_server.app import MobbServer
from mobb_server.state import StateError


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='python -m mobb_server',
        description="Local stand-in for Mobb's GraphQL API (Hasura at /v1/graphql) with a /_test/ control API.")
    parser.add_argument('--host', default='127.0.0.1', help='address to listen on (default 127.0.0.1)')
    parser.add_argument('--port', type=int, default=0, help='port to listen on; 0 picks a free one (default)')
    parser.add_argument('--ca-path', help='CA bundle to trust for HTTPS GitLab servers (the GitLab hub\'s test CA)')
    parser.add_argument('--ready-file', help='write the ready document here instead of one line on stdout')
    parser.add_argument('--seed', metavar='FILE.json', help='seed document to load at start (as POST /_test/seed)')
    return parser.parse_args(argv)


async def serve(args):
    server = MobbServer(ca_path=args.ca_path)
    if args.seed:
        with open(args.seed, encoding='utf-8') as handle:
            server.state.seed(json.load(handle))
    runner = web.AppRunner(server.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    host, port = runner.addresses[0][:2]
    host = f'[{host}]' if ':' in host else host
    url = f'http://{host}:{port}'
    ready = json.dumps({'url': url, 'graphql_url': f'{url}/v1/graphql',
                        'rest_check_url': f'{url}/api/rest/check-scm-connection-status'})
    if args.ready_file:
        # Written whole, then renamed, so a reader never sees half a document.
        partial = args.ready_file + '.partial'
        with open(partial, 'w', encoding='utf-8') as handle:
            handle.write(ready + '\n')
        os.replace(partial, args.ready_file)
    else:
        print(ready, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        asyncio.run(serve(args))
    except (OSError, ValueError, StateError) as error:
        print(f'mobb_server: {error}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
