"""Decision logic, expiry arithmetic and input checks of the token modules (no GitLab needed)."""
from __future__ import annotations

import datetime

import pytest

from ansible_collections.mobb.scm.plugins.module_utils.gitlab import GitLabModuleError
from ansible_collections.mobb.scm.plugins.module_utils.gitlab_tokens import (
    PERSONAL_SCOPES, RESOURCE_SCOPES, check_scopes, days_left, decide, diff_view, info_view,
    is_active, new_expiry, parse_access_level, parse_date, token_state)

TODAY = datetime.date(2026, 3, 10)


def token(token_id, *, name='mobb', expires_in=30, scopes=('api',), revoked=False, created=None,
          access_level=None, active=None):
    """A token as GitLab lists it, expiring ``expires_in`` days after TODAY (None: never)."""
    expires_at = None if expires_in is None else (TODAY + datetime.timedelta(days=expires_in)).isoformat()
    entry = {
        'id': token_id, 'name': name, 'scopes': list(scopes), 'revoked': revoked,
        'expires_at': expires_at, 'created_at': created or f'2026-01-{token_id:02d}T10:00:00.000Z',
        'active': (not revoked and (expires_in is None or expires_in > 0)) if active is None else active,
    }
    if access_level is not None:
        entry['access_level'] = access_level
    return entry


def run_decide(tokens, scopes=('api',), access_level=None, rotate_before_days=7, force=False):
    return decide(tokens, 'mobb', list(scopes), access_level, rotate_before_days, force, TODAY)


# ---- expiry arithmetic -----------------------------------------------------------------

@pytest.mark.parametrize('expires_at, expected', [
    ('2026-03-11', 1), ('2026-03-10', 0), ('2026-03-09', -1), ('2027-03-10', 365),
    ('2026-04-09', 30), (None, None), ('', None),
])
def test_days_left_counts_whole_days_from_gitlabs_date(expires_at, expected):
    assert days_left(expires_at, TODAY) == expected


def test_token_expires_at_midnight_utc_of_its_date():
    assert is_active(token(1, expires_in=1), TODAY)
    assert not is_active(token(1, expires_in=0, active=True), TODAY)
    assert token_state(token(1, expires_in=0, active=True), TODAY) == 'expired'


@pytest.mark.parametrize('entry, state', [
    (token(1), 'active'),
    (token(1, expires_in=None), 'active'),
    (token(1, expires_in=-3), 'expired'),
    (token(1, revoked=True), 'revoked'),
    (token(1, expires_in=-3, revoked=True), 'revoked'),
    # GitLab's own flag wins when it says inactive and the date does not explain why.
    (token(1, active=False), 'expired'),
])
def test_token_state(entry, state):
    assert token_state(entry, TODAY) == state


def test_new_expiry_defaults_to_thirty_days():
    assert new_expiry(TODAY, None, None, 7) == datetime.date(2026, 4, 9)


def test_new_expiry_from_days_and_from_a_date():
    assert new_expiry(TODAY, None, 90, 14) == datetime.date(2026, 6, 8)
    assert new_expiry(TODAY, '2026-12-31', None, 7) == datetime.date(2026, 12, 31)


@pytest.mark.parametrize('expires_at, expires_in_days, rotate_before_days, message', [
    ('2026-03-10', None, 7, r'expires_at 2026-03-10 is not in the future \(GitLab.s date is 2026-03-10\)'),
    ('2025-01-01', None, 7, r'expires_at 2025-01-01 is not in the future'),
    ('2026-03-15', None, 7, r'expires_at 2026-03-15 is 5 days away, not more than rotate_before_days \(7\)'),
    (None, 7, 7, r'expires_in_days \(7\), not more than rotate_before_days \(7\): a new token would be due'),
    (None, None, 30, r'expires_in_days \(30\), not more than rotate_before_days \(30\)'),
])
def test_new_expiry_refuses_a_token_that_would_rotate_again_at_once(
        expires_at, expires_in_days, rotate_before_days, message):
    with pytest.raises(GitLabModuleError, match=message):
        new_expiry(TODAY, expires_at, expires_in_days, rotate_before_days)


