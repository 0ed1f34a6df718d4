"""The local Mobb server's HTTP side: ``POST /v1/graphql`` as Hasura answers it, the REST
form of the connection check (``GET /api/rest/check-scm-connection-status``, as a Hasura
RESTified endpoint answers it), faults a proxy in front of Mobb would cause, the request
log, and the ``/_test/`` control API.
"""
from __future__ import annotations

import asyncio
import json

import graphql
from aiohttp import web

from mobb_server import graphql_api
from mobb_server.graphql_api import ACCESS_DENIED_MESSAGE, HasuraError, error_response
from mobb_server.scm import GitLabChecker
from mobb_server.state import MobbState, NotFound, StateError

FAULT_KINDS = ('status', 'html200', 'delay', 'drop', 'internal_error', 'internal_error_after', 'answer')
# Mobb's REST path for the check is not public: this one is the local server's choice.
REST_CHECK_PATH = '/api/rest/check-scm-connection-status'
REST_CHECK_OPERATION = 'checkScmConnectionStatus'
# The query a Hasura RESTified endpoint would be saved with; its variables come from the URL.
REST_CHECK_QUERY = ('query checkScmConnectionStatus($scmUrl: String!) {'
                    ' checkScmConnectionStatus(scmUrl: $scmUrl) { status } }')
# The HTTP status of a REST error by Hasura code (*choice*: Hasura's statuses for a failed
# action behind a REST endpoint are not documented); unknown codes answer 400.
REST_ERROR_STATUSES = {'access-denied': 401, 'permission-error': 403, 'not-found': 404,
                       'INTERNAL_ERROR': 500, 'unexpected': 400, 'validation-failed': 400}
# The key of a request's log entry in its aiohttp request (read by _measure_answer).
_LOG_ENTRY = 'mobb_log_entry'
_PROXY_PAGES = {
    502: 'Bad Gateway', 503: 'Service Temporarily Unavailable', 504: 'Gateway Time-out',
}


def _proxy_page(status, reason):
    return (f'<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n'
            f'<center><h1>{status} {reason}</h1></center>\r\n</body>\r\n</html>\r\n')


