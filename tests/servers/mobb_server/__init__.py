"""A local stand-in for Mobb's GraphQL API (Hasura at /v1/graphql), for tests and demos.

Start it with ``python -m mobb_server`` (see ``--help``) or ``client.start_mobb()``;
the interface is described in tests/servers/README.md.
"""
