# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GitLab access tokens of users, projects and groups: find, decide, issue, revoke, report.

The token modules (their run: gitlab_token_run.py) and the rotation share everything here;
the modules differ only in the TokenOwner they build
(PersonalTokens, ServiceAccountTokens, ProjectTokens, GroupTokens): how the owner is
resolved and which python-gitlab manager holds its tokens. Secrets live only in the dict
GitLab returned and in the ``token`` result key.
"""

from __future__ import annotations

import datetime
import re

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import GitLabModuleError, gitlab_message

# Scopes GitLab accepts on project and group access tokens (and on personal ones).
RESOURCE_SCOPES = (
    'ai_features', 'api', 'create_runner', 'k8s_proxy', 'manage_runner', 'mcp', 'mcp_orbit',
    'read_api', 'read_observability', 'read_registry', 'read_repository',
    'read_virtual_registry', 'self_rotate', 'write_observability', 'write_registry',
    'write_repository', 'write_virtual_registry',
)
# Scopes only personal access tokens take; the last three only on administrators' tokens.
PERSONAL_ONLY_SCOPES = ('read_user', 'admin_mode', 'read_service_ping', 'sudo')
PERSONAL_SCOPES = tuple(sorted(RESOURCE_SCOPES + PERSONAL_ONLY_SCOPES))

ACCESS_LEVELS = {'guest': 10, 'planner': 15, 'reporter': 20, 'developer': 30,
                 'maintainer': 40, 'owner': 50}

DEFAULT_EXPIRES_IN_DAYS = 30

ADMIN_PAT_HINT = (
    'GitLab lets only administrators create personal access tokens with these scopes '
    'through the API: create the first token in the GitLab UI (User settings > Access '
    'tokens), after which this module can rotate it (rotation_method=rotate or '
    "self_rotate), or use an administrator's api_token")


ADMIN_SERVICE_ACCOUNT_HINT = (
    'Instance service accounts and their tokens are managed by administrators: use an '
    "administrator's api_token, or keep the token on a group service account (group) with "
    "the api_token of that group's Owner")


# ---- dates ---------------------------------------------------------------------------

def parse_date(value, option):
    """A YYYY-MM-DD string as a date, or a GitLabModuleError naming ``option``."""
    text = str(value).strip()
    if re.match(r'^\d{4}-\d{2}-\d{2}$', text):
        try:
            return datetime.date(int(text[:4]), int(text[5:7]), int(text[8:10]))
        except ValueError:
            pass
    raise GitLabModuleError('%s must be a date written YYYY-MM-DD, got %r' % (option, text))


def days_left(expires_at, today):
    """Whole days from ``today`` to the expiry date; None for a token that never expires.

    GitLab treats a token as expired from 00:00 UTC on its expiry date, so 0 or less
    means expired.
    """
    if not expires_at:
        return None
    return (parse_date(expires_at, 'expires_at') - today).days


def is_active(token, today):
    left = days_left(token.get('expires_at'), today)
    return (not token.get('revoked') and token.get('active', True) is not False
            and (left is None or left > 0))


def lifetime_days(token):
    """Whole days from the token's creation (GitLab's created_at, UTC) to its expiry; None
    when either is unknown or unreadable."""
    created, expires = token.get('created_at'), token.get('expires_at')
    try:
        return (datetime.date.fromisoformat(str(expires)[:10])
                - datetime.date.fromisoformat(str(created)[:10])).days
    except (TypeError, ValueError):
        return None


def token_state(token, today):
    """active, expired or revoked."""
    if token.get('revoked'):
        return 'revoked'
    return 'active' if is_active(token, today) else 'expired'


def new_expiry(today, expires_at, expires_in_days, rotate_before_days):
    """The expiry date for a token issued today, checked so it will not rotate again at once."""
    if expires_at:
        expiry = parse_date(expires_at, 'expires_at')
        if expiry <= today:
            raise GitLabModuleError(
                "expires_at %s is not in the future (GitLab's date is %s): give a later date"
                % (expiry, today))
        origin = 'expires_at %s is %d days away' % (expiry, (expiry - today).days)
    else:
        days = DEFAULT_EXPIRES_IN_DAYS if expires_in_days is None else expires_in_days
        expiry = today + datetime.timedelta(days=days)
        origin = 'expires_in_days (%d)' % days
    if (expiry - today).days <= rotate_before_days:
        raise GitLabModuleError(_due_at_once(origin, rotate_before_days))
    return expiry


def lifetime_problems(expires_in_days, rotate_before_days):
    """What makes a lifetime and a rotation threshold unusable, as messages (none: usable).
    Checked before any request; an expires_at date is checked once GitLab's date is known."""
    problems = []
    if rotate_before_days < 0:
        problems.append('rotate_before_days must be 0 or more, got %d' % rotate_before_days)
    if expires_in_days is not None and expires_in_days < 1:
        problems.append('expires_in_days must be at least 1, got %d' % expires_in_days)
    elif expires_in_days is not None and rotate_before_days >= 0 and rotate_before_days >= expires_in_days:
        problems.append(_due_at_once('expires_in_days (%d)' % expires_in_days, rotate_before_days))
    return problems