class Fault:
    def __init__(self, kind, count, status, seconds, operation, body=None):
        self.kind = kind
        self.body = body
        self.remaining = count
        self.status = status
        self.seconds = seconds
        self.operation = operation

    def matches(self, operation_name):
        return self.remaining > 0 and self.operation in (None, operation_name)

    def document(self):
        document = {'kind': self.kind, 'remaining': self.remaining, 'status': self.status,
                    'seconds': self.seconds, 'operation': self.operation}
        if self.kind == 'answer':
            document['body'] = self.body
        return document

    @classmethod
    def parse(cls, body):
        if not isinstance(body, dict):
            raise StateError('a fault is a JSON object')
        kind = body.get('kind')
        if kind not in FAULT_KINDS:
            raise StateError(f'fault kind must be one of {list(FAULT_KINDS)}, got {kind!r}')
        count = body.get('count', 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise StateError('fault count must be a whole number of at least 1')
        status = body.get('status')
        if kind == 'status':
            status = 502 if status is None else status
            if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
                raise StateError('a status fault needs "status" between 400 and 599 (502, 503, 504 are what proxies send)')
        elif status is not None:
            raise StateError(f'"status" applies only to kind status, not {kind}')
        seconds = body.get('seconds')
        if kind == 'delay':
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
                raise StateError('a delay fault needs "seconds" above 0')
        elif seconds is not None:
            raise StateError(f'"seconds" applies only to kind delay, not {kind}')
        operation = body.get('operation')
        if operation is not None and not isinstance(operation, str):
            raise StateError('"operation" is a GraphQL operation name')
        if kind == 'answer' and 'body' not in body:
            raise StateError('an answer fault needs "body", the JSON to answer with')
        if kind != 'answer' and 'body' in body:
            raise StateError(f'"body" applies only to kind answer, not {kind}')
        return cls(kind, count, status, seconds, operation, body.get('body'))


class MobbServer:
    """One process: many organizations, users and GitLab URLs."""

    def __init__(self, ca_path=None):
        self.state = MobbState()
        self.checker = GitLabChecker(ca_path)
        self.schema = graphql_api.load_schema()
        self.faults = []
        self.log = []
        self.seq = 0

    def reset(self):
        self.state.reset()
        self.faults = []
        self.log = []

    def app(self):
        app = web.Application(client_max_size=1024 * 1024, middlewares=[self._measure_answer])
        app.router.add_route('*', '/v1/graphql', self.graphql)
        app.router.add_route('*', REST_CHECK_PATH, self.rest_check)
        app.router.add_get('/healthz', self.healthz)
        routes = [
            ('POST', '/_test/seed', self.control_seed),
            ('POST', '/_test/broker', self.control_broker),
            ('GET', '/_test/settings', self.control_get_settings),
            ('POST', '/_test/settings', self.control_settings),
            ('GET', '/_test/faults', self.control_get_faults),
            ('POST', '/_test/faults', self.control_add_fault),
            ('DELETE', '/_test/faults', self.control_clear_faults),
            ('GET', '/_test/requests', self.control_requests),
            ('DELETE', '/_test/requests', self.control_clear_requests),
            ('GET', '/_test/secrets', self.control_secrets),
            ('GET', '/_test/scm_configs', self.control_scm_configs),
            ('GET', '/_test/clock', self.control_get_clock),
            ('POST', '/_test/clock', self.control_clock),
            ('POST', '/_test/reset', self.control_reset),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, _app):
        await self.checker.close()

    @staticmethod
    @web.middleware
    async def _measure_answer(request, handler):
        """The length of a logged request's answer body, in its log entry's ``response_bytes``."""
        response = await handler(request)
        entry = request.get(_LOG_ENTRY)
        if entry is not None and isinstance(response, web.Response) and response.body is not None:
            entry['response_bytes'] = len(response.body)
        return response

    def _log(self, request, entry):
        """Append ``entry`` to the request log; ``response_bytes`` stays null without an answer (drop)."""
        entry['response_bytes'] = None
        request[_LOG_ENTRY] = entry
        self.log.append(entry)

    @staticmethod
    async def healthz(_request):
        return web.Response(text='OK')

    # -- GraphQL ---------------------------------------------------------------------------
    def _take_fault(self, operation, entry):
        """The next pending fault for ``operation``, used up by one and noted in ``entry``; or None."""
        fault = next((f for f in self.faults if f.matches(operation)), None)
        if fault is not None:
            fault.remaining -= 1
            self.faults = [f for f in self.faults if f.remaining > 0]
            entry['fault'] = fault.kind
        return fault

    async def graphql(self, request):
        if request.method != 'POST':
            return web.json_response({'path': '$', 'error': 'resource does not exist', 'code': 'not-found'},
                                     status=404)
        self.seq += 1
        entry = {'seq': self.seq, 'time': self.state.clock.iso_now(), 'operation': None,
                 'operation_type': None, 'status': 200, 'user': None, 'fault': None,
                 'error_code': None, 'result': None, 'scm_checks': [],
                 'request_id': request.headers.get('x-hasura-request-id'), 'endpoint': 'graphql'}
        self._log(request, entry)
        raw = await request.read()
        body, document, operation, parse_error = self._parse(raw)
        if operation is not None:
            entry['operation'] = operation.name.value if operation.name else None
            entry['operation_type'] = operation.operation.value
        elif isinstance(body, dict) and isinstance(body.get('operationName'), str):
            entry['operation'] = body['operationName']

        fault = self._take_fault(entry['operation'], entry)
        if fault is not None:
            response = await self._apply_fault(request, fault, entry)
            if response is not None:
                return response

        answer = await self._answer(request, body, document, operation, parse_error, entry)
        if fault is not None and fault.kind == 'internal_error_after':
            return self._internal_error(entry)
        return web.json_response(answer)

    @staticmethod
    def _internal_error(entry):
        entry['error_code'] = 'INTERNAL_ERROR'
        return web.json_response(error_response(HasuraError('Internal Server Error', 'INTERNAL_ERROR')))

    async def _apply_fault(self, request, fault, entry):
        """The response a fault gives, or None when the request then proceeds (delay, and
        internal_error_after, whose error replaces the answer once the request was served)."""
        if fault.kind == 'delay':
            await asyncio.sleep(fault.seconds)
            return None
        if fault.kind == 'internal_error_after':
            return None
        if fault.kind == 'drop':
            entry['status'] = None
            request.transport.close()
            raise asyncio.CancelledError()
        if fault.kind == 'internal_error':
            return self._internal_error(entry)
        if fault.kind == 'answer':
            return web.json_response(fault.body)
        if fault.kind == 'html200':
            return web.Response(text=_proxy_page(502, 'Bad Gateway'), content_type='text/html')
        entry['status'] = fault.status
        reason = _PROXY_PAGES.get(fault.status, 'Error')
        return web.Response(status=fault.status, text=_proxy_page(fault.status, reason), content_type='text/html')

    # -- REST (a Hasura RESTified endpoint) ------------------------------------------------
    async def rest_check(self, request):
        """``GET /api/rest/check-scm-connection-status?scmUrl=...``: the check query run with
        the URL's parameters; the answer is the query's ``data``, an error is Hasura's
        ``{"path", "error", "code"}`` with a non-200 status."""
        if request.method != 'GET':
            return web.json_response({'path': '$', 'error': f'method {request.method} not allowed for this '
                                      'endpoint', 'code': 'method-not-allowed'}, status=405)
        self.seq += 1
        entry = {'seq': self.seq, 'time': self.state.clock.iso_now(), 'operation': REST_CHECK_OPERATION,
                 'operation_type': 'query', 'status': 200, 'user': None, 'fault': None,
                 'error_code': None, 'result': None, 'scm_checks': [],
                 'request_id': request.headers.get('x-hasura-request-id'), 'endpoint': 'rest'}
        self._log(request, entry)
        fault = self._take_fault(REST_CHECK_OPERATION, entry)
        if fault is not None:
            response = await self._apply_fault(request, fault, entry)
            if response is not None:
                return self._rest_answer(response, entry)
        document = graphql.parse(REST_CHECK_QUERY)
        operation = graphql_api.select_operation(document, REST_CHECK_OPERATION)
        # Hasura REST takes the variables from the query string (a GET has no body).
        variables = {name: value for name, value in request.query.items() if name == 'scmUrl'}
        answer = await self._answer(request, {'variables': variables}, document, operation, None, entry)
        if fault is not None and fault.kind == 'internal_error_after':
            return self._rest_answer(self._internal_error(entry), entry)
        return self._rest_answer(answer, entry)

    @staticmethod
    def _rest_answer(answer, entry):
        """A GraphQL answer (or a fault's response) as the REST endpoint sends it."""
        if isinstance(answer, web.StreamResponse):
            if entry['error_code'] == 'INTERNAL_ERROR':
                # internal_error and internal_error_after: Hasura's INTERNAL_ERROR in the REST form.
                entry['status'] = 500
                return web.json_response({'path': '$', 'error': 'Internal Server Error',
                                          'code': 'INTERNAL_ERROR'}, status=500)
            return answer
        if answer.get('errors'):
            first = answer['errors'][0]
            code = (first.get('extensions') or {}).get('code')
            status = REST_ERROR_STATUSES.get(code, 400)
            entry['status'] = status
            return web.json_response({'path': (first.get('extensions') or {}).get('path') or '$',
                                      'error': first.get('message'), 'code': code}, status=status)
        return web.json_response(answer.get('data'))

    def _parse(self, raw):
        """``(body, document, operation, HasuraError or None)`` of a request body."""
        try:
            body = json.loads(raw)
        except ValueError as error:
            return None, None, None, HasuraError(f'Error in $: Failed reading: not a valid json value ({error.msg})',
                                                 'invalid-json')
        if not isinstance(body, dict):
            return body, None, None, HasuraError(
                f'Error in $: parsing GQLReq failed, expected Object, but encountered {type(body).__name__}',
                'parse-failed')
        if 'query' not in body or body['query'] is None:
            return body, None, None, HasuraError('key "query" not found', 'parse-failed')
        if not isinstance(body['query'], str):
            return body, None, None, HasuraError('expected Text, encountered ' + type(body['query']).__name__,
                                                 'parse-failed', '$.query')
        if body.get('variables') is not None and not isinstance(body['variables'], dict):
            return body, None, None, HasuraError('expected Object for variables', 'parse-failed', '$.variables')
        try:
            document = graphql.parse(body['query'])
        except graphql.GraphQLError:
            return body, None, None, HasuraError('not a valid graphql query', 'validation-failed', '$.query')
        try:
            operation = graphql_api.select_operation(document, body.get('operationName'))
        except HasuraError as error:
            return body, document, None, error
        return body, document, operation, None

    async def _answer(self, request, body, document, operation, parse_error, entry):
        # Hasura resolves the session (the API key) before it looks at the document.
        user = self.state.users_by_key.get(request.headers.get('x-mobb-key', ''))
        if user is None:
            entry['error_code'] = 'access-denied'
            return error_response(HasuraError(ACCESS_DENIED_MESSAGE, 'access-denied'))
        entry['user'] = user.email
        if parse_error is not None:
            entry['error_code'] = parse_error.code
            return error_response(parse_error)
        context = graphql_api.Context(self.state, self.checker, user)
        answer, code = await graphql_api.execute(self.schema, document, operation,
                                                 body.get('variables') or {}, context)
        entry['error_code'] = code
        entry['scm_checks'] = context.scm_checks
        data = answer.get('data') or {}
        typenames = [value.get('__typename') for value in data.values() if isinstance(value, dict)]
        entry['result'] = next((name for name in typenames if name), None)
        return answer

    # -- control -----------------------------------------------------------------------------
    @staticmethod
    async def _json(request):
        try:
            return await request.json() if request.can_read_body else {}
        except ValueError as error:
            raise StateError(f'body is not JSON: {error}') from error

    async def _control(self, request, action):
        try:
            return web.json_response(action(await self._json(request)))
        except StateError as error:
            return web.json_response({'error': str(error)}, status=400)
        except NotFound as error:
            return web.json_response({'error': str(error)}, status=404)

    async def control_seed(self, request):
        return await self._control(request, self.state.seed)

    async def control_broker(self, request):
        def action(body):
            if not isinstance(body, dict) or 'real_domain' not in body or not isinstance(body.get('up'), bool):
                raise StateError('broker expects {"real_domain": "...", "up": true|false}')
            return self.state.set_broker(body['real_domain'], body['up'])
        return await self._control(request, action)

    async def control_get_settings(self, _request):
        return web.json_response(self.state.settings)

    async def control_settings(self, request):
        def action(body):
            if not isinstance(body, dict):
                raise StateError('settings expects a JSON object')
            return self.state.update_settings(body)
        return await self._control(request, action)

    async def control_get_faults(self, _request):
        return web.json_response([fault.document() for fault in self.faults])

    async def control_add_fault(self, request):
        def action(body):
            fault = Fault.parse(body)
            self.faults.append(fault)
            return fault.document()
        return await self._control(request, action)

    async def control_clear_faults(self, _request):
        self.faults = []
        return web.json_response([])

    async def control_requests(self, _request):
        return web.json_response(self.log)

    async def control_clear_requests(self, _request):
        self.log = []
        return web.json_response([])

    async def control_secrets(self, _request):
        return web.json_response(self.state.secrets)

    async def control_scm_configs(self, _request):
        return web.json_response([config.control_document(self.state.users)
                                  for config in self.state.scm_configs.values()])

    async def control_get_clock(self, _request):
        return web.json_response({'now': self.state.clock.iso_now()})

    async def control_clock(self, request):
        def action(body):
            clock = self.state.clock
            if isinstance(body, dict) and isinstance(body.get('advance_days'), (int, float)) \
                    and not isinstance(body['advance_days'], bool):
                clock.advance(body['advance_days'])
            elif isinstance(body, dict) and isinstance(body.get('now'), str):
                try:
                    clock.set(body['now'])
                except ValueError as error:
                    raise StateError(f'now must be an ISO 8601 time: {error}') from error
            else:
                raise StateError('clock expects {"advance_days": N} or {"now": "2027-01-01T00:00:00Z"}')
            return {'now': clock.iso_now()}
        return await self._control(request, action)

    async def control_reset(self, _request):
        self.reset()
        return web.json_response({'reset': True})
