# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GitLab service accounts and their memberships: the one place that knows them.

A service account is an instance account (administrators only, ``/service_accounts``) or
an account of a top-level group (``/groups/:id/service_accounts``). It starts with no
access: it reaches a project or group only through a membership (the members API).
ServiceAccounts finds, creates, renames and deletes accounts; Memberships reads and
changes the memberships of one account. Every GitLab call goes through
``client.errors``, so failures are one-line GitLabModuleErrors that say what to do.
"""

from __future__ import annotations

import collections
import re

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import GitLabModuleError, gitlab_message
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_tokens import ACCESS_LEVELS, parse_access_level

try:
    import gitlab
    from gitlab.v4.objects import GroupServiceAccount
except ImportError:
    # connect() reports a missing python-gitlab before anything here runs.
    gitlab = None
    GroupServiceAccount = None

# One declared membership: kind is project or group, ref its id or full path as given, id
# GitLab's id of it once find_targets looked it up (the membership calls then address it by id).
Membership = collections.namedtuple('Membership', ['kind', 'ref', 'access_level', 'id'], defaults=[None])

MEMBERSHIP_KINDS = ('project', 'group')
DEFAULT_MEMBERSHIP_LEVEL = ACCESS_LEVELS['developer']
# GitLab's names for every level a membership can have, the two below guest included.
ROLE_NAMES = {0: 'no_access', 5: 'minimal_access', **{level: name for name, level in ACCESS_LEVELS.items()}}

PYTHON_GITLAB_FOR_SERVICE_ACCOUNTS = '8.3.0'

INSTANCE_ADMIN_HINT = (
    "Only administrators manage instance service accounts: use an administrator's token, or a "
    "top-level group's service account (group) with a group Owner's token")
GROUP_OWNER_HINT = (
    "Managing a group's service accounts needs the Owner role on the group (or an "
    "administrator's api_token), and a GitLab licence that includes them (Premium or Ultimate)")
GROUP_CREATOR_HINT = (
    "Creating and deleting a group's service accounts needs an administrator's api_token, or a "
    "group Owner's once an administrator turns on the instance setting "
    "allow_top_level_group_owners_to_create_service_accounts (Admin area > Settings > General > "
    "Account and limit)")
GROUP_NOT_FOUND_HINT = (
    "The group does not exist or the api_token's user cannot see it: set group to the id or full "
    "path of a top-level group")
SEATS_HINT = (
    "GitLab's licence has no seat left for another service account (GitLab Premium counts them "
    "against its paid seats): free or add a seat, or reuse an existing service account")
TIER_HINT = (
    "This GitLab's licence does not include service accounts, or not for this group: they need "
    "GitLab Premium or Ultimate and a top-level group")
TAKEN_HINT = (
    'Another user (a person, a bot, or a service account of the instance or of another group) '
    'already has this username or e-mail address: choose another username')
INSTANCE_API_HINT = (
    'This GitLab has no instance service accounts API (GET /service_accounts, GitLab 17.1 or '
    'later): upgrade GitLab, or use a top-level group\'s service account (group)')
ACCOUNT_GONE_HINT = 'The service account is gone (deleted meanwhile?): run again'
SOLE_OWNER_HINT = (
    'GitLab keeps an account that is the sole Owner of a group: give those groups another Owner '
    'first, or set hard_delete=true, which deletes them too')
MEMBERSHIPS_ADMIN_HINT = (
    "Only administrators can list a user's memberships (GET /users/:id/memberships), which "
    "purge_memberships needs: use an administrator's api_token, or leave purge_memberships false")


def _member_refused_hint(message):
    if 'inherited' in message.lower():
        return ('GitLab does not let a membership be lower than the role the account inherits from '
                "a parent group: raise access_level, or change the parent group's membership")
    return ''


MEMBER_WRITE_HINTS = {
    400: _member_refused_hint,
    403: "Adding and changing members needs the Maintainer role on a project or the Owner role "
         "on a group (Owner to give the Owner role), or an administrator's api_token",
    409: 'GitLab says the account is a member already (added meanwhile?): run again',
}


def role_name(level):
    """GitLab's name of an access level number, such as developer for 30."""
    if level is None:
        return None
    return ROLE_NAMES.get(level, str(level))


