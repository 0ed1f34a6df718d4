"""Command line: start a hub of local GitLab instances and print (or write) the ready document."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile

from gitlab_server.control import ControlError, seed_document
from gitlab_server.hub import Hub


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='python -m gitlab_server',
        description='Serve local GitLab instances (REST API v4 access tokens) for tests and benchmarks. '
                    'One process is a hub with a control port (/_hub/) serving any number of '
                    'instances, each on its own port with its own data, clock, faults and request log.',
    )
    parser.add_argument('--host', default='127.0.0.1', help='address to listen on (default: %(default)s)')
    parser.add_argument('--port', type=int, default=0, help='control port; 0 picks a free one (default)')
    parser.add_argument('--instances', type=int, default=0, metavar='N', help='instances to create at start')
    parser.add_argument('--tls', action='store_true', help='instances created at start use HTTPS')
    parser.add_argument('--state-dir', metavar='DIR',
                        help='where the test CA (gitlab-ca.pem) goes; default: a temporary directory '
                             'removed at exit')
    parser.add_argument('--ready-file', metavar='FILE',
                        help='write the ready JSON document here (else print it as one line on stdout)')
    parser.add_argument('--seed', metavar='FILE.json',
                        help='seed document (as POST /_test/seed takes) applied to each start instance')
    args = parser.parse_args(argv)
    if args.instances < 0:
        parser.error('--instances must be 0 or more')
    return args


async def serve(args, state_dir):
    seed = None
    if args.seed:
        with open(args.seed, encoding='utf-8') as handle:
            seed = json.load(handle)
    hub = Hub(args.host, state_dir)
    hub.make_ca()
    await hub.start(args.port)
    try:
        for _number in range(args.instances):
            server = await hub.new_instance(tls=args.tls)
            if seed is not None:
                seed_document(server.state, seed)
        write_ready(args.ready_file, hub.ready_document())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await hub.stop()


def write_ready(path, document):
    text = json.dumps(document)
    if path is None:
        print(text, flush=True)
        return
    # Written whole then renamed, so a watcher never reads half a document.
    partial = path + '.partial'
    with open(partial, 'w', encoding='utf-8') as handle:
        handle.write(text)
    os.replace(partial, path)


def main(argv=None):
    args = parse_args(argv)
    state_dir = args.state_dir or tempfile.mkdtemp(prefix='gitlab-server-')
    os.makedirs(state_dir, exist_ok=True)
    try:
        asyncio.run(serve(args, state_dir))
    except (ControlError, ValueError, OSError) as exc:
        print(f'gitlab_server: {exc}', file=sys.stderr)
        return 2
    finally:
        if not args.state_dir:
            shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
