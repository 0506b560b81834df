"""The one exception that turns into a JSON error answer.

Every refusal a job can meet (a bad path, a missing blob, a mismatched compiler) is raised as a
`Refusal` carrying its HTTP status and body, so the request handler has one place that answers and
a bug elsewhere still shows as a 500 instead of being mistaken for the client's fault.
"""

from __future__ import annotations

from worker import wire


class Refusal(Exception):
    """An answer other than 200: status code plus the JSON body wire.py documents."""

    def __init__(self, status: int, error: str, **fields: object) -> None:
        super().__init__(f"{status} {error} {fields}")
        self.status = status
        self.body: dict[str, object] = {"error": error, **fields}


def bad_request(message: str) -> Refusal:
    return Refusal(400, wire.BAD_REQUEST, message=message)


def refused_option(option: str, why: str) -> Refusal:
    return Refusal(400, wire.REFUSED_OPTION, option=option, message=f"{option}: {why}")
