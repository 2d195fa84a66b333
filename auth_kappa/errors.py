"""User-facing errors: one line that names what is wrong and how to fix it."""

from urllib.parse import urlsplit, urlunsplit


class UserError(Exception):
    """A mistake the user can fix; the CLI prints it as one line and exits non-zero."""

    exit_code = 2


class ServiceUnavailable(UserError):
    """A service (Kafka, Redis, S3) that cannot be reached."""

    exit_code = 3


def redacted(url: str) -> str:
    """The URL with its password replaced by ***, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