def _due_at_once(origin, rotate_before_days):
    return ('%s, not more than rotate_before_days (%d): a new token would be due for rotation at once and '
            'every run would rotate it again; give a longer lifetime or a smaller rotate_before_days'
            % (origin, rotate_before_days))


# ---- input checks --------------------------------------------------------------------

def check_scopes(scopes, allowed, noun):
    if not scopes:
        raise GitLabModuleError('scopes must name at least one scope, for example api')
    for scope in scopes:
        if scope in allowed:
            continue
        if scope in PERSONAL_ONLY_SCOPES:
            raise GitLabModuleError(
                'scopes: %s is not allowed on a %s; GitLab accepts it only on personal access '
                'tokens' % (scope, noun))
        raise GitLabModuleError(
            'scopes: unknown scope %r for a %s; valid scopes: %s'
            % (scope, noun, ', '.join(allowed)))


def parse_access_level(value):
    """An access level name or number as GitLab's number."""
    text = str(value).strip().lower()
    if text in ACCESS_LEVELS:
        return ACCESS_LEVELS[text]
    if text.isdigit() and int(text) in ACCESS_LEVELS.values():
        return int(text)
    raise GitLabModuleError(
        'access_level must be one of %s (or %s), got %r' % (
            ', '.join(ACCESS_LEVELS), ', '.join(str(n) for n in sorted(ACCESS_LEVELS.values())),
            value))


# ---- the decision ---------------------------------------------------------------------

class Decision:
    """What to do with the tokens named ``name``: created, rotated, replaced or none, and why."""

    def __init__(self, action, current=None, duplicates=(), reasons=()):
        self.action = action
        self.current = current
        self.duplicates = list(duplicates)
        self.reasons = list(reasons)


def newest_first(tokens):
    return sorted(tokens, key=lambda token: (token.get('created_at') or '', token.get('id') or 0),
                  reverse=True)


def decide(tokens, name, scopes, access_level, rotate_before_days, force, today):
    """The one decision over the tokens GitLab listed, for the token modules and the rotation.

    Only active tokens with exactly this name count; the newest (by ``created_at``, then
    id) is the current one and the others are duplicates. Scopes and role cannot change in
    place, so a difference needs a replacement; otherwise a token expiring within
    ``rotate_before_days`` (or ``force``) is rotated. ``rotate_before_days`` is a number of
    days, or a function of the current token that gives them (the rotation's threshold may
    depend on the token's lifetime). ``reasons`` says why, one sentence each.
    """
    candidates = newest_first(token for token in tokens
                              if token.get('name') == name and is_active(token, today))
    if not candidates:
        return Decision('created', reasons=['GitLab has no active token named %s' % name])
    current, duplicates = candidates[0], candidates[1:]
    reasons = []
    level = current.get('access_level')
    if set(current.get('scopes') or ()) != set(scopes):
        reasons.append('token %s has scopes %s, wanted %s' % (
            current['id'], ', '.join(sorted(current.get('scopes') or ())), ', '.join(sorted(scopes))))
    if access_level is not None and level is not None and level != access_level:
        reasons.append('token %s has access level %s, wanted %s' % (current['id'], level, access_level))
    if reasons:
        return Decision('replaced', current, duplicates, reasons)
    left = days_left(current.get('expires_at'), today)
    threshold = rotate_before_days(current) if callable(rotate_before_days) else rotate_before_days
    if left is not None and left <= threshold:
        reasons.append('token %s expires on %s (%d days left, threshold %d)'
                       % (current['id'], current['expires_at'], left, threshold))
    if force:
        reasons.append('replacement forced (force: true)')
    if reasons:
        return Decision('rotated', current, duplicates, reasons)
    return Decision('none', current, duplicates)


# ---- views (never a secret) ----------------------------------------------------------

def diff_view(token, with_access_level, active=True):
    if not token:
        return {}
    view = dict(id=token.get('id'), expires_at=token.get('expires_at'),
                scopes=sorted(token.get('scopes') or []), active=active)
    if with_access_level:
        view['access_level'] = token.get('access_level')
    return view


