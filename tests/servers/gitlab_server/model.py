"""The state of one GitLab instance: users, groups, projects, memberships, tokens, clock.

Everything here is plain Python with no HTTP: the API layer (:mod:`gitlab_server.api`)
parses requests, calls these methods and renders what they return or raise. Behaviour
follows GitLab 18.x as written down in ``tests/servers/README.md``.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
import secrets
import uuid

UTC = dt.timezone.utc

GUEST, PLANNER, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 15, 20, 30, 40, 50
ACCESS_LEVELS = (GUEST, PLANNER, REPORTER, DEVELOPER, MAINTAINER, OWNER)

# Scopes a non-administrator may hold, and the ones only administrators may hold.
USER_SCOPES = (
    'api', 'read_api', 'read_user', 'create_runner', 'manage_runner', 'k8s_proxy',
    'self_rotate', 'read_repository', 'write_repository', 'read_registry', 'write_registry',
    'read_virtual_registry', 'write_virtual_registry', 'read_observability',
    'write_observability', 'ai_features',
)
ADMIN_ONLY_SCOPES = ('sudo', 'admin_mode', 'read_service_ping')
PERSONAL_TOKEN_SCOPES = USER_SCOPES + ADMIN_ONLY_SCOPES
RESOURCE_TOKEN_SCOPES = tuple(scope for scope in USER_SCOPES if scope != 'read_user')
SELF_SERVICE_SCOPES = ('k8s_proxy', 'self_rotate')

ROTATION_DEFAULT_DAYS = 7
# GitLab only writes last_used_at when the stored value is older than this.
LAST_USED_RESOLUTION = dt.timedelta(minutes=10)
MAX_TEXT_LENGTH = 255
ADMIN_TOKEN_NAME = 'admin'
ADMIN_TOKEN_SCOPES = ('api', 'read_user')

HUMAN, PROJECT_BOT, SERVICE_ACCOUNT = 'human', 'project_bot', 'service_account'
# HasUserType::BOT_USER_TYPES includes service accounts, so the users API says `bot: true` for them.
BOT_USER_TYPES = (PROJECT_BOT, SERVICE_ACCOUNT)
TIERS = ('free', 'premium', 'ultimate')
SERVICE_ACCOUNT_NAME = 'Service account user'
# Gitlab::ApplicationRateLimiter's service_account_creation: per user, on every create route.
SERVICE_ACCOUNT_CREATION_LIMIT = 10
SERVICE_ACCOUNT_CREATION_PERIOD = dt.timedelta(minutes=1)
RATE_LIMITED_MESSAGE = 'This endpoint has been requested too many times. Try again later.'
NO_SEATS_MESSAGE = 'No more seats are available to create Service Account User'
USERNAME_PATTERN = re.compile(r'^[A-Za-z0-9_.][A-Za-z0-9_.-]*$')
USERNAME_FORMAT_ERROR = ("Username can contain only letters, digits, '_', '-' and '.'. "
                         "Cannot start with '-' or end in '.', '.git' or '.atom'.")
EMAIL_PATTERN = re.compile(r'^[^@\s]+@[^@\s]+$')
# Days before expiry on which the daily worker sends a project/group token's webhook event;
# the extended set with the project/group setting of GitLab MR !178266.
EXPIRY_NOTICE_DAYS = (7,)
EXTENDED_EXPIRY_NOTICE_DAYS = (60, 30, 7)


class ApiError(Exception):
    """A GitLab error response: HTTP status, JSON body, extra headers."""

    def __init__(self, status, body, headers=None):
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = headers or {}


def error_message(status, text):
    return ApiError(status, {'message': text})


def bad_request(reason=None):
    return error_message(400, f'400 Bad request - {reason}' if reason else '400 Bad request')


def unauthorized():
    return error_message(401, '401 Unauthorized')


def forbidden():
    return error_message(403, '403 Forbidden')


def not_found(thing=None):
    return error_message(404, f'404 {thing} Not Found' if thing else '404 Not Found')


def record_not_found():
    """What GitLab answers when a lookup by id raises ActiveRecord::RecordNotFound."""
    return error_message(404, '404 Not found')


def method_not_allowed():
    return error_message(405, '405 Method Not Allowed')


class AccountError(ValueError):
    """A user the model refuses; the message is GitLab's sentence of its errors."""

    def __init__(self, messages):
        super().__init__(to_sentence(messages))
        self.messages = messages


