# -*- coding: utf-8 -*-
# Copyright: mobb.scm contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:

    # Connection options shared by every Mobb module (group/mobb.scm.mobb in module_defaults).
    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - Full URL of Mobb's GraphQL API.
      - The default is Mobb's SaaS. On-premises and single-tenant deployments have their own host; the
        path stays C(/v1/graphql), for example V(https://mobb.internal.example/v1/graphql).
      - If not set, the value of the E(MOBB_API_URL) environment variable is used, then the default.
      - Redirects are not followed, so that the API key is never sent to another host.
    type: str
    default: https://api.mobb.ai/v1/graphql
  api_key:
    description:
      - Mobb API key, sent in the C(x-mobb-key) header.
      - Changing an integration needs the key of a user with role Admin or Owner in the Mobb organization.
      - If not set, the value of the E(MOBB_API_KEY) environment variable is used. One of them is required.
    type: str
  validate_certs:
    description:
      - Whether to verify the TLS certificate of the Mobb API.
      - Set to V(false) only for testing; prefer O(ca_path) for a private CA.
    type: bool
    default: true
  ca_path:
    description:
      - Path to a PEM bundle of the CA certificates that signed the Mobb API's certificate.
      - When not set, the bundle of the C(requests) library (or E(REQUESTS_CA_BUNDLE)) is used.
    type: path
  timeout:
    description:
      - Seconds to wait for the Mobb API to accept a connection and to answer, per attempt.
    type: int
    default: 30
  retries:
    description:
      - How many times one request is retried after a transient failure before the task fails.
      - For reads, transient failures are connection errors, dropped connections, timeouts, HTTP 502,
        503 and 504, and a proxy's HTML error page served with status 200.
      - A store of a token (Mobb's C(updateScmToken)) is retried only when no connection could be opened
        (connection refused, DNS failure, connect timeout), which proves Mobb never saw it. After a
        timeout, a dropped connection, an HTTP 5xx or a proxy's error page it may have landed, so it is
        not retried and the task fails saying that Mobb may or may not hold the token.
      - Answers that mean "no" (a refused key, a rejected token) are never retried.
      - Retries wait 0.5, 1, 2, 4, ... seconds; each retry adds a warning to the task result.
      - V(0) disables retries.
    type: int
    default: 3
notes:
  - Proxies are taken from the E(HTTPS_PROXY), E(HTTP_PROXY) and E(NO_PROXY) environment variables.
  - Each call to Mobb carries a new C(x-hasura-request-id) (its retries reuse it); a failed task returns it
    as C(request_id) for Mobb support.
requirements:
  - requests >= 2.28.0
"""
