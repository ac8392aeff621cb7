"""OpenAPI descriptions of the endpoints that are plain Django views (the
token endpoint, introspection, revocation, the bearer APIs and the JWKS), so
that /v1/openapi.json describes everything an integration calls."""

_OAUTH_ERROR = {
    "description": "An RFC 6749 section 5.2 error",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {"type": "string"},
                    "error_description": {"type": "string"},
                },
            }
        }
    },
}

_TOKEN_REQUEST = {
    "type": "object",
    "properties": {
        "grant_type": {"type": "string", "enum": ["client_credentials"]},
        "scope": {"type": "string", "description": "A subset of the client's grants"},
        "client_id": {"type": "string"},
        "client_secret": {"type": "string"},
    },
}

_TOKEN = {
    "post": {
        "operationId": "token",
        "summary": "Exchange a client ID and secret for an access token",
        "description": (
            "OAuth 2.0 client credentials (RFC 6749 4.4). Authenticate with HTTP Basic "
            "(`client_id:secret`), form fields or a JSON body. An empty body means "
            "client credentials. Tokens live 15 minutes by default."
        ),
        "tags": ["OAuth"],
        "security": [{"clientBasic": []}, {}],
        "requestBody": {
            "required": False,
            "content": {
                "application/x-www-form-urlencoded": {"schema": _TOKEN_REQUEST},
                "application/json": {"schema": _TOKEN_REQUEST},
            },
        },
        "responses": {
            "200": {
                "description": "An access token",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["access_token", "token_type", "expires_in"],
                            "properties": {
                                "access_token": {"type": "string"},
                                "token_type": {"type": "string"},
                                "expires_in": {"type": "integer"},
                                "scope": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "400": _OAUTH_ERROR,
            "401": _OAUTH_ERROR,
            "405": _OAUTH_ERROR,
            "413": _OAUTH_ERROR,
            "415": _OAUTH_ERROR,
            "429": _OAUTH_ERROR,
            "503": _OAUTH_ERROR,
        },
    }
}

_PAGE_SIZE = {
    "name": "pageSize",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
}

_BEARER_ERRORS = {"400": _OAUTH_ERROR, "401": _OAUTH_ERROR, "403": _OAUTH_ERROR}


def extra_paths() -> tuple[dict, dict]:
    paths = {
        "/v1/oauth": _TOKEN,
        "/v1/users": {
            "get": {
                "operationId": "users",
                "summary": "The tenant's console users",
                "tags": ["Bearer APIs"],
                "description": "Needs the users:read scope.",
                "security": [{"BearerToken": []}],
                "parameters": [
                    {"name": "active", "in": "query", "schema": {"type": "boolean"}},
                    {"name": "blocked", "in": "query", "schema": {"type": "boolean"}},
                    _PAGE_SIZE,
                    {
                        "name": "page",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000000},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "A page of users",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["users", "totalCount", "page", "pageSize"],
                                    "properties": {
                                        "users": {"type": "array", "items": {"type": "object"}},
                                        "totalCount": {"type": "integer"},
                                        "page": {"type": "integer"},
                                        "pageSize": {"type": "integer"},
                                    },
                                }
                            }
                        },
                    },
                    **_BEARER_ERRORS,
                },
            }
        },
        "/v1/audit-log": {
            "get": {
                "operationId": "auditLog",
                "summary": "The tenant's audit log, newest first",
                "tags": ["Bearer APIs"],
                "description": "Needs the audit-log:read scope.",
                "security": [{"BearerToken": []}],
                "parameters": [
                    _PAGE_SIZE,
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    {"name": "action", "in": "query", "schema": {"type": "string"}},
                    {"name": "clientId", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "since",
                        "in": "query",
                        "schema": {"type": "string", "format": "date-time"},
                    },
                    {
                        "name": "until",
                        "in": "query",
                        "schema": {"type": "string", "format": "date-time"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "A page of events",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["events", "nextCursor", "pageSize"],
                                    "properties": {
                                        "events": {"type": "array", "items": {"type": "object"}},
                                        "nextCursor": {"type": ["string", "null"]},
                                        "pageSize": {"type": "integer"},
                                    },
                                }
                            }
                        },
                    },
                    **_BEARER_ERRORS,
                },
            }
        },
        "/.well-known/jwks.json": {
            "get": {
                "operationId": "jwks",
                "summary": "The public keys that verify access tokens",
                "tags": ["OAuth"],
                "security": [{}],
                "responses": {
                    "200": {
                        "description": "A JSON Web Key Set (RFC 7517)",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["keys"],
                                    "properties": {
                                        "keys": {"type": "array", "items": {"type": "object"}}
                                    },
                                }
                            }
                        },
                    }
                },
            }
        },
    }
    security_schemes = {"clientBasic": {"type": "http", "scheme": "basic"}}
    return paths, security_schemes