def param_errors(messages):
    """Grape's parameter-validation response."""
    return ApiError(400, {'error': ', '.join(messages)})


def to_sentence(messages):
    """Join model errors the way Rails' Array#to_sentence does."""
    if len(messages) <= 1:
        return ''.join(messages)
    if len(messages) == 2:
        return f'{messages[0]} and {messages[1]}'
    return ', '.join(messages[:-1]) + f', and {messages[-1]}'


def iso_timestamp(moment):
    """GitLab's timestamp format: UTC, milliseconds, ``Z``."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime('%Y-%m-%dT%H:%M:%S.') + f'{moment.microsecond // 1000:03d}Z'


def new_secret():
    """A legacy-format token value: ``glpat-`` and 20 URL-safe characters."""
    return 'glpat-' + secrets.token_urlsafe(15)


class Clock:
    """Real time plus an offset that tests move; every date the instance uses comes from here."""

    def __init__(self):
        self.offset = dt.timedelta()

    def now(self):
        return dt.datetime.now(UTC) + self.offset

    def today(self):
        return self.now().date()

    def advance(self, days):
        self.offset += dt.timedelta(days=days)

    def set(self, moment):
        self.offset = moment - dt.datetime.now(UTC)


@dataclasses.dataclass
class Settings:
    max_lifetime_days: int = 365
    require_expiry: bool = True
    version: str = '18.1.1-ee'
    revision: str = 'ceb07b24cb0'
    allow_top_level_group_owners_to_create_service_accounts: bool = False
    service_access_tokens_expiration_enforced: bool = True
    tier: str = 'ultimate'
    # Premium only: service accounts may be created while there are fewer than this (None: no limit).
    licensed_seats: int | None = None
    # Project service accounts arrived in GitLab 18.11; off, their routes do not exist.
    project_service_accounts: bool = False


@dataclasses.dataclass
class User:
    id: int
    username: str
    name: str
    created_at: dt.datetime
    admin: bool = False
    user_type: str = HUMAN
    email: str = ''
    # Users' personal namespaces share the id sequence of groups, as in GitLab.
    namespace_id: int = 0
    external: bool = False
    provisioned_by_group_id: int | None = None
    provisioned_by_project_id: int | None = None

    @property
    def bot(self):
        return self.user_type in BOT_USER_TYPES

    @property
    def project_bot(self):
        """The bot user of a project or group access token (GitLab calls both ``project_bot``)."""
        return self.user_type == PROJECT_BOT

    @property
    def service_account(self):
        return self.user_type == SERVICE_ACCOUNT


@dataclasses.dataclass
class Membership:
    access_level: int
    created_at: dt.datetime
    expires_at: dt.date | None = None


@dataclasses.dataclass
class Group:
    id: int
    full_path: str
    name: str
    parent_id: int | None
    created_at: dt.datetime
    # extended_grat_expiry_webhook_execute: expiry events also at 60 and 30 days.
    extended_expiry_webhooks: bool = False

    @property
    def path(self):
        return self.full_path.rsplit('/', 1)[-1]


@dataclasses.dataclass
class Project:
    id: int
    full_path: str
    name: str
    created_at: dt.datetime
    group_id: int | None = None
    owner_id: int | None = None
    # extended_prat_expiry_webhook_execute: expiry events also at 60 and 30 days.
    extended_expiry_webhooks: bool = False

    @property
    def path(self):
        return self.full_path.rsplit('/', 1)[-1]


@dataclasses.dataclass
class Token:
    id: int
    kind: str
    name: str
    scopes: list
    user_id: int
    created_at: dt.datetime
    secret: str
    expires_at: dt.date | None = None
    description: str | None = None
    revoked: bool = False
    last_used_at: dt.datetime | None = None
    last_used_ips: list = dataclasses.field(default_factory=list)
    previous_id: int | None = None
    resource_type: str | None = None
    resource_id: int | None = None
    # Days-before-expiry intervals whose webhook event the expiry worker has sent (never twice).
    expiry_notified: set = dataclasses.field(default_factory=set)

    def expired(self, today):
        """Expired from 00:00 UTC on the expiry date itself."""
        return self.expires_at is not None and self.expires_at <= today

    def active(self, today):
        return not self.revoked and not self.expired(today)


@dataclasses.dataclass
class Hook:
    """A project or group webhook; ``token`` is its secret, never rendered."""

    id: int
    source_type: str
    source_id: int
    url: str
    created_at: dt.datetime
    token: str | None = None
    resource_access_token_events: bool = False
    enable_ssl_verification: bool = True
    # The other trigger flags GitLab takes (push_events, ...): stored and echoed, never fired.
    flags: dict = dataclasses.field(default_factory=dict)
    # X-Gitlab-Webhook-UUID: one per hook, stable.
    uuid: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))


class Instance:
    """One GitLab: its data, settings, clock and the rules that govern them."""

    def __init__(self, name, clock=None, host='127.0.0.1'):
        self.name = name
        self.host = host
        self.clock = clock or Clock()
        self.issued_secrets = []
        self.reset()

    def reset(self):
        """Back to a fresh GitLab with one administrator and its token (issued secrets stay known)."""
        self.clock.offset = dt.timedelta()
        self.settings = Settings()
        self.users = {}
        self.groups = {}
        self.projects = {}
        self.members = {}
        self.tokens = {}
        self.tokens_by_secret = {}
        self.hooks = {}
        # user id -> when each of their recent service-account creations was attempted
        self.service_account_creations = {}
        self._ids = {'user': 0, 'group': 0, 'project': 0, 'token': 0, 'hook': 0}
        admin = self.add_user('root', name='Administrator', admin=True)
        # The administrator's token never expires, so tests that move the clock keep control.
        self.admin_token = self.add_token(
            'personal', admin, ADMIN_TOKEN_NAME, list(ADMIN_TOKEN_SCOPES), expires_at=None)

    def snapshot(self):
        """Everything a failed seed must roll back to."""
        return (dict(self.users), dict(self.groups), dict(self.projects), dict(self.members),
                dict(self.tokens), dict(self.tokens_by_secret), dict(self._ids), list(self.issued_secrets))

    def restore(self, saved):
        (self.users, self.groups, self.projects, self.members, self.tokens,
         self.tokens_by_secret, self._ids, self.issued_secrets) = saved

    def _next_id(self, kind):
        self._ids[kind] += 1
        return self._ids[kind]

    # ----------------------------------------------------------------- users and resources
    def add_user(self, username, name=None, admin=False, user_type=HUMAN, email=None, **attributes):
        if self.find_user_by_username(username):
            raise ValueError(f'user {username!r} already exists')
        user = User(
            id=self._next_id('user'), username=username, name=name or username,
            created_at=self.clock.now(), admin=admin, user_type=user_type,
            email=email or f'{username}@example.com', namespace_id=self._next_id('group'),
            **attributes,
        )
        self.users[user.id] = user
        return user

    def find_user_by_email(self, email):
        wanted = email.lower()
        return next((u for u in self.users.values() if u.email.lower() == wanted), None)

    def remove_user(self, user):
        """Users::DestroyService: the user, its tokens, memberships and personal projects go."""
        for project in [p for p in self.projects.values() if p.owner_id == user.id]:
            self.remove_project(project)
        for token in [t for t in self.tokens.values() if t.user_id == user.id]:
            del self.tokens[token.id]
            del self.tokens_by_secret[token.secret]
        for key in [k for k in self.members if k[2] == user.id]:
            del self.members[key]
        self.service_account_creations.pop(user.id, None)
        del self.users[user.id]

    def remove_project(self, project):
        for key in [k for k in self.members if k[:2] == ('project', project.id)]:
            del self.members[key]
        for token in self.resource_tokens(project):
            del self.tokens[token.id]
            del self.tokens_by_secret[token.secret]
        for hook in self.hooks_of(project):
            del self.hooks[hook.id]
        del self.projects[project.id]

    def sole_owned_groups(self, user):
        """Groups where this user is the only direct Owner (``User#can_be_removed?`` is false then)."""
        owned = []
        for (kind, source_id, user_id), membership in self.members.items():
            if kind != 'group' or user_id != user.id or membership.access_level != OWNER:
                continue
            owners = [k for k, m in self.members.items()
                      if k[:2] == ('group', source_id) and m.access_level == OWNER]
            if len(owners) == 1:
                owned.append(self.groups[source_id])
        return owned

    def find_user_by_username(self, username):
        wanted = username.lower()
        return next((u for u in self.users.values() if u.username.lower() == wanted), None)

    def find_group_by_path(self, full_path):
        wanted = full_path.strip('/').lower()
        return next((g for g in self.groups.values() if g.full_path.lower() == wanted), None)

    def find_project_by_path(self, full_path):
        wanted = full_path.strip('/').lower()
        return next((p for p in self.projects.values() if p.full_path.lower() == wanted), None)

    def ensure_group(self, full_path):
        """The group at this path, creating it and any missing parent groups."""
        full_path = full_path.strip('/')
        if not full_path:
            raise ValueError('a group path must not be empty')
        existing = self.find_group_by_path(full_path)
        if existing:
            return existing
        parent = None
        if '/' in full_path:
            parent = self.ensure_group(full_path.rsplit('/', 1)[0])
        elif self.find_user_by_username(full_path):
            raise ValueError(f'{full_path!r} is a user namespace, not a group')
        group = Group(
            id=self._next_id('group'), full_path=full_path, name=full_path.rsplit('/', 1)[-1],
            parent_id=parent.id if parent else None, created_at=self.clock.now(),
        )
        self.groups[group.id] = group
        return group

    def add_project(self, full_path):
        full_path = full_path.strip('/')
        if '/' not in full_path:
            raise ValueError(f'project path {full_path!r} needs a namespace: "group/project"')
        if self.find_project_by_path(full_path):
            raise ValueError(f'project {full_path!r} already exists')
        namespace = full_path.rsplit('/', 1)[0]
        project = Project(
            id=self._next_id('project'), full_path=full_path,
            name=full_path.rsplit('/', 1)[-1], created_at=self.clock.now(),
        )
        owner = self.find_user_by_username(namespace) if '/' not in namespace else None
        if owner and not self.find_group_by_path(namespace):
            project.owner_id = owner.id
        else:
            project.group_id = self.ensure_group(namespace).id
        self.projects[project.id] = project
        return project

    def add_member(self, user, source, access_level, expires_at=None):
        """Add or change a direct membership (a change keeps its creation time)."""
        if access_level not in ACCESS_LEVELS:
            raise ValueError(f'access_level {access_level!r} is not one of {list(ACCESS_LEVELS)}')
        key = (source_kind(source), source.id, user.id)
        existing = self.members.get(key)
        self.members[key] = Membership(
            access_level, existing.created_at if existing else self.clock.now(), expires_at)

    def membership(self, user_id, source):
        """The user's direct membership of this project or group, None when absent or expired."""
        membership = self.members.get((source_kind(source), source.id, user_id))
        if membership is None or (membership.expires_at and membership.expires_at <= self.clock.today()):
            return None
        return membership

    def remove_member(self, user_id, source):
        del self.members[(source_kind(source), source.id, user_id)]

    def direct_members(self, source):
        """(user, membership) of every direct member, by user id."""
        kind = source_kind(source)
        found = [(self.users[user_id], self.membership(user_id, source))
                 for (k, source_id, user_id) in self.members if k == kind and source_id == source.id]
        return sorted([(u, m) for u, m in found if m is not None], key=lambda pair: pair[0].id)

    def all_members(self, source):
        """Direct and inherited members, each user once with their highest role (``members/all``)."""
        sources = [source]
        if isinstance(source, Project) and source.group_id:
            sources += self.group_ancestry(source.group_id)
        elif isinstance(source, Group) and source.parent_id:
            sources += self.group_ancestry(source.parent_id)
        best = {}
        for each in sources:
            for user, membership in self.direct_members(each):
                if user.id not in best or membership.access_level > best[user.id][1].access_level:
                    best[user.id] = (user, membership)
        return [best[user_id] for user_id in sorted(best)]

    def group_ancestry(self, group_id):
        """This group and its parents, nearest first."""
        chain = []
        while group_id is not None:
            group = self.groups[group_id]
            chain.append(group)
            group_id = group.parent_id
        return chain

    def direct_access(self, user, source):
        membership = self.membership(user.id, source)
        return membership.access_level if membership else 0

    def inherited_group_access(self, user, group_id):
        return max((self.direct_access(user, g) for g in self.group_ancestry(group_id)), default=0)

    def access_level(self, user, source):
        """The user's effective role on a project or group; administrators act as Owner."""
        return OWNER if user.admin else self.member_access_level(user, source)

    def member_access_level(self, user, source):
        """The role the user's memberships give (they inherit downwards from parent groups)."""
        if isinstance(source, Project):
            if source.owner_id == user.id:
                return OWNER
            inherited = self.inherited_group_access(user, source.group_id) if source.group_id else 0
            return max(self.direct_access(user, source), inherited)
        return self.inherited_group_access(user, source.id)

    def can_read(self, user, source):
        """Every modelled project and group is private: members, members below, and admins see it."""
        if self.access_level(user, source) > 0:
            return True
        if isinstance(source, Group):
            return any(
                self.access_level(user, project) > 0
                for project in self.projects.values()
                if project.group_id and source.id in {g.id for g in self.group_ancestry(project.group_id)})
        return False

    def resolve_source(self, kind, ref):
        """A project or group by numeric id or full path, or None."""
        table = self.projects if kind == 'project' else self.groups
        if ref.isdigit():
            return table.get(int(ref))
        finder = self.find_project_by_path if kind == 'project' else self.find_group_by_path
        return finder(ref)

    # ------------------------------------------------------------------- service accounts
    def service_accounts(self, group=None, project=None):
        """Service accounts by id: every one, or those a group or project provisioned."""
        accounts = sorted((u for u in self.users.values() if u.service_account), key=lambda u: u.id)
        if group is not None:
            accounts = [u for u in accounts if u.provisioned_by_group_id == group.id]
        if project is not None:
            accounts = [u for u in accounts if u.provisioned_by_project_id == project.id]
        return accounts

    def service_accounts_available(self):
        """The licensed feature: Premium and Ultimate (GitLab 18.x docs)."""
        return self.settings.tier != 'free'

    def service_account_seat_available(self):
        """Premium allows one service account per licensed seat; Ultimate has no limit."""
        if self.settings.tier != 'premium' or self.settings.licensed_seats is None:
            return True
        return len(self.service_accounts()) < self.settings.licensed_seats

    def count_service_account_creation(self, user):
        """Count one creation attempt by this user; 429 beyond the limit within a minute (instance clock)."""
        now = self.clock.now()
        recent = [moment for moment in self.service_account_creations.get(user.id, [])
                  if abs(now - moment) < SERVICE_ACCOUNT_CREATION_PERIOD]
        recent.append(now)
        self.service_account_creations[user.id] = recent
        if len(recent) > SERVICE_ACCOUNT_CREATION_LIMIT:
            retry_after = str(int(SERVICE_ACCOUNT_CREATION_PERIOD.total_seconds()))
            raise ApiError(429, {'message': {'error': RATE_LIMITED_MESSAGE}}, {'Retry-After': retry_after})

    def username_taken(self, username, exclude=None):
        """Usernames share one namespace with top-level groups, case-insensitively."""
        user = self.find_user_by_username(username)
        if user is not None and user is not exclude:
            return True
        wanted = username.lower()
        return any(g.parent_id is None and g.full_path.lower() == wanted for g in self.groups.values())

    def generated_username(self, prefix):
        """Gitlab::Utils::UsernameAndEmailGenerator: the prefix, 32 hex characters, a counter if taken."""
        base = f'{prefix}_{secrets.token_hex(16)}'
        candidate, counter = base, 0
        while self.username_taken(candidate):
            counter += 1
            candidate = f'{base}{counter}'
        return candidate

    def account_errors(self, name=None, username=None, email=None, exclude=None):
        """User model validation of these attributes, as full messages (None: not being set)."""
        errors = []
        if email is not None:
            other = self.find_user_by_email(email)
            if not EMAIL_PATTERN.match(email):
                errors.append('Email is invalid')
            elif other is not None and other is not exclude:
                errors.append('Email has already been taken')
        if name is not None and len(name) > MAX_TEXT_LENGTH:
            errors.append(f'Name is too long (maximum is {MAX_TEXT_LENGTH} characters)')
        if username is not None:
            if not USERNAME_PATTERN.match(username) or username.endswith(('.', '.git', '.atom')):
                errors.append(USERNAME_FORMAT_ERROR)
            elif len(username) > MAX_TEXT_LENGTH:
                errors.append(f'Username is too long (maximum is {MAX_TEXT_LENGTH} characters)')
            elif self.username_taken(username, exclude):
                errors.append('Username has already been taken')
        return errors

    def create_service_account(self, name=None, username=None, email=None, group=None, project=None):
        """The create services' user, external, with generated defaults; AccountError when refused.

        The default email is built from the generated username even when a username is given,
        as GitLab's generator does.
        """
        prefix = 'service_account'
        if group is not None:
            prefix += f'_group_{group.id}'
        elif project is not None:
            prefix += f'_project_{project.id}'
        generated = self.generated_username(prefix)
        username = username or generated
        email = email or f'{generated}@noreply.{self.host}'
        name = name or SERVICE_ACCOUNT_NAME
        errors = self.account_errors(name, username, email)
        if errors:
            raise AccountError(errors)
        return self.add_user(
            username, name=name, user_type=SERVICE_ACCOUNT, email=email, external=True,
            provisioned_by_group_id=group.id if group else None,
            provisioned_by_project_id=project.id if project else None)

    def update_service_account(self, user, name=None, username=None, email=None):
        """Change the given attributes (blanks are never given: GitLab drops them); AccountError when refused."""
        errors = self.account_errors(name, username, email, exclude=user)
        if errors:
            raise AccountError(errors)
        user.name = name or user.name
        user.username = username or user.username
        user.email = email or user.email
        return user

    # ----------------------------------------------------------------------------- tokens
    def add_token(self, kind, user, name, scopes, expires_at, description=None,
                  previous_id=None, resource=None, created_at=None):
        secret = new_secret()
        token = Token(
            id=self._next_id('token'), kind=kind, name=name, scopes=list(scopes), user_id=user.id,
            created_at=created_at or self.clock.now(), secret=secret, expires_at=expires_at,
            description=description, previous_id=previous_id,
            resource_type=source_kind(resource) if resource else None,
            resource_id=resource.id if resource else None,
        )
        self.tokens[token.id] = token
        self.tokens_by_secret[secret] = token
        self.issued_secrets.append(secret)
        return token

    def resource_of(self, token):
        if token.resource_type == 'project':
            return self.projects.get(token.resource_id)
        if token.resource_type == 'group':
            return self.groups.get(token.resource_id)
        return None

    def token_access_level(self, token):
        resource = self.resource_of(token)
        if resource is None:
            return None
        membership = self.members.get((token.resource_type, resource.id, token.user_id))
        return membership.access_level if membership else 0

    def default_expiry(self, days):
        return self.clock.today() + dt.timedelta(days=days) if self.settings.require_expiry else None

    def max_expiry(self):
        return self.clock.today() + dt.timedelta(days=self.settings.max_lifetime_days)

    def service_account_expiry_enforced(self):
        """ServiceAccountTokenValidator#expiry_enforced? on Self-Managed: always on the Free tier."""
        return self.settings.tier == 'free' or self.settings.service_access_tokens_expiration_enforced

    def expiry_required(self, user):
        if user.service_account:
            return self.service_account_expiry_enforced()
        return self.settings.require_expiry

    def creation_expiry(self, user):
        """The expiry of a new personal token whose request named none."""
        if user.service_account:
            return self.max_expiry() if self.service_account_expiry_enforced() else None
        return self.default_expiry(self.settings.max_lifetime_days)

    def rotation_expiry(self, user):
        """The expiry of a rotated token whose request named none: a week (never past the maximum)."""
        if user.service_account:
            if not self.service_account_expiry_enforced():
                return None
            return min(self.clock.today() + dt.timedelta(days=ROTATION_DEFAULT_DAYS), self.max_expiry())
        return self.default_expiry(ROTATION_DEFAULT_DAYS)

    def token_model_errors(self, name, description, expires_at, scopes, expiry_required=None):
        """Rails model validation of a new token, as full messages."""
        errors = []
        if not name or not name.strip():
            errors.append("Name can't be blank")
        elif len(name) > MAX_TEXT_LENGTH:
            errors.append(f'Name is too long (maximum is {MAX_TEXT_LENGTH} characters)')
        if description is not None and len(description) > MAX_TEXT_LENGTH:
            errors.append(f'Description is too long (maximum is {MAX_TEXT_LENGTH} characters)')
        if not scopes:
            errors.append("Scopes can't be blank")
        if expiry_required is None:
            expiry_required = self.settings.require_expiry
        if expires_at is None and expiry_required:
            errors.append("Expires at can't be blank")
        if expires_at is not None and expires_at > self.max_expiry():
            errors.append(f'Expires at must be before {self.max_expiry().isoformat()}')
        return errors

    def create_resource_token(self, resource, creator, name, scopes, expires_at, description,
                              access_level):
        """ResourceAccessTokens::CreateService: a bot user, its membership, its token."""
        kind = source_kind(resource)
        can_create = (creator.admin or (not creator.project_bot
                                        and self.access_level(creator, resource) >= manage_level(kind)))
        if not can_create:
            raise bad_request(f'User does not have permission to create {kind} access token')
        if not creator.project_bot and self.access_level(creator, resource) < access_level:
            raise bad_request('Access level of the token contains permissions not held by the creating user')
        if expires_at is None:
            expires_at = self.default_expiry(self.settings.max_lifetime_days)
        errors = self.token_model_errors(name, description, expires_at, scopes)
        if errors:
            raise bad_request(to_sentence(errors))
        bot = self.add_bot_user(resource, name)
        self.add_member(bot, resource, access_level)
        return self.add_token(kind, bot, name, scopes, expires_at, description, resource=resource)

    def add_bot_user(self, resource, name):
        kind = source_kind(resource)
        username = f'{kind}_{resource.id}_bot_{secrets.token_hex(16)}'
        return self.add_user(username, name=name, user_type=PROJECT_BOT, email=f'{username}@noreply.{self.host}')

    def rotate(self, token, caller, expires_at, check_role=False):
        """PersonalAccessTokens::RotateService; returns the new token.

        ``check_role`` is the project/group variant used by ``.../access_tokens/:id/rotate``:
        the caller must hold the token's role. Self-rotation and rotation by PAT id skip it.
        """
        if token.revoked:
            raise bad_request('Token already revoked')
        resource = self.resource_of(token)
        if check_role and resource is not None and not caller.admin:
            held = self.access_level(caller, resource)
            if held < manage_level(token.resource_type) or held < self.token_access_level(token):
                raise bad_request('Not eligible to rotate tokens with permissions not held by the user')
        owner = self.users[token.user_id]
        if expires_at is None:
            expires_at = self.rotation_expiry(owner)
        errors = self.token_model_errors(token.name, token.description, expires_at, token.scopes,
                                         self.expiry_required(owner))
        if errors:
            raise bad_request(to_sentence(errors))
        token.revoked = True
        return self.add_token(
            token.kind, owner, token.name, token.scopes, expires_at,
            token.description, previous_id=token.id, resource=resource)

    def revoke_descendants(self, token):
        """Reuse detection: revoke every still-active token rotated from this one, transitively."""
        revoked = []
        frontier = [token.id]
        while frontier:
            parent_id = frontier.pop()
            for child in self.tokens.values():
                if child.previous_id == parent_id:
                    frontier.append(child.id)
                    if not child.revoked:
                        child.revoked = True
                        revoked.append(child.id)
        return revoked

    def touch(self, token, remote_ip):
        now = self.clock.now()
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
            token.last_used_at = now
        if remote_ip and remote_ip not in token.last_used_ips:
            token.last_used_ips = ([remote_ip] + token.last_used_ips)[:5]

    def resource_tokens(self, resource):
        kind = source_kind(resource)
        return [t for t in self.tokens.values() if t.resource_type == kind and t.resource_id == resource.id]

    # ------------------------------------------------------------------------------ hooks
    def add_hook(self, source, url, **attributes):
        hook = Hook(id=self._next_id('hook'), source_type=source_kind(source), source_id=source.id,
                    url=url, created_at=self.clock.now(), **attributes)
        self.hooks[hook.id] = hook
        return hook

    def hooks_of(self, source):
        kind = source_kind(source)
        return [h for h in sorted(self.hooks.values(), key=lambda h: h.id)
                if h.source_type == kind and h.source_id == source.id]

    def find_hook(self, source, hook_id):
        hook = self.hooks.get(int(hook_id)) if str(hook_id).isdigit() else None
        if hook is None or hook.source_type != source_kind(source) or hook.source_id != source.id:
            return None
        return hook

    def ancestor_groups(self, source):
        """The groups above a project or group, nearest first."""
        parent_id = source.group_id if isinstance(source, Project) else source.parent_id
        return self.group_ancestry(parent_id) if parent_id else []

    def token_event_hooks(self, resource):
        """Hooks with access-token events on this project or group and on the groups above it."""
        sources = [resource] + self.ancestor_groups(resource)
        return [h for source in sources for h in self.hooks_of(source) if h.resource_access_token_events]

    def expiring_token_events(self, after, through):
        """PersonalAccessTokens::ExpiringWorker for each day D with ``after < D <= through``.

        Every active project/group token whose expiry is exactly one of its notice intervals
        (7 days, or 60, 30 and 7 with the extended setting) after D gives one event, once per
        interval: returns ``[(day, token, resource, interval)]`` by day then token id, and marks
        the intervals sent.
        """
        events = []
        for token in sorted(self.tokens.values(), key=lambda t: t.id):
            resource = self.resource_of(token)
            if resource is None or token.revoked or token.expires_at is None:
                continue
            intervals = EXTENDED_EXPIRY_NOTICE_DAYS if resource.extended_expiry_webhooks else EXPIRY_NOTICE_DAYS
            for interval in intervals:
                day = token.expires_at - dt.timedelta(days=interval)
                if after < day <= through and interval not in token.expiry_notified:
                    token.expiry_notified.add(interval)
                    events.append((day, token, resource, interval))
        events.sort(key=lambda event: (event[0], event[1].id))
        return events


def source_kind(source):
    return 'project' if isinstance(source, Project) else 'group'


def manage_level(kind):
    """The role that may create, list, rotate and revoke a project's or group's access tokens."""
    return MAINTAINER if kind == 'project' else OWNER
