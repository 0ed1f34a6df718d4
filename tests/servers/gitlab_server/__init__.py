"""A local stand-in for GitLab's REST API v4 access-token endpoints, for tests and benchmarks.

Run it with ``python -m gitlab_server`` (see ``tests/servers/README.md``); drive it from
tests with :mod:`gitlab_server.client` and the pytest fixtures in :mod:`gitlab_server.fixtures`.
"""