def token_itself(client):
    """GitLab's record of the token ``client`` authenticates with (GET
    /personal_access_tokens/self, which answers for every kind of access token), or None
    when GitLab refuses that token: revoked, expired or unknown. GitLabModuleError when
    GitLab does not say."""
    try:
        with client.errors('read the token itself (/personal_access_tokens/self)'):
            return client.personal_access_tokens.get('self').asdict()
    except GitLabModuleError as error:
        if error.status == 401:
            return None
        raise


def info_view(token, today, with_access_level):
    view = dict(
        id=token.get('id'), name=token.get('name'), description=token.get('description'),
        scopes=list(token.get('scopes') or []), user_id=token.get('user_id'),
        created_at=token.get('created_at'), last_used_at=token.get('last_used_at'),
        expires_at=token.get('expires_at'), days_left=days_left(token.get('expires_at'), today),
        state=token_state(token, today), revoked=bool(token.get('revoked')),
        active=is_active(token, today))
    if with_access_level:
        view['access_level'] = token.get('access_level')
    return view


# ---- where tokens live ---------------------------------------------------------------

class TokenOwner:
    """The user, project or group whose access tokens a module manages."""

    noun = 'access token'
    allowed_scopes = RESOURCE_SCOPES
    has_access_level = False
    list_hints = {}
    create_hints = {}

    def __init__(self, client):
        self.client = client

    def label(self):
        raise NotImplementedError

    def manager(self):
        """The python-gitlab manager that lists, rotates and revokes these tokens."""
        raise NotImplementedError

    def create_manager(self):
        return self.manager()

    def list_filters(self):
        return {}

    def result_fields(self, token):
        return {}

    def check_self_token(self, token):
        """Refuse a self-rotation whose api_token belongs to another owner."""

    def read_back(self, token):
        """``token`` as GitLab shows it now (a revoke's proof)."""
        return self.manager().get(token['id']).asdict()

    def self_rotate_manager(self):
        """The manager whose ``rotate('self')`` rotates the api_token itself."""
        return self.manager()

    def list_tokens(self, name=None, active_only=True):
        """Tokens as dicts, filtered by GitLab (search, state) and then by exact name."""
        filters = self.list_filters()
        if name:
            filters['search'] = name
        if active_only:
            filters['state'] = 'active'
        what = 'list the %ss%s of %s' % (self.noun, ' named %r' % name if name else '', self.label())
        with self.client.errors(what, self.list_hints):
            tokens = [item.asdict() for item in
                      self.manager().list(get_all=True, per_page=100, **filters)]
        return [token for token in tokens if not name or token.get('name') == name]

    def self_token(self):
        hints = {401: 'With rotation_method=self_rotate the api_token must be the active token '
                      'being rotated, and GitLab refused it: if it expired or was revoked it '
                      'cannot rotate itself, so issue a new one with rotation_method=rotate '
                      'or create_new and a token allowed to create tokens'}
        with self.client.errors('read the api_token itself (/personal_access_tokens/self)', hints):
            return self.client.personal_access_tokens.get('self').asdict()

    def create(self, attributes):
        what = 'create %s %r for %s' % (self.noun, attributes['name'], self.label())
        with self.client.errors(what, self.create_hints, write=True):
            return self.create_manager().create(attributes).asdict()

    def rotate(self, token, expires_at, self_rotate=False):
        target = 'self' if self_rotate else token['id']
        what = '%s %s %s (%r) of %s' % ('self-rotate' if self_rotate else 'rotate', self.noun,
                                        token['id'], token['name'], self.label())
        with self.client.errors(what, self.list_hints, write=True):
            manager = self.self_rotate_manager() if self_rotate else self.manager()
            # Always with an expiry: without one GitLab gives service-account tokens a week
            # (expiry enforced) or no expiry at all.
            rotated = manager.rotate(target, expires_at=expires_at.isoformat())
        if not isinstance(rotated, dict):
            raise GitLabModuleError(
                "Could not %s: GitLab's answer is not JSON, so the new token is unknown; it may "
                'have rotated: check with mobb.scm.gitlab_access_token_info' % what, maybe_applied=True)
        return rotated

    def revoke(self, token):
        """Revoke ``token``; return None only once GitLab has shown that it is revoked.

        GitLab answers a revoke with 204. python-gitlab takes any 2xx as done, but a 200
        from a proxy or login page in front of GitLab revoked nothing, so another 2xx
        counts only when reading the token back shows it revoked or inactive; if it does
        not, GitLabModuleError names the token as STILL ACTIVE. A failed DELETE (after the
        retries DELETE gets) raises GitLabModuleError as any failed GitLab call does.
        """
        what = 'revoke %s %s (%r) of %s' % (self.noun, token['id'], token['name'], self.label())
        with self.client.errors(what, self.list_hints):
            response = self.client.http_delete('%s/%s' % (self.manager().path, token['id']))
        if response.status_code == 204:
            return
        answer = 'GitLab answered HTTP %d with %s, not 204 No Content' % (
            response.status_code, gitlab_message(response.content) or '(an empty answer)')
        try:
            with self.client.errors('read back %s %s' % (self.noun, token['id']), self.list_hints):
                current = self.read_back(token)
        except GitLabModuleError as error:
            state, outcome = 'counts as', 'reading the token back failed (%s)' % error
        else:
            if current.get('revoked') or current.get('active') is False:
                return
            state, outcome = 'is', 'reading the token back shows it active'
        raise GitLabModuleError(
            "Could not %s: it %s STILL ACTIVE. %s, and %s. Check that api_url is GitLab's own "
            'address and that no proxy or login page answers in its place, then revoke it '
            'again (state=absent, token_id=%s)' % (what, state, answer, outcome, token['id']))


