"""The HTTP layer: Flask blueprints per resource, the auth decorator, request parsing and the
OpenAPI route. May import ``server.domain`` and ``server.infra``; never ``server.realtime``."""
