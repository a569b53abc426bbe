"""The Elasticsearch client `monitor` uses, and the one way it calls it: errors become ours."""

from __future__ import annotations

from typing import Any

from cd4ml.errors import ConfigError, ServiceUnreachable


def call(method: Any, url: str, needs: str, **kwargs: Any) -> Any:
    """One client call; errors become ours. needs: what the user must be allowed, e.g. "read model-*"."""
    from elasticsearch import ApiError, AuthenticationException, AuthorizationException, TransportError

    try:
        return method(**kwargs)
    except (AuthenticationException, AuthorizationException) as err:
        raise ConfigError(
            f"Elasticsearch at {url} refused the credentials (HTTP {err.meta.status}).",
            f"Set CD4ML_ELASTICSEARCH_USER and CD4ML_ELASTICSEARCH_PASSWORD to a user that may {needs}.",
        ) from None
    except TransportError as err:
        raise ServiceUnreachable(
            f"Elasticsearch at {url} did not answer ({type(err).__name__}).",
            "Start it (docker compose up -d elasticsearch), check CD4ML_ELASTICSEARCH_URL, "
            "or read the local log with --source jsonl.",
        ) from None
    except ApiError as err:
        raise ServiceUnreachable(
            f"Elasticsearch at {url} answered HTTP {err.meta.status} to {method.__name__}: {err.message}.",
            f"Check that the user may {needs} and the indices exist.",
        ) from None


def elasticsearch_client(url: str, user: str | None, password: str | None, timeout: float = 10.0) -> Any:
    """An Elasticsearch client for the configured URL: no retries, a timeout on every request."""
    from elasticsearch import Elasticsearch

    auth = (user, password or "") if user else None
    return Elasticsearch(url, basic_auth=auth, request_timeout=timeout, max_retries=0, retry_on_timeout=False)
