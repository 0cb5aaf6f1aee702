"""Sample values shared by the tests: a mobile SDK's client context, as Lambda
passes it in Lambda-Runtime-Client-Context (and the emulator from X-Amz-Client-Context)."""

from __future__ import annotations

from typing import Any

CLIENT_CONTEXT: dict[str, Any] = {
    "client": {
        "installation_id": "inst-1",
        "app_title": "Shop",
        "app_version_name": "2.1",
        "app_version_code": "21",
        "app_package_name": "com.example.shop",
    },
    "custom": {"cart": "42"},
    "env": {"platform": "Android", "locale": "fr_FR"},
}