# ---- declared memberships ------------------------------------------------------------

def parse_memberships(values, option='memberships'):
    """The declared memberships as Membership tuples, or a GitLabModuleError naming the entry.

    Each entry is a dict with exactly one of ``project`` and ``group`` (an id or full path)
    and an ``access_level`` (name or number, default developer, guest or higher). A target
    declared twice is refused; an id and a path of the same target can only be told apart
    by GitLab, so callers that resolve targets check again.
    """
    memberships = []
    seen = {}
    for index, entry in enumerate(values or []):
        where = '%s[%d]' % (option, index)
        if not isinstance(entry, dict):
            raise GitLabModuleError(
                '%s must be a dict such as {project: acme/app, access_level: developer}, got %r'
                % (where, entry))
        unknown = sorted(set(entry) - set(MEMBERSHIP_KINDS) - {'access_level'})
        if unknown:
            raise GitLabModuleError(
                '%s has unknown key(s) %s: an entry takes project or group, and access_level'
                % (where, ', '.join(unknown)))
        kind, ref = _membership_target(entry, where)
        level = _membership_level(entry.get('access_level'), where)
        key = (kind, ref.lower())
        if key in seen:
            raise GitLabModuleError(
                '%s declares %s %s again, as %s[%d] did: declare each project or group once, '
                'with the role the account needs there' % (where, kind, ref, option, seen[key]))
        seen[key] = index
        memberships.append(Membership(kind, ref, level))
    return memberships


def _membership_target(entry, where):
    given = [kind for kind in MEMBERSHIP_KINDS if entry.get(kind) is not None]
    if len(given) != 1:
        names = 'both project and group' if given else 'neither project nor group'
        raise GitLabModuleError(
            '%s names %s: give exactly one, as an id or full path, for example '
            '{project: acme/app, access_level: developer}; use one entry per target' % (where, names))
    kind = given[0]
    ref = str(entry[kind]).strip()
    if not ref:
        raise GitLabModuleError('%s has an empty %s: give its id or full path, such as acme/app'
                                % (where, kind))
    return kind, ref


def _membership_level(value, where):
    if value is None:
        return DEFAULT_MEMBERSHIP_LEVEL
    text = str(value).strip().lower()
    if text in ('no_access', 'minimal_access') or (text.isdigit() and int(text) < ACCESS_LEVELS['guest']):
        raise GitLabModuleError(
            '%s: access_level %s is below guest, and a membership needs guest (10) or higher: '
            'to take a membership away, leave the entry out and set purge_memberships' % (where, value))
    try:
        return parse_access_level(value)
    except GitLabModuleError as error:
        raise GitLabModuleError('%s: %s' % (where, error)) from None


def membership_view(membership, target=None, level=None):
    """A membership as the modules return it: what was declared and what GitLab holds."""
    level = membership.access_level if level is None else level
    view = dict(kind=membership.kind, ref=membership.ref, access_level=level, role=role_name(level),
                id=None, path=None)
    if target:
        view.update(id=target['id'], path=target['path'])
    return view


class TargetsMissing(GitLabModuleError):
    """Projects or groups of the memberships that GitLab does not show the api_token."""


def find_targets(client, memberships, option='memberships'):
    """Each membership's project or group as GitLab knows it, one GET each, before any write.

    Returns ``(memberships, targets)``: the memberships with GitLab's ids, which the membership
    calls then use, and the targets as dicts (kind, id, path, name). Every target GitLab
    answers 404 for (unknown, or not visible to the api_token: GitLab answers both alike) is
    named in one TargetsMissing; a target declared twice (by id and by path) is refused too.
    """
    found, targets, unknown, seen = [], [], [], {}
    for index, membership in enumerate(memberships):
        target = _find_target(client, membership, option)
        if target is None:
            unknown.append(membership)
            continue
        key = (target['kind'], target['id'])
        if key in seen:
            raise GitLabModuleError(
                '%s[%d] names %s %s (id %s), as %s[%d] does: declare each project or group once'
                % (option, index, target['kind'], target['path'], target['id'], option, seen[key]))
        seen[key] = index
        found.append(membership._replace(id=target['id']))
        targets.append(target)
    if unknown:
        raise TargetsMissing(
            '%s: %s not found or not visible to the token: check the full path (or id) of each, and that '
            "the token's user can see it: a member there, or an administrator"
            % (option, ' and '.join("%s '%s'" % (membership.kind, membership.ref) for membership in unknown)))
    return found, targets


