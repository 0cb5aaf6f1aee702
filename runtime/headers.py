"""Every header name of the Runtime API (version 2018-06-01), in one place."""

from __future__ import annotations

# Sent by Lambda with each event from GET /runtime/invocation/next.
REQUEST_ID = "Lambda-Runtime-Aws-Request-Id"
DEADLINE_MS = "Lambda-Runtime-Deadline-Ms"
INVOKED_FUNCTION_ARN = "Lambda-Runtime-Invoked-Function-Arn"
TRACE_ID = "Lambda-Runtime-Trace-Id"
CLIENT_CONTEXT = "Lambda-Runtime-Client-Context"
COGNITO_IDENTITY = "Lambda-Runtime-Cognito-Identity"
TENANT_ID = "Lambda-Runtime-Aws-Tenant-Id"

# Sent by the runtime with an error report.
FUNCTION_ERROR_TYPE = "Lambda-Runtime-Function-Error-Type"
FUNCTION_XRAY_ERROR_CAUSE = "Lambda-Runtime-Function-XRay-Error-Cause"

# The environment variable the X-Ray SDK reads the current trace from.
TRACE_ENV = "_X_AMZN_TRACE_ID"
