"""GitLab's members API for projects and groups, and the users routes service accounts need:
``GET|DELETE /users/:id`` and ``GET /users/:id/memberships``.

A user reaches a private project or group only through a membership (or as an administrator),
so a new service account sees nothing until it is added here.
"""
from __future__ import annotations

from aiohttp import web

from gitlab_server import api, model
from gitlab_server.api import CALLER, PREFIX, STATE, Params, endpoint, json_response, no_content, paginate

MEMBERSHIP_TYPES = {'Project': 'project', 'Namespace': 'group'}


# ---------------------------------------------------------------------------- entities
def member_entity(request, user, membership):
    body = api.user_basic(request, user)
    body.update({
        'access_level': membership.access_level,
        'created_at': model.iso_timestamp(membership.created_at),
        'expires_at': api.date_text(membership.expires_at),
        'membership_state': 'active',
    })
    return body


def user_entity(request, user, admin_view):
    """Entities::User for everyone; administrators get the UserWithAdmin fields as well."""
    body = api.user_basic(request, user)
    created = model.iso_timestamp(user.created_at)
    body.update({
        'created_at': created, 'bio': '', 'location': '', 'public_email': None, 'linkedin': '',
        'twitter': '', 'discord': '', 'website_url': '', 'organization': '', 'job_title': '',
        'pronouns': None, 'bot': user.bot, 'work_information': None,
    })
    if admin_view:
        body.update({
            'last_sign_in_at': None, 'confirmed_at': created, 'last_activity_on': None,
            'email': user.email, 'theme_id': 3, 'color_scheme_id': 1, 'projects_limit': 100000,
            'current_sign_in_at': None, 'identities': [],
            'can_create_group': not (user.bot or user.external),
            'can_create_project': not (user.bot or user.external),
            'two_factor_enabled': False, 'external': user.external, 'private_profile': False,
            'commit_email': user.email, 'is_admin': user.admin, 'note': None,
            'namespace_id': user.namespace_id, 'created_by': None, 'is_auditor': False,
            'using_license_seat': not user.bot,
            'provisioned_by_group_id': user.provisioned_by_group_id,
            'provisioned_by_project_id': user.provisioned_by_project_id,
        })
    return body


def membership_entity(kind, source, membership):
    return {
        'source_id': source.id, 'source_name': ' / '.join(source.full_path.split('/')),
        'source_type': 'Project' if kind == 'project' else 'Namespace',
        'access_level': membership.access_level,
    }


# --------------------------------------------------------------------------- users
def path_user(request):
    user = request.app[STATE].users.get(int(request.match_info['user_id']))
    if user is None:
        raise model.not_found('User')
    return user


@endpoint(scopes=('api', 'read_api', 'read_user'), anonymous=True)
async def get_user(request):
    caller = request[CALLER]
    user = path_user(request)
    admin_view = caller is not None and caller.user.admin
    return json_response(user_entity(request, user, admin_view))


async def delete_user(request):
    state, caller = request.app[STATE], request[CALLER]
    if not caller.user.admin:
        raise model.forbidden()
    params = await Params.read(request)
    hard_delete = params.boolean('hard_delete')
    params.check()
    user = path_user(request)
    if not hard_delete and state.sole_owned_groups(user):
        raise model.error_message(409, 'User cannot be removed while is the sole-owner of a group')
    state.remove_user(user)
    return no_content()


async def list_user_memberships(request):
    state, caller = request.app[STATE], request[CALLER]
    if not caller.user.admin:
        raise model.forbidden()
    params = await Params.read(request)
    wanted = params.choice('type', tuple(MEMBERSHIP_TYPES))
    params.check()
    user = path_user(request)
    found = []
    for kind, table in (('project', state.projects), ('group', state.groups)):
        if wanted and MEMBERSHIP_TYPES[wanted] != kind:
            continue
        for source in sorted(table.values(), key=lambda s: s.id):
            membership = state.membership(user.id, source)
            if membership is not None:
                found.append(membership_entity(kind, source, membership))
    page, headers = paginate(request, found)
    return json_response(page, headers=headers)