def _find_target(client, membership, option):
    """The target as a dict, or None when GitLab answers 404."""
    kind, ref = membership.kind, membership.ref
    manager = client.projects if kind == 'project' else client.groups
    with client.errors('find %s %s of %s' % (kind, ref, option)):
        try:
            found = manager.get(ref)
        except gitlab.exceptions.GitlabGetError as error:
            if error.response_code == 404:
                return None
            raise
    path = found.path_with_namespace if kind == 'project' else found.full_path
    return dict(kind=kind, id=found.id, path=path, name=found.name)


# ---- service accounts ----------------------------------------------------------------

def _needs_newer_python_gitlab(feature):
    version = getattr(gitlab, '__version__', 'unknown')
    return GitLabModuleError(
        '%s needs python-gitlab %s or later (this host has %s): upgrade it where the module runs, '
        "for example with pip install 'python-gitlab>=%s'"
        % (feature, PYTHON_GITLAB_FOR_SERVICE_ACCOUNTS, version, PYTHON_GITLAB_FOR_SERVICE_ACCOUNTS))


def _required(owner, attribute, feature):
    """A manager or method python-gitlab has only from 8.3.0 on, or a clear failure."""
    value = getattr(owner, attribute, None)
    if value is None:
        raise _needs_newer_python_gitlab(feature)
    return value


def top_level_part(path):
    return path.strip('/').split('/')[0]


def check_top_level_group(group):
    """The group's id or path without surrounding slashes; a subgroup path is refused before
    any request (an id is checked when it matters, on create)."""
    path = str(group).strip().strip('/')
    if not path:
        raise GitLabModuleError('group must not be empty: give the id or full path of a top-level group')
    if '/' in path:
        raise GitLabModuleError(
            "group: service accounts belong to top-level groups, and '%s' is a subgroup: use '%s' "
            "(its top-level group), and give the account a membership of '%s'"
            % (path, top_level_part(path), path))
    return path


def _account_view(data):
    return dict(id=data.get('id'), username=data.get('username'), name=data.get('name'),
                email=data.get('email'))