def test_new_expiry_accepts_one_day_more_than_the_threshold():
    assert new_expiry(TODAY, None, 8, 7) == datetime.date(2026, 3, 18)


@pytest.mark.parametrize('value', ['2026/03/10', '10-03-2026', '2026-02-30', 'tomorrow', '2026-3-1'])
def test_parse_date_names_the_option(value):
    with pytest.raises(GitLabModuleError, match=r"^expires_at must be a date written YYYY-MM-DD, got '"):
        parse_date(value, 'expires_at')


def test_parse_date_accepts_what_yaml_gives():
    assert parse_date(datetime.date(2026, 5, 1), 'expires_at') == datetime.date(2026, 5, 1)


# ---- the decision ---------------------------------------------------------------------

def test_no_token_means_create():
    decision = run_decide([])
    assert (decision.action, decision.current, decision.duplicates) == ('created', None, [])


@pytest.mark.parametrize('entry', [
    token(1, expires_in=-1), token(1, expires_in=0, active=True), token(1, revoked=True),
    token(1, name='mobb-old'), token(1, name='MOBB'),
], ids=['expired', 'expires-today', 'revoked', 'other-name', 'other-case'])
def test_inactive_or_differently_named_tokens_do_not_count(entry):
    assert run_decide([entry]).action == 'created'


def test_healthy_token_is_left_alone():
    decision = run_decide([token(4, expires_in=8)])
    assert decision.action == 'none'
    assert decision.current['id'] == 4


@pytest.mark.parametrize('expires_in, action', [(9, 'none'), (8, 'none'), (7, 'rotated'), (1, 'rotated')])
def test_rotation_starts_when_days_left_reach_the_threshold(expires_in, action):
    assert run_decide([token(4, expires_in=expires_in)], rotate_before_days=7).action == action


def test_threshold_zero_rotates_only_expired_tokens_which_are_not_active():
    assert run_decide([token(4, expires_in=1)], rotate_before_days=0).action == 'none'


def test_token_without_expiry_is_never_due():
    assert run_decide([token(4, expires_in=None)]).action == 'none'


def test_force_rotates_a_healthy_token():
    decision = run_decide([token(4, expires_in=300)], force=True)
    assert (decision.action, decision.current['id']) == ('rotated', 4)


def test_scopes_compare_as_a_set():
    entry = token(4, scopes=('read_user', 'api'))
    assert run_decide([entry], scopes=('api', 'read_user')).action == 'none'
    assert run_decide([entry], scopes=('api',)).action == 'replaced'
    assert run_decide([entry], scopes=('api', 'read_user', 'read_api')).action == 'replaced'


def test_scope_drift_wins_over_expiry():
    assert run_decide([token(4, expires_in=2, scopes=('read_api',))]).action == 'replaced'


def test_access_level_drift_means_replacement():
    entry = token(4, access_level=30)
    assert run_decide([entry], access_level=30).action == 'none'
    assert run_decide([entry], access_level=40).action == 'replaced'


def test_unknown_access_level_is_not_drift():
    # /personal_access_tokens/self (self-rotation) does not carry the role.
    assert run_decide([token(4)], access_level=40).action == 'none'


@pytest.mark.parametrize('tokens, options, reasons', [
    ([], {}, ['GitLab has no active token named mobb']),
    ([token(4, expires_in=8)], {}, []),
    ([token(4, expires_in=5)], {}, ['token 4 expires on 2026-03-15 (5 days left, threshold 7)']),
    ([token(4, scopes=('read_api',))], {}, ['token 4 has scopes read_api, wanted api']),
    ([token(4, access_level=20)], {'access_level': 30}, ['token 4 has access level 20, wanted 30']),
    ([token(4, expires_in=300)], {'force': True}, ['replacement forced (force: true)']),
    ([token(4, expires_in=2)], {'force': True},
     ['token 4 expires on 2026-03-12 (2 days left, threshold 7)', 'replacement forced (force: true)']),
], ids=['none', 'healthy', 'expiring', 'scopes', 'role', 'forced', 'expiring and forced'])
def test_the_decision_says_why(tokens, options, reasons):
    assert run_decide(tokens, **options).reasons == reasons


