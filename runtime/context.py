"""The context object a handler receives: the attributes and behaviour of
awslambdaric's ``LambdaContext``, which libraries such as aws-lambda-powertools read."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

from runtime import errors
from runtime.config import Config
from runtime.errors import Fault

if TYPE_CHECKING:
    from runtime.client import Invocation


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, cognito_identity_id: str | None = None, pool_id: str | None = None):
        self.cognito_identity_id = cognito_identity_id
        self.cognito_identity_pool_id = pool_id

    def __repr__(self) -> str:
        return (
            f"CognitoIdentity([cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}])"
        )


class Client:
    # awslambdaric's order, which __init__ and __repr__ follow.
    __slots__ = (  # noqa: RUF023
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    )

    def __init__(self, fields: dict[str, Any]):
        for name in self.__slots__:
            setattr(self, name, fields.get(name))

    def __repr__(self) -> str:
        return "Client([" + ",".join(f"{n}={getattr(self, n)}" for n in self.__slots__) + "])"


class ClientContext:
    __slots__ = ("client", "custom", "env")

    def __init__(self, fields: dict[str, Any]):
        client = fields.get("client")
        self.client = Client(client) if isinstance(client, dict) else None
        self.custom = fields.get("custom")
        self.env = fields.get("env")

    def __repr__(self) -> str:
        return f"ClientContext([custom={self.custom},env={self.env},client={self.client}])"


class LambdaContext:
    def __init__(
        self,
        config: Config,
        aws_request_id: str,
        deadline_ms: int,
        invoked_function_arn: str | None = None,
        client_context: ClientContext | None = None,
        identity: CognitoIdentity | None = None,
        tenant_id: str | None = None,
    ):
        self.aws_request_id = aws_request_id
        self.log_group_name = config.log_group_name
        self.log_stream_name = config.log_stream_name
        self.function_name = config.function_name
        self.memory_limit_in_mb = config.memory_limit_in_mb
        self.function_version = config.function_version
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        self.client_context = client_context
        # awslambdaric always gives an identity object, empty when Lambda sent none.
        self.identity = identity if identity is not None else CognitoIdentity()
        self._deadline_ms = deadline_ms

    @classmethod
    def from_invocation(cls, config: Config, invocation: Invocation) -> LambdaContext:
        """The context of one invoke, from /next's headers and the function's
        configuration; raises a ``Fault`` (Runtime.LambdaContextUnmarshalError)
        for a client context or identity that is not a JSON object."""
        return cls(
            config,
            invocation.request_id,
            invocation.deadline_ms,
            invocation.invoked_function_arn,
            parse_client_context(invocation.client_context),
            parse_cognito_identity(invocation.cognito_identity),
            invocation.tenant_id,
        )

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, msg: str) -> None:
        sys.stdout.write(str(msg))
        sys.stdout.flush()

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},identity={self.identity},"
            f"tenant_id={self.tenant_id}])"
        )


def parse_client_context(header: str | None) -> ClientContext | None:
    if not header:
        return None
    fields = _json_object(header, "Unable to parse Client Context JSON")
    return ClientContext(fields)


def parse_cognito_identity(header: str | None) -> CognitoIdentity | None:
    if not header:
        return None
    fields = _json_object(header, "Unable to parse Cognito Identity JSON")
    return CognitoIdentity(fields.get("cognitoIdentityId"), fields.get("cognitoIdentityPoolId"))


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as e:  # RecursionError: nested too deep
        raise Fault(errors.CONTEXT_UNMARSHAL_ERROR, f"{what}: {e}") from None
    if not isinstance(value, dict):
        raise Fault(errors.CONTEXT_UNMARSHAL_ERROR, f"{what}: expected an object")
    return value