class ServiceAccounts:
    """The service accounts of the instance (``group`` None) or of one top-level group."""

    def __init__(self, client, group=None):
        self.client = client
        self.group = None if group is None else check_top_level_group(group)

    # ---- where they live

    def label(self):
        return 'the instance' if self.group is None else "group '%s'" % self.group

    def account_label(self, account):
        return "service account '%s' (id %s) of %s" % (account['username'], account['id'], self.label())

    def _group_object(self):
        return self.client.groups.get(self.group, lazy=True)

    def _manager(self):
        if self.group is None:
            return _required(self.client, 'service_accounts', 'Managing instance service accounts')
        return self._group_object().service_accounts

    def _hints(self, operation):
        """Advice per HTTP status for an operation: list, read, create, rename or delete."""
        hints = {400: _creation_hint, 409: SOLE_OWNER_HINT}
        if self.group is None:
            hints.update({403: _instance_hint,
                          404: INSTANCE_API_HINT if operation == 'list' else ACCOUNT_GONE_HINT})
        else:
            hints.update({403: GROUP_CREATOR_HINT if operation in ('create', 'delete') else GROUP_OWNER_HINT,
                          404: _group_not_found_hint})
        return hints

    # ---- the accounts

    def _listed(self):
        with self.client.errors('list the service accounts of %s' % self.label(), self._hints('list')):
            accounts = self._manager().list(get_all=True, per_page=100)
        return [_account_view(account.asdict()) for account in accounts]

    def owner(self, account):
        """Who provisioned the account: None for the instance, else ``('group'|'project', id)``.

        GitLab's instance list holds every service account, group and project ones too;
        only the user entity (an administrator's view, GitLab Premium) tells them apart.
        """
        with self.client.errors("read service account '%s' (user %s)" % (account['username'], account['id']),
                                self._hints('read')):
            user = self.client.users.get(account['id']).attributes
        for kind in ('group', 'project'):
            if user.get('provisioned_by_%s_id' % kind):
                return kind, user['provisioned_by_%s_id' % kind]
        return None

    def find_all(self):
        """Every account of this scope, as dicts (id, username, name, email): one paginated
        list, and for the instance one GET /users/:id per account to leave out group and
        project accounts."""
        accounts = self._listed()
        if self.group is None:
            accounts = [account for account in accounts if self.owner(account) is None]
        return accounts

    def find(self, username):
        """The account with this username (any case) as a dict, or None: one paginated list,
        and for the instance one GET /users/:id of the match. An instance lookup that finds a
        group's or project's account is refused: that account is not the instance's to manage."""
        wanted = username.strip().lower()
        for account in self._listed():
            if str(account['username']).lower() != wanted:
                continue
            owner = self.owner(account) if self.group is None else None
            if owner is not None:
                raise GitLabModuleError(_not_the_instances(account, *owner))
            return account
        return None

    def create(self, username, name=None):
        """Create the account; a group given by id is first read to refuse a subgroup."""
        if self.group is not None and self.group.isdigit():
            self._check_group_id_is_top_level()
        attributes = {'username': username}
        if name:
            attributes['name'] = name
        what = "create service account '%s' of %s" % (username, self.label())
        manager = self._manager()
        with self.client.errors(what, self._hints('create'), write=True):
            created = manager.create(attributes)
        return _account_view(created.asdict())

    def _check_group_id_is_top_level(self):
        with self.client.errors('read group %s' % self.group, {404: GROUP_NOT_FOUND_HINT}):
            found = self.client.groups.get(self.group)
        if found.attributes.get('parent_id'):
            path = found.full_path
            raise GitLabModuleError(
                "group: service accounts belong to top-level groups, and group %s is the subgroup "
                "'%s': use '%s' (its top-level group), and give the account a membership of '%s'"
                % (self.group, path, top_level_part(path), path))

    def update(self, account, name):
        """Set the account's display name; returns the account as GitLab now has it."""
        manager = self._manager()
        _required(manager, 'update', "Renaming a group's service account")
        what = 'rename %s to %r' % (self.account_label(account), name)
        with self.client.errors(what, self._hints('rename'), write=True):
            updated = manager.update(account['id'], {'name': name})
        return _account_view(dict(account, **updated))

    def delete(self, account, hard_delete=False):
        """Delete the account (instance: DELETE /users/:id); its tokens die with it."""
        query = {'hard_delete': 'true'} if hard_delete else {}
        what = 'delete %s' % self.account_label(account)
        with self.client.errors(what, self._hints('delete')):
            if self.group is None:
                self.client.users.delete(account['id'], query_data=query)
            else:
                self._manager().delete(account['id'], query_data=query)

    # ---- their tokens

    def token_manager(self, account):
        """python-gitlab's manager of a group account's personal access tokens; None for an
        instance account, whose tokens are plain personal access tokens of its user."""
        if self.group is None:
            return None
        account_object = GroupServiceAccount(self._manager(), {'id': account['id']})
        return _required(account_object, 'access_tokens', "A group service account's tokens")


def _not_the_instances(account, kind, owner_id):
    what = "service account '%s' (id %s) belongs to %s %s, not to the instance" % (
        account['username'], account['id'], kind, owner_id)
    if kind == 'group':
        return '%s: set group to that group to manage it, or choose another username' % what
    return '%s, and only instance and group accounts are managed here: choose another username' % what


def _instance_hint(message):
    lowered = message.lower()
    if 'seats' in lowered:
        return SEATS_HINT
    if 'permission to create a service account' in lowered:
        return TIER_HINT
    return INSTANCE_ADMIN_HINT


def _creation_hint(message):
    lowered = message.lower()
    if 'seats' in lowered:
        return SEATS_HINT
    if 'already been taken' in lowered:
        return TAKEN_HINT
    if 'permission to create a service account in this group' in lowered:
        # GitLab's create service refuses a group Owner (or a subgroup) with a 400.
        return GROUP_CREATOR_HINT
    if 'permission to create a service account' in lowered:
        return TIER_HINT
    return ''


def _group_not_found_hint(message):
    if 'user not found' in message.lower():
        return ACCOUNT_GONE_HINT
    return GROUP_NOT_FOUND_HINT