def test_duplicates_newest_is_managed_and_the_others_reported():
    older = token(3, created='2026-02-01T09:00:00.000Z')
    newest = token(9, created='2026-03-01T09:00:00.000Z')
    middle = token(5, created='2026-02-15T09:00:00.000Z')
    decision = run_decide([older, newest, middle])
    assert decision.current['id'] == 9
    assert [entry['id'] for entry in decision.duplicates] == [5, 3]


def test_duplicates_with_equal_creation_time_order_by_id():
    same = '2026-03-01T09:00:00.000Z'
    decision = run_decide([token(3, created=same), token(8, created=same)])
    assert decision.current['id'] == 8
    assert [entry['id'] for entry in decision.duplicates] == [3]


def test_inactive_duplicates_are_not_reported():
    decision = run_decide([token(9), token(3, revoked=True), token(4, expires_in=-2)])
    assert decision.duplicates == []


# ---- input checks ---------------------------------------------------------------------

def test_personal_scopes_include_read_user_and_admin_scopes():
    check_scopes(['api', 'read_user', 'sudo'], PERSONAL_SCOPES, 'personal access token')


@pytest.mark.parametrize('scope', ['read_user', 'sudo', 'admin_mode'])
def test_personal_only_scope_on_a_project_token_says_why(scope):
    with pytest.raises(GitLabModuleError, match=rf'^scopes: {scope} is not allowed on a project access '
                                                r'token; GitLab accepts it only on personal access tokens$'):
        check_scopes(['api', scope], RESOURCE_SCOPES, 'project access token')


def test_unknown_scope_lists_the_valid_ones():
    with pytest.raises(GitLabModuleError, match=r"^scopes: unknown scope 'apii' for a group access token; "
                                                r'valid scopes: ai_features, api, create_runner'):
        check_scopes(['apii'], RESOURCE_SCOPES, 'group access token')


def test_empty_scopes_are_refused():
    with pytest.raises(GitLabModuleError, match='^scopes must name at least one scope'):
        check_scopes([], RESOURCE_SCOPES, 'project access token')


@pytest.mark.parametrize('value, level', [
    ('developer', 30), ('Developer', 30), ('DEVELOPER', 30), ('maintainer', 40), ('MAINTAINER', 40),
    ('Maintainer', 40), ('guest', 10), ('Guest', 10), ('planner', 15), ('PLANNER', 15), ('reporter', 20),
    ('Reporter', 20), ('owner', 50), (' Owner ', 50), ('oWnEr', 50), (30, 30), ('40', 40), (50, 50),
])
def test_access_level_by_name_or_number(value, level):
    assert parse_access_level(value) == level


@pytest.mark.parametrize('value', ['admin', 35, '25', 0, 'dev', 'Administrator', 'MAINTAINERS', ''])
def test_bad_access_level_lists_the_valid_ones(value):
    with pytest.raises(GitLabModuleError, match=r'^access_level must be one of guest, planner, reporter, '
                                                r'developer, maintainer, owner \(or 10, 15, 20, 30, 40, 50\)'):
        parse_access_level(value)


# ---- views ----------------------------------------------------------------------------

def test_views_never_carry_the_secret():
    issued = dict(token(7, access_level=30), token='glpat-secret-value', description='Mobb')
    assert 'token' not in diff_view(issued, True)
    assert 'token' not in info_view(issued, TODAY, True)
    assert 'glpat-secret-value' not in repr(diff_view(issued, True)) + repr(info_view(issued, TODAY, True))


def test_diff_view_is_stable_and_shows_the_role_only_for_resource_tokens():
    entry = token(7, scopes=('read_api', 'api'), access_level=30)
    assert diff_view(entry, False) == {'id': 7, 'expires_at': '2026-04-09', 'scopes': ['api', 'read_api'],
                                       'active': True}
    assert diff_view(entry, True, active=False)['access_level'] == 30
    assert diff_view(entry, True, active=False)['active'] is False
    assert diff_view(None, True) == {}


def test_info_view_reports_days_left_and_state():
    view = info_view(token(7, expires_in=-2), TODAY, False)
    assert (view['days_left'], view['state'], view['active'], view['revoked']) == (-2, 'expired', False, False)
    assert 'access_level' not in view
