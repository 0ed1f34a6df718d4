"""GitLab's service-account routes: instance accounts (``/service_accounts``), group and project
accounts (``/groups|projects/:id/service_accounts``) and the personal access tokens of the latter.

Behaviour follows GitLab 18.x (``lib/api/*service_accounts.rb``) as written down in
``tests/servers/README.md``; project accounts (18.11) exist only when the instance setting
``project_service_accounts`` is on.
"""
from __future__ import annotations

from aiohttp import web

from gitlab_server import api, model
from gitlab_server.api import CALLER, PREFIX, STATE, Params, endpoint, json_response, no_content, paginate

ORDER_BY = ('id', 'username')
CREATE_DENIED = 'User does not have permission to create a service account.'
CREATE_IN_GROUP_DENIED = 'User does not have permission to create a service account in this group.'


def account_entity(user):
    """Entities::ServiceAccount (``unconfirmed_email`` is never set: e-mail confirmation is not modelled)."""
    return {'id': user.id, 'username': user.username, 'name': user.name, 'email': user.email,
            'public_email': None}


async def account_params(request):
    """``name``, ``username``, ``email``; blank values are dropped (defaults or no change)."""
    params = await Params.read(request)
    values = {key: params.string(key) for key in ('name', 'username', 'email')}
    params.check()
    return {key: value for key, value in values.items() if value and value.strip()}


def path_user_id(request):
    """The ``:user_id`` path segment, which Grape declares Integer."""
    raw = request.match_info['user_id']
    if not raw.isdigit():
        raise model.param_errors(['user_id is invalid'])
    return int(raw)


async def sorted_page(request, accounts):
    params = await Params.read(request)
    order_by = params.choice('order_by', ORDER_BY) or 'id'
    sort = params.choice('sort', ('asc', 'desc')) or 'desc'
    params.check()
    key = (lambda u: u.id) if order_by == 'id' else (lambda u: u.username.lower())
    page, headers = paginate(request, sorted(accounts, key=key, reverse=sort == 'desc'))
    return json_response([account_entity(u) for u in page], headers=headers)


# ------------------------------------------------------------------------ instance accounts
def require_instance_feature(request):
    """``authenticated_as_admin!`` then ``authorize! :admin_service_accounts``."""
    if not request[CALLER].user.admin:
        raise model.forbidden()
    if not request.app[STATE].service_accounts_available():
        raise model.forbidden()


async def create_instance_account(request):
    state, caller = request.app[STATE], request[CALLER]
    if not caller.user.admin:
        raise model.forbidden()
    attributes = await account_params(request)
    state.count_service_account_creation(caller.user)
    if not state.service_accounts_available():
        raise model.error_message(403, f'403 Forbidden - {CREATE_DENIED}')
    if not state.service_account_seat_available():
        raise model.error_message(403, f'403 Forbidden - {model.NO_SEATS_MESSAGE}')
    try:
        user = state.create_service_account(**attributes)
    except model.AccountError as error:
        raise model.bad_request(str(error)) from error
    return json_response(account_entity(user), status=201)


async def list_instance_accounts(request):
    require_instance_feature(request)
    return await sorted_page(request, request.app[STATE].service_accounts())


async def update_instance_account(request):
    state = request.app[STATE]
    require_instance_feature(request)
    user_id = path_user_id(request)
    attributes = await account_params(request)
    user = state.users.get(user_id)
    if user is None:
        raise model.record_not_found()
    if not user.service_account:
        raise model.error_message(400, 'User is not a service account')
    try:
        state.update_service_account(user, **attributes)
    except model.AccountError as error:
        raise model.error_message(400, str(error)) from error
    return json_response(account_entity(user))


# ------------------------------------------------------------- group and project accounts
class Scope:
    """What differs between group and project service accounts."""

    def __init__(self, kind):
        self.kind = kind
        # admin_service_accounts: group Owner, project Maintainer (or Owner), or an administrator.
        self.gate_level = model.OWNER if kind == 'group' else model.MAINTAINER

    def source(self, request):
        """The group or project, after the ``before`` block's checks: 401, 404, then 403."""
        state, caller = request.app[STATE], request[CALLER]
        source = api.find_source(request, self.kind, request.match_info['id'], caller)
        if not state.service_accounts_available() or state.access_level(caller.user, source) < self.gate_level:
            raise model.forbidden()
        return source

    def rotate_not_found(self):
        """A token that is not the account's: the group route's bare ``not_found!``, the project's named one."""
        return model.not_found() if self.kind == 'group' else model.not_found('Personal Access Token')

    def provisioned(self, state, source):
        return state.service_accounts(**{self.kind: source})

    def account(self, request, source):
        """An account this group or project provisioned; any other user is 404."""
        user_id = path_user_id(request)
        user = request.app[STATE].users.get(user_id)
        if user is None or not user.service_account or getattr(user, f'provisioned_by_{self.kind}_id') != source.id:
            raise model.not_found('User')
        return user

    def may_create_or_delete(self, state, caller, source):
        """create_service_account / delete_service_account on top of the gate.

        Groups: top-level only (GitLab 18.x), by an administrator, or by an Owner when the
        instance allows top-level group Owners to. Projects: whoever passes the gate.
        """
        if self.kind == 'project':
            return True
        if source.parent_id is not None:
            return False
        return caller.user.admin or state.settings.allow_top_level_group_owners_to_create_service_accounts


