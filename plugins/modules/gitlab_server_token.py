#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gitlab_server_token
short_description: Keep the GitLab token of Mobb's GitLab Server integration fresh, with no dead token in Mobb
version_added: 0.2.0
description:
  - The whole safe rotation of one GitLab access token that Mobb uses to reach a GitLab server, in one task
    that runs in-process on the controller (an action plugin). It reads GitLab and Mobb, decides, issues a new token,
    stores it in Mobb, verifies that Mobb connects, revokes the old token, and rolls back or stops safely on failure.
  - B(Read.) The active tokens with O(token_name) (one GitLab request; two for a personal token with O(user)),
    and Mobb's connection check for the server together with what Mobb stores for it (one Mobb request). When
    Mobb returns the stored token, GitLab is asked which token it is (C(GET /personal_access_tokens/self) with
    it, one more request); its value is never kept or shown. When Mobb returns no token, RV(mobb_token.identity)
    is V(unproven).
  - B(Decide.) Nothing to do when the newest active token with the name has the wanted scopes and role, expires
    more than O(rotate_before_days) days from GitLab's today, Mobb connects, and Mobb holds that very token (or
    which token Mobb holds is unproven). A token Mobb holds that is not the managed one (someone pasted another
    token into Mobb) is a reason to act. When Mobb provably holds the managed token and older tokens with the
    name are still active (left by a failed, killed or overlapping run), they are revoked (RV(action=retired)).
    The decision over GitLab's tokens is the one the token modules make (M(mobb.scm.gitlab_personal_access_token)).
  - B(Rotate) (O(rotation_method=create_new), the default). Issue a new token while the old one works; store it
    in Mobb, which validates it through the broker; ask Mobb until it connects; then, only after Mobb's answer
    proves that it holds the token this run stored (its fingerprint, or C(tokenLastUpdate) unchanged since this
    run's store when Mobb does not return tokens), revoke the old tokens. A revoke counts only when GitLab
    answers 204 or a read-back shows the token revoked.
  - B(Failures.) Mobb refusing the new token (a definite answer) rolls back; the new token is revoked, the old
    one stays in Mobb. A store whose answer was lost (timeout, dropped connection, 5xx, a proxy's page) may still
    land, so it is neither retried nor rolled back; both tokens stay active and the next run settles. Every
    failure message says what still works. The role's README lists each failure and what it leaves.
  - B(Checked before the first GitLab write:) the settings (URLs, scopes, role, lifetime), that GitLab and Mobb
    answer and accept the credentials (the reads), and that Mobb reaches GitLab with what it holds. B(Not checked
    up front:) whether the Mobb API key may change the integration (Admin or Owner); Mobb's public API does not
    tell the caller's role, so a Member's key is refused at the store, and the new token is rolled back.
  - The new token's value exists only inside this task's process; it is never returned, registered, printed
    (at any verbosity, also with E(ANSIBLE_DEBUG=1)), written to a file, or put in a diff.
  - O(mode=check) only reads and reports, as the C(mobb.scm.check) playbook does.
  - The role C(mobb.scm.gitlab_token_rotation) loops this action over the tokens of each host, reports, and
    fails at the end.
author:
  - mobb.scm maintainers (@mobb-dev)
options:
  gitlab_url:
    description:
      - Base URL of the GitLab server, for example V(https://gitlab.example.com). A trailing C(/api/v4), an
        upper-case scheme or host, the default port and trailing slashes are dropped, and the result is used
        for GitLab's API and as the URL Mobb knows the server by (unless O(mobb_scm_url) says otherwise).
    type: str
    required: true
  gitlab_api_token:
    description:
      - GitLab token that manages the kept token. With O(rotation_method=create_new), an administrator's token
        for personal tokens, or a Maintainer's (project) or Owner's (group) token.
      - With O(rotation_method=rotate), a token of the same user (scope V(api)); with
        O(rotation_method=self_rotate), the kept token itself.
      - For O(token_type=service_account), an administrator's token (instance service account), or the token of
        an Owner of O(group) (group service account); with O(service_account_create), creating a group service
        account also needs an administrator's token, or the instance setting
        C(allow_top_level_group_owners_to_create_service_accounts).
      - When none of O(gitlab_api_token), O(gitlab_api_oauth_token) and O(gitlab_api_job_token) is set, the
        first of E(GITLAB_TOKEN), E(GITLAB_OAUTH_TOKEN) and E(CI_JOB_TOKEN) set in the controller's environment,
        as for the modules' O(mobb.scm.gitlab_personal_access_token#module:api_token).
      - Unset, the C(api_token) of C(module_defaults) for C(group/mobb.scm.gitlab).
    type: str
  gitlab_api_oauth_token:
    description:
      - An OAuth 2.0 access token that manages the kept token, instead of O(gitlab_api_token). Never logged.
    type: str
    version_added: 0.2.0
  gitlab_api_job_token:
    description:
      - A GitLab CI/CD job token, instead of O(gitlab_api_token); GitLab lets job tokens reach few endpoints.
    type: str
    version_added: 0.2.0
  gitlab_validate_certs:
    description: Verify GitLab's TLS certificate.
    type: bool
    default: true
  gitlab_ca_path:
    description: CA bundle that signs GitLab's certificate (an internal CA).
    type: path
  gitlab_timeout:
    description: Seconds to wait for each GitLab answer.
    type: int
    default: 30
  gitlab_retries:
    description:
      - How many times a GitLab request that may be repeated (a read, a revoke) is retried after a rate limit
        or a transient failure; never a token's creation or rotation.
    type: int
    default: 3
    version_added: 0.2.0
  mobb_api_url:
    description:
      - Mobb's GraphQL URL. Unset, E(MOBB_API_URL) from the controller's environment, else Mobb's SaaS.
    type: str
    default: https://api.mobb.ai/v1/graphql
  mobb_api_key:
    description:
      - Mobb API key of a user with the Admin or Owner role in the organization whose GitLab Server integration
        holds the token. Unset, E(MOBB_API_KEY) from the controller's environment.
    type: str
  mobb_validate_certs:
    description: Verify Mobb's TLS certificate.
    type: bool
    default: true
  mobb_ca_path:
    description: CA bundle that signs Mobb's certificate (single-tenant or on-premises Mobb).
    type: path
  mobb_timeout:
    description: Seconds to wait for each Mobb answer.
    type: int
    default: 30
  mobb_retries:
    description:
      - How many times a Mobb request is retried after a transient failure; a store of the token only when no
        connection could be opened, which proves Mobb never saw it.
    type: int
    default: 3
    version_added: 0.2.0
  mobb_rest_url:
    description:
      - Full URL of Mobb's REST endpoint that checks the SCM connection status (a Hasura REST endpoint under
        C(/api/rest/) on the host of O(mobb_api_url)). Its path is not public; take it from Mobb's API docs.
      - When set, the read and verify steps ask this endpoint whether Mobb connects (a C(GET) with the SCM URL
        as the C(scmUrl) query parameter and the same C(x-mobb-key) header); which token Mobb stores is still
        read through GraphQL, and the token is still stored through GraphQL.
      - Unset (the default), Mobb's connection check goes through GraphQL at O(mobb_api_url).
    type: str
    version_added: 0.2.0
  mobb_scm_url:
    description:
      - The GitLab URL as Mobb's integration knows it, when the controller reaches GitLab at another address.
        Defaults to O(gitlab_url). Normalised the same way.
    type: str
  token_type:
    description:
      - Kind of token Mobb uses.
      - V(service_account) is a personal access token of a GitLab service account (O(service_account)), the
        recommended form where GitLab offers service accounts (Premium and Ultimate). The account uses no seat,
        cannot sign in, and reaches only the projects and groups it is a member of
        (O(service_account_memberships)). On GitLab Free, use a project token, or a personal token of a
        dedicated user.
    type: str
    choices: [personal, project, group, service_account]
    default: personal
  token_name:
    description: Name of the token in GitLab; the kept token is found by this name.
    type: str
    default: mobb-broker
  user:
    description: Username that owns a personal token. Unset, the user of O(gitlab_api_token).
    type: str
  project:
    description: Project (id or full path) of a project token; required for O(token_type=project).
    type: str
  group:
    description:
      - Group (id or full path) of a group token; required for O(token_type=group).
      - With O(token_type=service_account), the top-level group (id or path) whose service account
        O(service_account) is; unset, an instance service account. A subgroup path is refused before any request.
    type: str
  service_account:
    description:
      - Username of the service account whose personal access token Mobb uses; required for
        O(token_type=service_account).
    type: str
    version_added: 0.2.0
  service_account_memberships:
    description:
      - The projects and groups the service account must be a member of, with at least the role given, for
        Mobb to reach them; at least one is required for O(token_type=service_account). A role inherited from a
        parent group counts.
      - Checked before a token is issued (never on a run with nothing to do). A missing one is added when
        O(service_account_create=true); otherwise the run fails before any write (RV(outcome=membership_missing)).
      - Each project and group is looked up first, before the account is created, in check mode too; those GitLab
        does not know or does not show the token are all named, and the run fails having written nothing
        (RV(outcome=target_missing)).
    type: list
    elements: dict
    default: []
    version_added: 0.2.0
    suboptions:
      project:
        description: Project, by id or full path. Give O(service_account_memberships[].project) or
          O(service_account_memberships[].group).
        type: str
      group:
        description: Group, by id or full path.
        type: str
      access_level:
        description: Role, by GitLab's name or number; Mobb needs V(developer) or more.
        type: raw
        default: developer
  service_account_create:
    description:
      - Create the service account when GitLab has none with O(service_account) (in O(group), or on the
        instance), and add the memberships of O(service_account_memberships) it lacks, before the token is
        issued. Check mode predicts both.
      - V(false), a missing account (RV(outcome=account_missing)) or membership (RV(outcome=membership_missing))
        fails the run before any write, saying how to fix it.
    type: bool
    default: false
    version_added: 0.2.0
  service_account_name:
    description: Display name of a service account this action creates. Unset, GitLab's default.
    type: str
    version_added: 0.2.0
  scopes:
    description:
      - Scopes of the token. Unset, what Mobb needs, V([api, read_user]) for a personal or service account token
        and V([api]) for a project or group token.
    type: list
    elements: str
  access_level:
    description:
      - Role of a project or group token, by GitLab's name in any case (V(developer), V(Maintainer)) or number;
        Mobb needs V(developer) or more.
    type: raw
    default: developer
  description:
    description: Description GitLab shows for the token. Unset, one naming Mobb and this collection.
    type: str
  expires_in_days:
    description: Lifetime of each new token, in days (GitLab caps it at 365 by default).
    type: int
    default: 30
  rotate_before_days:
    description:
      - A token is replaced once it has this many days left or fewer, as GitLab's clock counts them. Less than
        O(expires_in_days).
    type: int
    default: 7
  rotate_at_fraction:
    description:
      - Rotate a token once this part of its lifetime (from GitLab's C(created_at) to its expiry) has passed,
        for example V(0.67) to renew at two thirds, when that comes before O(rotate_before_days), which stays
        the latest point. Above 0 and below 1; unset, only O(rotate_before_days) counts.
    type: float
  spread_days:
    description:
      - Rotate each token up to this many days earlier than its threshold, by a number of days taken from a
        hash of the GitLab server and the token (type, owner, name), the same on every run and in check mode,
        different between tokens. Tokens created on one day then renew on different days, and keep apart
        afterwards. V(0) rotates every token at its threshold.
      - The threshold, with the spread, must stay below O(expires_in_days), so that a new token is not due at
        once.
    type: int
    default: 0
  retire_after_days:
    description:
      - Keep the old token active this many days after Mobb is proven to use the new one, for brokers that cache
        a connection or GitLab instances with token reuse detection. A later run revokes the old token once the
        days have passed (counted from the new token's creation) and Mobb still holds the new one; until then
        RV(awaiting_retirement) lists it and when it goes.
      - V(0) revokes it as soon as Mobb is proven to use the new one. Needs O(rotation_method=create_new) (the
        other methods have GitLab revoke the old token at once) and Mobb returning the token it stores (when it
        does not, which token Mobb holds cannot be proven later, so the old token is revoked at once, with a
        warning). Less than O(expires_in_days).
    type: int
    default: 0
  rotation_method:
    description:
      - V(create_new) issues a second token while the old one still works, and revokes the old one only after
        Mobb is shown to use the new one. The safe choice, and the default of the token modules too.
      - V(rotate) uses GitLab's rotate API with another token of the same user (what a user without
        administrator rights can do for their own personal token). GitLab revokes the old token at once, so Mobb
        holds a revoked token until the new one is stored. Refused while Mobb reports that it cannot connect,
        unless O(force=true).
      - V(self_rotate) rotates the kept personal token with itself (O(gitlab_api_token)); it first stores the
        current token in Mobb again, which proves that Mobb takes a token for this server now. Not for
        O(token_type=service_account).
    type: str
    choices: [create_new, rotate, self_rotate]
    default: create_new
  force:
    description: Replace the token now, whatever its expiry.
    type: bool
    default: false
  verify_retries:
    description: How many more times to ask Mobb whether it connects with a new token before giving up.
    type: int
    default: 10
  verify_delay:
    description: Seconds between those questions.
    type: int
    default: 3
  mode:
    description:
      - V(rotate) keeps the token. V(check) only reads, and lists what is wrong in RV(problems) (a token missing
        or expiring within O(check_days), wrong scopes or role, Mobb holding no token, another token, or
        reporting disconnected); a problem found is not a failure.
    type: str
    choices: [rotate, check]
    default: rotate
  check_days:
    description: With O(mode=check), a token that expires within this many days is a problem.
    type: int
    default: 14
  overrides:
    description:
      - Options of this action that win over the ones given beside it, for example one entry of the role's
        C(gitlab_token_rotation_tokens); a key set to null is ignored. The role passes the token's settings
        this way, so each task templates every role variable once.
    type: dict
    default: {}
  refusals:
    description:
      - One-line reasons why this token cannot be kept, found before the task (the role passes the
        C(mobb_scm_inventory_problem) host variable the C(mobb.scm.mobb_integrations) inventory sets on a server
        whose Mobb integrations it cannot tell apart). When not empty, the settings are invalid
        (RV(outcome=invalid_settings)) with these messages, in every O(mode), and no request is sent.
    type: list
    elements: str
    default: []
    version_added: 0.2.0
  twins:
    description:
      - Messages naming the other kept tokens that feed the same Mobb integration as this one (the same Mobb API,
        API key and O(mobb_scm_url) or O(gitlab_url), normalised). Mobb holds one token per integration, so each
        rotation would replace the other's token in Mobb on every run. The role computes them once over the
        play.
      - With O(mode=rotate), a non-empty list makes the settings invalid (RV(outcome=invalid_settings)) before
        any request. With O(mode=check), the token is read as usual and each message is one of its
        RV(problems), so the check still shows what GitLab and Mobb hold for each twin.
    type: list
    elements: str
    default: []
    version_added: 0.2.0
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
    details: Runs on the controller, in the worker process of the host, whatever the host's connection.
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: Reads GitLab and Mobb and makes the same decision; writes nothing (RV(action) is V(would_create), ...).
  diff_mode:
    support: full
    details: Shows the kept token's id, expiry and fingerprint before and after; never a token value.
  platform:
    support: full
    platforms: all
notes:
  - E(ANSIBLE_DEBUG=1) makes Ansible print the arguments of every task, including secrets given here (a limit of
    C(no_log) in Ansible itself); this action prints no secret of its own at any verbosity.
  - Environment variables (E(GITLAB_TOKEN), E(MOBB_API_KEY), E(MOBB_API_URL)) are read from the controller's
    environment, as AWX credential types inject them; the task keyword C(environment) does not apply.
  - C(module_defaults) for C(group/mobb.scm.gitlab) and C(group/mobb.scm.mobb), the modules' action groups, reach
    this action too, under its own names (C(api_url) of the gitlab group is O(gitlab_url), C(api_key) of the mobb
    group is O(mobb_api_key), each other connection option takes the C(gitlab_) or C(mobb_) prefix), for every
    connection option the task leaves unset or null; other options in them are for the modules and ignored here.
    The action is in neither group itself, because both groups name their URL C(api_url) and Ansible merges a
    task's group defaults by option name, which would give GitLab's URL to Mobb or Mobb's to GitLab.
seealso:
  - module: mobb.scm.gitlab_personal_access_token
  - module: mobb.scm.mobb_integration
"""

EXAMPLES = r"""
- name: Keep Mobb's project token for one GitLab server fresh
  mobb.scm.gitlab_server_token:
    gitlab_url: https://gitlab.example.com
    gitlab_api_token: "{{ vault_gitlab_maintainer_token }}"
    mobb_api_key: "{{ vault_mobb_api_key }}"
    token_type: project
    project: payments/api
  register: kept

- name: Keep Mobb's token on a service account of group acme, creating the account on the first run
  mobb.scm.gitlab_server_token:
    gitlab_url: https://gitlab.example.com
    gitlab_api_token: "{{ vault_gitlab_group_owner_token }}"
    token_type: service_account
    group: acme
    service_account: mobb-bot
    service_account_name: Mobb
    service_account_memberships:
      - project: acme/payments
        access_level: developer
      - group: acme/web
    service_account_create: true

- name: Report which token Mobb holds and when it expires, changing nothing
  mobb.scm.gitlab_server_token:
    gitlab_url: https://gitlab.example.com
    token_type: personal
    user: mobb-bot
    mode: check
    check_days: 14
  register: checked

- name: Fail when Mobb holds a token this playbook does not manage
  ansible.builtin.assert:
    that: checked.mobb_token.identity in ['managed', 'unproven']
    fail_msg: "{{ checked.problems | join('; ') }}"
"""

RETURN = r"""
label:
  description: C(<token_type>:<owner>/<token_name>).
  returned: always
  type: str
  sample: project:payments/api/mobb-broker
action:
  description:
    - What was done. V(created), V(rotated), V(stored) (self_rotate gave Mobb the current token), V(retired) (only
      older tokens were revoked), V(superseded) (an overlapping run's token won; this run revoked its own, or the
      other run had already retired it before Mobb saw it), V(none),
      V(failed); in check mode V(would_create), V(would_rotate), V(would_store), V(would_retire); with
      O(mode=check) V(ok) or V(problem).
  returned: always
  type: str
  sample: rotated
outcome:
  description:
    - The named outcome. Besides the actions above, the failures V(invalid_settings), V(read_failed), V(blocked),
      V(issue_refused), V(issue_unknown), V(store_refused) (rolled back), V(rollback_failed), V(store_unknown),
      V(verify_failed), V(retire_failed), V(rotate_unknown), V(preflight_failed), V(in_place_store_failed),
      V(in_place_verify_failed), and for O(token_type=service_account) V(account_missing),
      V(membership_missing), V(account_setup_failed), V(target_missing) (a project or group of
      O(service_account_memberships) that GitLab does not show the token).
  returned: always
  type: str
  sample: store_refused
reasons:
  description: Why the token needed work; empty when it did not.
  returned: always
  type: list
  elements: str
problems:
  description: With O(mode=check), what is wrong (the reasons, and a failure's message).
  returned: always
  type: list
  elements: str
token_id:
  description:
    - Id of the token in use after the run (the new one after a rotation).
    - After a failure or V(superseded), GitLab is read again, and this is the run's new token or the token it had
      found, if still active, else the active token Mobb holds; null when GitLab lists none of them as active.
  returned: always
  type: int
expires_at:
  description: Its expiry date.
  returned: always
  type: str
days_left:
  description: Days until it expires, by GitLab's clock.
  returned: always
  type: int
awaiting_retirement:
  description:
    - Older tokens with the name that stay active for O(retire_after_days), each with the date from which a run
      revokes it; empty when there are none.
  returned: always
  type: list
  elements: dict
  contains:
    token_id:
      description: Its id.
      type: int
    expires_at:
      description: Its expiry date.
      type: str
    retire_on:
      description: The date from which a run revokes it (if Mobb still holds the managed token then).
      type: str
rotation_threshold_days:
  description:
    - The days left at which it is (or was) due for rotation. That is O(rotate_before_days), or the rest of its
      lifetime after O(rotate_at_fraction) when more, plus its share of O(spread_days). V(null) without a token.
  returned: always
  type: int
  sample: 9
next_rotation:
  description:
    - The date a run plans to replace it (GitLab's date; today when it is due now); V(null) for a token without
      expiry or without a token.
  returned: always
  type: str
  sample: '2026-12-21'
new_token_fingerprint:
  description: First 12 hex characters of the SHA-256 of the token this run issued (compare, never a secret).
  returned: always
  type: str
previous_token_id:
  description: The token a rotation replaced.
  returned: always
  type: int
revoked_token_ids:
  description: Tokens this run revoked (verified).
  returned: always
  type: list
  elements: int
duplicate_token_ids:
  description: Older active tokens with the name, found by the read.
  returned: always
  type: list
  elements: int
connected:
  description: Mobb's latest answer to its connection check.
  returned: always
  type: bool
connection_status:
  description: V(OK) or V(Error).
  returned: always
  type: str
connection_message:
  description: Why Mobb does not connect.
  returned: always
  type: str
brokered:
  description: Whether Mobb reaches this server through its broker.
  returned: always
  type: bool
token_last_update:
  description: When Mobb's stored token last changed.
  returned: always
  type: str
mobb_token:
  description: Which token Mobb held when the run began, never its value.
  returned: always
  type: dict
  contains:
    identity:
      description: V(managed), V(other) (not the managed token), V(dead) (GitLab refuses it), V(unproven) (Mobb
        does not return tokens), V(none) (Mobb holds no token).
      type: str
    token_id:
      description: Its GitLab id, when identified.
      type: int
    expires_at:
      description: Its own expiry.
      type: str
    days_left:
      description: Days until it expires.
      type: int
    fingerprint:
      description: First 12 hex characters of its SHA-256.
      type: str
    note:
      description: Why the identity is what it is.
      type: str
service_account:
  description:
    - With O(token_type=service_account), the account and what this run did to it (in check mode, would do);
      V(null) for other token types.
  returned: always
  type: dict
  contains:
    username:
      description: O(service_account).
      type: str
    group:
      description: O(group), or V(null) for an instance service account.
      type: str
    id:
      description: The account's user id, when known.
      type: int
    created:
      description: Whether this run created the account.
      type: bool
    memberships_added:
      description:
        - Memberships this run added, each with C(project) or C(group), C(access_level) and
          C(previous_access_level) (V(null) when it was no member).
      type: list
      elements: dict
msg:
  description: On failure, what happened and what still works.
  returned: failure
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mobb.scm.plugins.module_utils.server_token_options import ARGUMENT_SPEC, MUTUALLY_EXCLUSIVE


def main():
    # The action plugin of the same name does the work on the controller; this file gives
    # ansible-doc and the sanity tests the documentation and the argument spec.
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, mutually_exclusive=MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    module.fail_json(msg='mobb.scm.gitlab_server_token runs as an action on the controller; '
                         'this module file only documents it')


if __name__ == '__main__':
    main()