# -------------------------------------------------------------------------- members
def member_handlers(kind):
    """The members routes of projects or groups (``find_source`` first: 404 when invisible)."""

    def source_of(request):
        return api.find_source(request, kind, request.match_info['id'], request[CALLER])

    def authorize_admin_source(state, caller, source):
        """admin_project_member (Maintainer) or admin_group_member (Owner); else 403."""
        if state.access_level(caller.user, source) < model.manage_level(kind):
            raise model.forbidden()

    def authorize_role(state, caller, source, *levels):
        """Only an Owner (or administrator) grants, changes or removes the Owner role."""
        if model.OWNER in levels and state.access_level(caller.user, source) < model.OWNER:
            raise model.forbidden()

    def direct_member(state, source, raw_user_id):
        membership = state.membership(int(raw_user_id), source) if raw_user_id.isdigit() else None
        if membership is None:
            raise model.record_not_found()
        return state.users[int(raw_user_id)], membership

    async def member_params(request, with_user_id):
        """Grape's checks in declaration order, then the model's date check (its error hash)."""
        params = await Params.read(request)
        if params.values.get('access_level') in (None, ''):
            params.errors.append('access_level is missing')
        values = {
            'access_level': params.integer('access_level', choices=model.ACCESS_LEVELS),
            'user_id': params.string('user_id', required=True) if with_user_id else None,
            'expires_at': params.date('expires_at'),
            'expires_at_given': 'expires_at' in params.values,
        }
        params.check()
        state = request.app[STATE]
        if values['expires_at'] is not None and values['expires_at'] < state.clock.today():
            raise model.ApiError(400, {'message': {'expires_at': ['cannot be a date in the past']}})
        return values

    async def list_members(request):
        state = request.app[STATE]
        params = await Params.read(request)
        query = (params.string('query') or '').lower()
        params.check()
        members = [(u, m) for u, m in state.direct_members(source_of(request))
                   if query in u.username.lower() or query in u.name.lower()]
        page, headers = paginate(request, members)
        return json_response([member_entity(request, u, m) for u, m in page], headers=headers)

    async def list_all_members(request):
        state = request.app[STATE]
        page, headers = paginate(request, state.all_members(source_of(request)))
        return json_response([member_entity(request, u, m) for u, m in page], headers=headers)

    async def get_member(request):
        state = request.app[STATE]
        user, membership = direct_member(state, source_of(request), request.match_info['user_id'])
        return json_response(member_entity(request, user, membership))

    async def get_any_member(request):
        state = request.app[STATE]
        raw_user_id = request.match_info['user_id']
        found = {u.id: (u, m) for u, m in state.all_members(source_of(request))}
        if not raw_user_id.isdigit() or int(raw_user_id) not in found:
            raise model.record_not_found()
        return json_response(member_entity(request, *found[int(raw_user_id)]))

    async def add_member(request):
        state, caller = request.app[STATE], request[CALLER]
        values = await member_params(request, with_user_id=True)
        source = source_of(request)
        authorize_admin_source(state, caller, source)
        raw_user_id = values['user_id']
        user = state.users.get(int(raw_user_id)) if raw_user_id.isdigit() else None
        if user is None:
            raise model.not_found('User')
        if state.membership(user.id, source) is not None:
            raise model.error_message(409, 'Member already exists')
        authorize_role(state, caller, source, values['access_level'])
        state.add_member(user, source, values['access_level'], values['expires_at'])
        return json_response(member_entity(request, user, state.membership(user.id, source)), status=201)

    async def update_member(request):
        state, caller = request.app[STATE], request[CALLER]
        values = await member_params(request, with_user_id=False)
        source = source_of(request)
        authorize_admin_source(state, caller, source)
        user, membership = direct_member(state, source, request.match_info['user_id'])
        authorize_role(state, caller, source, membership.access_level, values['access_level'])
        expires_at = values['expires_at'] if values['expires_at_given'] else membership.expires_at
        state.add_member(user, source, values['access_level'], expires_at)
        return json_response(member_entity(request, user, state.membership(user.id, source)))

    async def remove_member(request):
        state, caller = request.app[STATE], request[CALLER]
        source = source_of(request)
        user, membership = direct_member(state, source, request.match_info['user_id'])
        if caller.user.id != user.id:
            authorize_admin_source(state, caller, source)
            authorize_role(state, caller, source, membership.access_level)
        last_owner = (kind == 'group' and membership.access_level == model.OWNER
                      and [m.access_level for _u, m in state.direct_members(source)].count(model.OWNER) == 1)
        if last_owner:
            raise model.forbidden()
        state.remove_member(user.id, source)
        return no_content()

    base = f'{PREFIX}/{kind}s/{{id}}/members'
    return [
        web.get(base, list_members),
        web.post(base, add_member),
        web.get(base + '/all', list_all_members),
        web.get(base + '/all/{user_id}', get_any_member),
        web.get(base + '/{user_id}', get_member),
        web.put(base + '/{user_id}', update_member),
        web.delete(base + '/{user_id}', remove_member),
    ]


def add_routes(app):
    routes = [
        web.get(PREFIX + r'/users/{user_id:\d+}', get_user),
        web.delete(PREFIX + r'/users/{user_id:\d+}', delete_user),
        web.get(PREFIX + r'/users/{user_id:\d+}/memberships', list_user_memberships),
    ]
    for kind in ('project', 'group'):
        routes += member_handlers(kind)
    app.add_routes(routes)
