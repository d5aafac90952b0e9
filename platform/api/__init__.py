"""REST API (Django REST framework): token auth, OpenAPI schema, user-scoped querysets."""
