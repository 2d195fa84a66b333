"""User-facing errors: one line that names what is wrong and how to fix it."""


class UserError(Exception):
    """A mistake the user can fix; the CLI prints it as one line and exits non-zero."""

    exit_code = 2


class ServiceUnavailable(UserError):
    """A service (Kafka, Redis, S3) that cannot be reached."""

    exit_code = 3