def scoped_handlers(scope):
    available = (lambda state: state.settings.project_service_accounts) if scope.kind == 'project' else None

    @endpoint(available=available)
    async def create_account(request):
        state, caller = request.app[STATE], request[CALLER]
        source = scope.source(request)
        attributes = await account_params(request)
        state.count_service_account_creation(caller.user)
        if not scope.may_create_or_delete(state, caller, source):
            raise model.bad_request(CREATE_IN_GROUP_DENIED if scope.kind == 'group' else CREATE_DENIED)
        if not state.service_account_seat_available():
            raise model.bad_request(model.NO_SEATS_MESSAGE)
        try:
            user = state.create_service_account(**attributes, **{scope.kind: source})
        except model.AccountError as error:
            raise model.bad_request(str(error)) from error
        return json_response(account_entity(user), status=201)

    @endpoint(available=available)
    async def list_accounts(request):
        source = scope.source(request)
        return await sorted_page(request, scope.provisioned(request.app[STATE], source))

    @endpoint(available=available)
    async def get_account(request):
        source = scope.source(request)
        return json_response(account_entity(scope.account(request, source)))

    @endpoint(available=available)
    async def update_account(request):
        state = request.app[STATE]
        source = scope.source(request)
        attributes = await account_params(request)
        user = scope.account(request, source)
        try:
            state.update_service_account(user, **attributes)
        except model.AccountError as error:
            raise model.error_message(400, str(error)) from error
        return json_response(account_entity(user))

    @endpoint(available=available)
    async def delete_account(request):
        state, caller = request.app[STATE], request[CALLER]
        source = scope.source(request)
        params = await Params.read(request)
        hard_delete = params.boolean('hard_delete')
        params.check()
        user = scope.account(request, source)
        if scope.kind == 'group' and not hard_delete and state.sole_owned_groups(user):
            raise model.error_message(409, 'User cannot be removed while is the sole-owner of a group')
        if not scope.may_create_or_delete(state, caller, source):
            raise model.forbidden()
        state.remove_user(user)
        return no_content()

    @endpoint(available=available)
    async def list_tokens(request):
        state = request.app[STATE]
        source = scope.source(request)
        params = await Params.read(request)
        filters = api.token_filters(params)
        params.check()
        user = scope.account(request, source)
        tokens = [t for t in state.tokens.values() if t.user_id == user.id]
        page, headers = paginate(request, api.filter_tokens(tokens, filters, state.clock.today()))
        return json_response([api.token_entity(state, t) for t in page], headers=headers)

    @endpoint(available=available)
    async def create_token(request):
        source = scope.source(request)
        attributes = await api.personal_token_params(request, model.PERSONAL_TOKEN_SCOPES)
        user = scope.account(request, source)
        return api.issue_personal_token(request, user, attributes)

    @endpoint(available=available)
    async def revoke_token(request):
        state = request.app[STATE]
        source = scope.source(request)
        user = scope.account(request, source)
        token = owned_token(state, user, request.match_info['token_id'])
        if token is None:
            raise model.not_found('Personal Access Token')
        token.revoked = True
        return no_content()

    @endpoint(available=available)
    async def rotate_token(request):
        state, caller = request.app[STATE], request[CALLER]
        source = scope.source(request)
        params = await Params.read(request)
        expires_at = params.date('expires_at')
        params.check()
        user = scope.account(request, source)
        token = owned_token(state, user, request.match_info['token_id'])
        if token is None:
            raise scope.rotate_not_found()
        new_token = state.rotate(token, caller.user, expires_at)
        # 200 as GitLab's code answers (`status :ok`); its OpenAPI document says 201.
        return json_response(api.token_entity(state, new_token, secret=True))

    base = f'{PREFIX}/{scope.kind}s/{{id}}/service_accounts'
    tokens = base + '/{user_id}/personal_access_tokens'
    return [
        web.post(base, create_account),
        web.get(base, list_accounts),
        web.get(base + '/{user_id}', get_account),
        web.patch(base + '/{user_id}', update_account),
        web.delete(base + '/{user_id}', delete_account),
        web.get(tokens, list_tokens),
        web.post(tokens, create_token),
        web.delete(tokens + '/{token_id}', revoke_token),
        web.post(tokens + '/{token_id}/rotate', rotate_token),
    ]


def owned_token(state, user, token_id):
    """One of this user's personal access tokens, by id."""
    token = state.tokens.get(int(token_id)) if token_id.isdigit() else None
    return token if token is not None and token.user_id == user.id and token.kind == 'personal' else None


def add_routes(app):
    routes = [
        web.post(PREFIX + '/service_accounts', create_instance_account),
        web.get(PREFIX + '/service_accounts', list_instance_accounts),
        web.patch(PREFIX + '/service_accounts/{user_id}', update_instance_account),
    ]
    for kind in ('group', 'project'):
        routes += scoped_handlers(Scope(kind))
    app.add_routes(routes)