# ---- memberships of one account --------------------------------------------------------

def _names_a_missing_source(error):
    """True when a 404 says the project or group is unknown, not that the user is no member."""
    message = gitlab_message(error.response_body or error.error_message)
    return bool(re.search(r'\b(project|group|namespace) not found', message, re.IGNORECASE))


def _level_number(value):
    """An access level as GitLab sends it in a membership (number, digits, or nested)."""
    if isinstance(value, dict):
        value = value.get('access_level')
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class Memberships:
    """The project and group memberships of one user (a service account), by user id."""

    def __init__(self, client, user_id, username=None):
        self.client = client
        self.user_id = user_id
        # Only for messages: the account's username reads better than its id.
        self.username = username

    def _source(self, kind, ref):
        manager = self.client.projects if kind == 'project' else self.client.groups
        return manager.get(ref, lazy=True)

    def _target(self, membership):
        """The membership's project or group, by the id find_targets found, else as given."""
        return self._source(membership.kind, membership.ref if membership.id is None else membership.id)

    def _who(self):
        if self.username:
            return "service account '%s' (user %s)" % (self.username, self.user_id)
        return 'user %s' % self.user_id

    def _label(self, kind, ref):
        return '%s in %s %s' % (self._who(), kind, ref)

    def _not_found_hints(self, kind, ref):
        return {404: "GitLab has no %s %s, or the api_token's user cannot see it: check its full "
                     "path (or id)" % (kind, ref)}

    def _write_hints(self, kind, ref):
        return {**MEMBER_WRITE_HINTS, **self._not_found_hints(kind, ref)}

    def _read_level(self, membership, manager_name):
        kind, ref = membership.kind, membership.ref
        what = 'read the membership of %s' % self._label(kind, ref)
        with self.client.errors(what, self._not_found_hints(kind, ref)):
            try:
                member = getattr(self._target(membership), manager_name).get(self.user_id)
            except gitlab.exceptions.GitlabGetError as error:
                if error.response_code == 404 and not _names_a_missing_source(error):
                    return None
                raise
        return _level_number(member.attributes.get('access_level'))

    def current(self, membership):
        """The user's direct access level in the membership's target, or None."""
        return self._read_level(membership, 'members')

    def effective(self, membership):
        """The user's highest access level there, direct or inherited, or None."""
        return self._read_level(membership, 'members_all')

    def ensure(self, membership, check_mode):
        """Give the user the declared level (POST when absent, PUT when it differs);
        returns ``(level before, level after)``. Check mode reads and predicts."""
        before = self.current(membership)
        wanted = membership.access_level
        if before == wanted or check_mode:
            return before, wanted
        kind, ref = membership.kind, membership.ref
        members = self._target(membership).members
        if before is None:
            what = 'add %s as %s' % (self._label(kind, ref), role_name(wanted))
            with self.client.errors(what, self._write_hints(kind, ref), write=True):
                members.create({'user_id': self.user_id, 'access_level': wanted})
        else:
            what = 'change the role of %s from %s to %s' % (
                self._label(kind, ref), role_name(before), role_name(wanted))
            with self.client.errors(what, self._write_hints(kind, ref), write=True):
                members.update(self.user_id, {'access_level': wanted})
        return before, wanted

    def remove(self, kind, ref):
        """Remove the user's direct membership; False when it was already gone."""
        what = 'remove %s' % self._label(kind, ref)
        with self.client.errors(what, self._write_hints(kind, ref)):
            try:
                self._source(kind, ref).members.delete(self.user_id)
            except gitlab.exceptions.GitlabDeleteError as error:
                if error.response_code == 404 and not _names_a_missing_source(error):
                    return False
                raise
        return True

    def all(self):
        """Every direct membership of the user, as dicts (kind, id, name, access_level);
        GitLab lets only administrators ask."""
        what = 'list the memberships of %s' % self._who()
        with self.client.errors(what, {403: MEMBERSHIPS_ADMIN_HINT}):
            items = self.client.users.get(self.user_id, lazy=True).memberships.list(
                get_all=True, per_page=100)
        return [dict(kind='project' if item.attributes.get('source_type') == 'Project' else 'group',
                     id=item.attributes.get('source_id'), name=item.attributes.get('source_name'),
                     access_level=_level_number(item.attributes.get('access_level')))
                for item in items]

    def missing(self, memberships):
        """The memberships the user does not reach at the declared level, directly or by
        inheritance, as ``(membership, level it has or None)``; one GET each."""
        short = []
        for membership in memberships:
            level = self.effective(membership)
            if level is None or level < membership.access_level:
                short.append((membership, level))
        return short


