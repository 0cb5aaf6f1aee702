"""Every header name the runtime speaks: the Runtime API (2018-06-01) and the
Extensions API (2020-01-01), in one place."""

from __future__ import annotations

# Sent by Lambda with each event from GET /runtime/invocation/next.
REQUEST_ID = "Lambda-Runtime-Aws-Request-Id"
DEADLINE_MS = "Lambda-Runtime-Deadline-Ms"
INVOKED_FUNCTION_ARN = "Lambda-Runtime-Invoked-Function-Arn"
TRACE_ID = "Lambda-Runtime-Trace-Id"
CLIENT_CONTEXT = "Lambda-Runtime-Client-Context"
COGNITO_IDENTITY = "Lambda-Runtime-Cognito-Identity"
TENANT_ID = "Lambda-Runtime-Aws-Tenant-Id"
# Sent by Lambda with an event, and echoed by the runtime with its answer
# (awslambdaric 4.2.2 does: "for cross-wiring protection"); not always sent.
INVOCATION_ID = "Lambda-Runtime-Invocation-Id"

# Sent by the runtime with every request: its first token is what Lambda
# records as the runtime's release.
USER_AGENT = "User-Agent"

# Sent by the runtime with an error report.
FUNCTION_ERROR_TYPE = "Lambda-Runtime-Function-Error-Type"
FUNCTION_XRAY_ERROR_CAUSE = "Lambda-Runtime-Function-XRay-Error-Cause"

# Sent by the runtime with a streamed response (the error ones as trailers).
FUNCTION_RESPONSE_MODE = "Lambda-Runtime-Function-Response-Mode"
FUNCTION_ERROR_BODY = "Lambda-Runtime-Function-Error-Body"

# The Extensions API (2020-01-01), for the graceful-shutdown extension.
EXTENSION_NAME = "Lambda-Extension-Name"
EXTENSION_ID = "Lambda-Extension-Identifier"