class PersonalTokens(TokenOwner):
    """Personal access tokens of one user: the named one, else the api_token's user."""

    noun = 'personal access token'
    allowed_scopes = PERSONAL_SCOPES
    list_hints = {401: 'Only administrators may manage the tokens of other users: check the '
                       'user, and that api_token is valid'}
    create_hints = {403: ADMIN_PAT_HINT}

    def __init__(self, client, username=None):
        super().__init__(client)
        self.username = username
        self._user_id = None

    def label(self):
        return "user '%s'" % self.username if self.username else "the api_token's user"

    def user_id(self):
        """The owner's id: one GET /users?username= or GET /user, only when first needed."""
        if self._user_id is None:
            if self.username:
                with self.client.errors("look up GitLab user '%s'" % self.username):
                    users = self.client.users.list(username=self.username, get_all=False)
                matches = [user for user in users if user.username.lower() == self.username.lower()]
                if not matches:
                    raise GitLabModuleError(
                        "user: GitLab has no user '%s' (or the api_token cannot see it); check "
                        'the username' % self.username)
                self._user_id = matches[0].id
            else:
                with self.client.errors("read the api_token's user (/user)"):
                    self.client.auth()
                self._user_id = self.client.user.id
                self.username = self.client.user.username
        return self._user_id

    def manager(self):
        return self.client.personal_access_tokens

    def create_manager(self):
        return self.client.users.get(self.user_id(), lazy=True).personal_access_tokens

    def list_filters(self):
        return {'user_id': self.user_id()}

    def result_fields(self, token):
        user_id = token.get('user_id') if token else None
        return {'user_id': user_id if user_id is not None else self._user_id}

    def check_self_token(self, token):
        if self.username and token.get('user_id') != self.user_id():
            raise GitLabModuleError(
                "rotation_method=self_rotate rotates the api_token itself, but api_token "
                "belongs to user id %s, not to user '%s'" % (token.get('user_id'), self.username))


class ServiceAccountMissing(GitLabModuleError):
    """The service account does not exist (or the api_token cannot see it).

    ``what`` says which account is missing; the message adds how to create it.
    """

    def __init__(self, what, advice):
        super().__init__('%s: %s' % (what, advice))
        self.what = what