# ---- one account and its memberships, ensured --------------------------------------------

class ServiceAccountSetup:
    """Ensure one service account and its declared memberships, for gitlab_service_account and
    for the rotation of a service account's token; it holds what the run found and did (in
    check mode: would do), never a secret.

    Another run may ensure the same account at the same time, and GitLab's answer to a write
    may be lost: a create or membership write that fails while what it was to make is there
    now has been done, by whoever did it, and the run goes on with it.
    """

    def __init__(self, accounts, username, name=None, check_mode=False, inherited=False):
        self.accounts = accounts
        self.username = username
        self.name = name
        self.check_mode = check_mode
        # The rotation's need (inherited=True): the account reaches the declared level, directly or
        # through a parent group. The module's: its direct membership has exactly that level.
        self.inherited = inherited
        self.memberships = []   # as declared, with their targets' ids once find_targets ran
        self.targets = []       # their projects and groups, as find_targets found them
        self.missing = False    # the read found no account
        self.account = None     # the account, once known
        self.created = False    # this run created it (in check mode: would)
        self.renamed = False    # this run set its name (in check mode: would)
        self.lacking = []       # (membership, its level or None), as find_lacking found them
        self.added = []         # memberships this run gave it (in check mode: would give)
        self.predicted = False  # check mode: created and added are what a run would do

    def found(self, account):
        """The account the read found, or None."""
        self.account = account
        self.missing = account is None

    def find_targets(self, memberships, option='memberships'):
        """Look up each declared membership's project or group once, before any write."""
        self.memberships, self.targets = find_targets(self.accounts.client, memberships, option)

    def find_lacking(self):
        """The declared memberships the account does not hold: all of them for a missing
        account, else one GET each."""
        if self.missing:
            self.lacking = [(membership, None) for membership in self.memberships]
        else:
            self.lacking = self._memberships().missing(self.memberships)
        return self.lacking

    def predict(self):
        """Check mode: what a run would create and give, from find_lacking; no request."""
        self.predicted = True
        self.created = self.missing
        self.added = [membership for membership, _level in self.lacking]

    def create(self):
        """Create the missing account (check mode: predict it, with no id yet). When the create
        fails but the account is there now, that account is used; else the error is raised."""
        if self.check_mode:
            self.account = dict(id=None, username=self.username, name=self.name, email=None)
            self.created = True
            return self.account
        try:
            self.account = self.accounts.create(self.username, self.name)
            self.created = True
        except GitLabModuleError:
            self.account = self._account_now()
            if self.account is None:
                raise
        return self.account

    def _account_now(self):
        try:
            return self.accounts.find(self.username)
        except GitLabModuleError:
            return None

    def rename(self):
        """Give the account the declared name when it has another (check mode: predict)."""
        if self.name is None or self.name == self.account['name']:
            return self.account
        if self.check_mode:
            self.account = dict(self.account, name=self.name)
        else:
            self.account = self.accounts.update(self.account, self.name)
        self.renamed = True
        return self.account

    def give(self, membership):
        """Give the account the membership's level (POST or PUT; check mode: predict);
        returns ``(level before, level after)``. When the write fails but the account holds
        the membership now, ``before`` is that level too: nothing was this run's to do."""
        if self.account['id'] is None:
            self.added.append(membership)
            return None, membership.access_level
        memberships = self._memberships()
        try:
            before, after = memberships.ensure(membership, self.check_mode)
        except GitLabModuleError:
            if self._lacks(memberships, membership):
                raise
            return membership.access_level, membership.access_level
        if before != after:
            self.added.append(membership)
        return before, after

    def _lacks(self, memberships, membership):
        try:
            if self.inherited:
                return bool(memberships.missing([membership]))
            return memberships.current(membership) != membership.access_level
        except GitLabModuleError:
            return True

    def _memberships(self):
        return Memberships(self.accounts.client, self.account['id'], self.account['username'])
