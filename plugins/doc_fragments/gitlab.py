# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How every mobb.scm GitLab module connects to GitLab, documented once."""

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - Base URL of the GitLab server, as users open it in a browser, for example
        V(https://gitlab.example.com). A trailing C(/api/v4) is accepted and ignored.
      - When not set, the E(GITLAB_URL) environment variable is used. One of the two is required.
    type: str
  api_token:
    description:
      - A personal, project or group access token with the C(api) scope, sent in the
        C(PRIVATE-TOKEN) header.
      - When none of O(api_token), O(api_oauth_token) and O(api_job_token) is set, the first
        of the environment variables E(GITLAB_TOKEN), E(GITLAB_OAUTH_TOKEN) and
        E(CI_JOB_TOKEN) that is set fills the matching option, so a variable that a CI job
        sets on its own never clashes with a token given in the playbook.
      - Never logged.
    type: str
  api_oauth_token:
    description:
      - An OAuth 2.0 access token, sent in the C(Authorization) header as a bearer token.
        Mutually exclusive with O(api_token) and O(api_job_token).
      - Environment fallback E(GITLAB_OAUTH_TOKEN), as described for O(api_token). Never logged.
    type: str
  api_job_token:
    description:
      - A GitLab CI/CD job token, sent in the C(JOB-TOKEN) header. GitLab lets job tokens
        reach only a few endpoints, so this is rarely enough to manage access tokens.
      - Environment fallback E(CI_JOB_TOKEN), as described for O(api_token). Never logged.
    type: str
  validate_certs:
    description:
      - Verify GitLab's TLS certificate. Set to V(false) only for throwaway test servers.
    type: bool
    default: true
  ca_path:
    description:
      - A PEM file of CA certificates to verify GitLab's certificate with, instead of the
        system's trust store (for a GitLab behind an internal CA).
      - Ignored when O(validate_certs=false).
    type: path
  timeout:
    description:
      - Seconds to wait for GitLab to connect and to answer each request.
    type: int
    default: 30
  retries:
    description:
      - How many times to repeat a request that GitLab rate-limited (HTTP 429, after the
        wait its C(Retry-After) header asks for).
      - Reads and revocations are also repeated, with exponential backoff from 0.1 seconds,
        after a transient server error (HTTP 500, 502, 503, 504, 520-530), a dropped
        connection or a timeout. Token creation and rotation are not, because GitLab may
        already have applied them, and repeating a rotation would revoke the token it just issued.
      - V(0) disables retries.
    type: int
    default: 3
requirements:
  - python-gitlab >= 6.0.0 (on the host that runs the module, normally the controller)
notes:
  - The modules talk to GitLab's REST API v4 from the host they run on. Run them on the
    controller, with C(delegate_to) set to V(localhost) or a local connection; environment
    variables are read there too.
  - Set the connection options once for every module of the collection with
    C(module_defaults) and the C(group/mobb.scm.gitlab) action group.
  - Dates are GitLab's own. "Today" is the date in the C(Date) header of GitLab's answer
    (the controller's UTC date if GitLab sends none), so a controller with a wrong clock
    does not move expiry decisions.
"""

    ATTRIBUTES = r"""
attributes:
  check_mode:
    description: Can run in check mode and return the changed status it predicts without changing anything.
  diff_mode:
    description: Returns the before and after state of what it changes (or would change in check mode) in diff mode.
  action_group:
    description: Use C(group/mobb.scm.gitlab) in C(module_defaults) to set the connection options of every GitLab module at once.
    support: full
    membership:
      - mobb.scm.gitlab
"""