class ServiceAccountTokens(TokenOwner):
    """Personal access tokens of one service account, found through ``accounts`` (the
    ServiceAccounts of module_utils/gitlab_service_accounts.py for the instance or a group).

    An instance account (no group) is an administrator's: its tokens go through the generic
    endpoints (create under /users/:id, list by user_id, rotate and revoke by id). A group
    account (of a top-level group) needs only that group's Owner: its tokens live under
    /groups/:id/service_accounts/:user_id/personal_access_tokens (python-gitlab 8.3.0+).
    """

    noun = 'personal access token'
    allowed_scopes = PERSONAL_SCOPES

    def __init__(self, client, username, accounts):
        super().__init__(client)
        self.username = username
        self.accounts = accounts
        self.group = accounts.group
        self._account = None
        if self.group:
            self.list_hints = {
                403: "Managing the tokens of a group service account needs the Owner role on group '%s' "
                     '(or an administrator)' % self.group,
                404: "Check that group '%s' exists, is a top-level group and holds service account '%s'"
                     % (self.group, username)}
        else:
            self.list_hints = {401: ADMIN_SERVICE_ACCOUNT_HINT, 403: ADMIN_SERVICE_ACCOUNT_HINT}
        self.create_hints = self.list_hints

    def label(self):
        return "service account '%s' of %s" % (self.username, self.accounts.label())

    def account(self):
        """The account (id, username, name, email): one lookup, only when first needed."""
        if self._account is None:
            account = self.accounts.find(self.username)
            if account is None:
                raise ServiceAccountMissing(
                    "GitLab has no service account '%s' in %s (or the api_token cannot see it)"
                    % (self.username, self.accounts.label()),
                    'create it with mobb.scm.gitlab_service_account (mobb.scm.gitlab_server_token creates '
                    'it with service_account_create: true), or check the username%s'
                    % ('' if self.group else ', and set group if it belongs to a group'))
            self._account = account
        return self._account

    def found(self, account):
        """Use ``account`` (just created, or found by the caller) without looking it up."""
        self._account = account

    def manager(self):
        if self.group:
            return self.accounts.token_manager(self.account())
        return self.client.personal_access_tokens

    def create_manager(self):
        if self.group:
            return self.manager()
        return self.client.users.get(self.account()['id'], lazy=True).personal_access_tokens

    def self_rotate_manager(self):
        # GitLab rotates a token with itself only at /personal_access_tokens/self/rotate;
        # under a group's path "self" would be taken for a token id.
        return self.client.personal_access_tokens

    def list_filters(self):
        return {} if self.group else {'user_id': self.account()['id']}

    def read_back(self, token):
        if not self.group:
            return super().read_back(token)
        # The group's token API has no single GET: find the token in the account's list.
        for item in self.manager().list(get_all=True, per_page=100, search=token['name']):
            if item.get_id() == token['id']:
                return item.asdict()
        raise GitLabModuleError("token %s is not listed among the tokens of %s" % (token['id'], self.label()))

    def result_fields(self, token):
        user_id = token.get('user_id') if token else None
        if user_id is None and self._account is not None:
            user_id = self._account['id']
        return {'user_id': user_id}

    def check_self_token(self, token):
        with self.client.errors("read the api_token's user (/user)"):
            self.client.auth()
        if self.client.user.username.lower() != self.username.lower():
            raise GitLabModuleError(
                "rotation_method=self_rotate rotates the api_token itself, but api_token belongs to "
                "user '%s', not to service account '%s'" % (self.client.user.username, self.username))


class ResourceTokens(TokenOwner):
    """Access tokens of a project or group, reached through a lazy object (no GET of it)."""

    kind = None
    role_needed = None
    has_access_level = True

    def __init__(self, client, resource):
        super().__init__(client)
        self.resource = resource
        self.list_hints = {
            401: "Check that api_token is valid and that its user has the %s on the %s: "
                 "GitLab requires it to manage the %s's access tokens"
                 % (self.role_needed, self.kind, self.kind),
            404: "The %s does not exist or the api_token's user cannot see it" % self.kind,
        }
        self.create_hints = self.list_hints

    def label(self):
        return "%s '%s'" % (self.kind, self.resource)

    def _parent(self):
        raise NotImplementedError

    def manager(self):
        return self._parent().access_tokens

    def result_fields(self, token):
        # GitLab 17.x+ names the owning resource in the token; without it only an id given
        # as a number is known, since resolving a path would cost a request.
        resource_id = token.get('resource_id') if token else None
        if resource_id is None and str(self.resource).isdigit():
            resource_id = int(self.resource)
        return {'%s_id' % self.kind: resource_id,
                'access_level': token.get('access_level') if token else None,
                'user_id': token.get('user_id') if token else None}


class ProjectTokens(ResourceTokens):
    """Access tokens of one project."""

    kind = 'project'
    noun = 'project access token'
    role_needed = 'Maintainer role or higher'

    def _parent(self):
        return self.client.projects.get(self.resource, lazy=True)


class GroupTokens(ResourceTokens):
    """Access tokens of one group."""

    kind = 'group'
    noun = 'group access token'
    role_needed = 'Owner role'

    def _parent(self):
        return self.client.groups.get(self.resource, lazy=True)


def token_owner(client, token_type, user=None, project=None, group=None, service_account=None, accounts=None):
    """The TokenOwner of a kind of token: personal (``user``; unset, the API user's own),
    project, group, or service_account (``service_account`` found through ``accounts``)."""
    if token_type == 'service_account':
        return ServiceAccountTokens(client, service_account, accounts)
    if token_type == 'project':
        return ProjectTokens(client, project)
    if token_type == 'group':
        return GroupTokens(client, group)
    return PersonalTokens(client, user)
