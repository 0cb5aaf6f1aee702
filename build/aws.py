"""The AWS plumbing deploy (a zip or an image) and remote_invoke share: one boto3 session with
its credentials checked and hidden, one console that redacts every line, one way to end a
command.

    Aws       the session: region (AWS_REGION honoured), partition, clients with retries
    Console   progress to stdout; notices, warnings, errors to stderr; secrets redacted
    Parser    argparse whose usage error is one line (a UsageError)
    guarded   every failure a user can cause as one line and an exit status
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, NoReturn, TextIO
from urllib.parse import urlsplit

import boto3  # type: ignore[import-untyped]
import botocore.config  # type: ignore[import-untyped]
import botocore.exceptions  # type: ignore[import-untyped]

from build.aws_errors import (
    NO_CREDENTIALS,
    NO_REGION,
    DeployError,
    UsageError,
    explain,
)
from build.redaction import Redactor

# Standard retries: botocore backs off on throttling and transient errors in each call.
# A 50 MB upload can take Lambda a while to answer, hence the longer read timeout.
AWS_CONFIG = botocore.config.Config(
    retries={"mode": "standard", "max_attempts": 5},
    read_timeout=120,
    user_agent_appid="staticlambda",
)

# The variables whose values are hidden from every line printed, whatever prints it.
SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")


class Console:
    """Where deploy speaks: progress to ``out``; notices, warnings and errors to ``err``.

    Every line goes through ``redact``: once a credential's value is known, it never
    reaches the terminal, not in --debug output, not inside a message AWS sent back, not
    JSON-escaped, URL-encoded, base64 or hex (build/redaction.py).
    """

    def __init__(self, out: TextIO, err: TextIO, prog: str = "deploy", debug: bool = False):
        self.out, self.err, self.prog, self.debugging = out, err, prog, debug
        self._redactor = Redactor()

    def hide(self, *values: str | None) -> None:
        self._redactor.hide(*values)

    def redact(self, text: str) -> str:
        return self._redactor.redact(text)

    def redact_cut(self, text: str) -> str:
        """``redact`` for a window of a longer text, which may start or end inside a secret."""
        return self._redactor.redact_cut(text)

    def _print(self, stream: TextIO, text: str) -> None:
        print(self.redact(text), file=stream, flush=True)

    def info(self, text: str) -> None:
        self._print(self.out, f"{self.prog}: {text}")

    def notice(self, text: str) -> None:
        self._print(self.err, f"{self.prog}: notice: {text}")

    def warn(self, text: str) -> None:
        self._print(self.err, f"{self.prog}: warning: {text}")

    def error(self, text: str) -> None:
        # One line, whatever came back: an emulator's HTML error page would be a screenful.
        line = " ".join(text.split())
        self._print(self.err, f"{self.prog}: error: {line[:600]}{'...' if len(line) > 600 else ''}")

    def debug(self, text: str) -> None:
        if self.debugging:
            self._print(self.err, f"{self.prog}: debug: {text}")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and a UsageError) instead of two."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see --help)")


def guarded(console: Console, command: Callable[[], int]) -> int:
    """Run a command: every failure a user can cause is one line and an exit status
    (2: usage, 1: AWS or the artifact, 130: interrupted), never a traceback."""
    try:
        return command()
    except UsageError as e:
        console.error(str(e))
        return 2
    except DeployError as e:
        console.error(str(e))
        return 1
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        console.error(explain(e))
        return 1
    except KeyboardInterrupt:
        console.error("interrupted")
        return 130


def run_cli(
    console: Console,
    environ: Mapping[str, str],
    parse: Callable[[], argparse.Namespace],
    run: Callable[[argparse.Namespace], int],
) -> int:
    """The main of every command that talks to AWS (deploy, remote-invoke):
    the credentials it runs with hidden from all it prints, `--debug` honoured, every
    failure one line (guarded)."""
    console.hide(*(environ.get(name) for name in SECRET_VARIABLES))

    def command() -> int:
        args = parse()
        console.debugging = args.debug
        return run(args)

    return guarded(console, command)


def known_regions(session: Any) -> set[str]:
    return {
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("lambda", partition_name=partition)
    }


@dataclass
class Aws:
    """One boto3 session, its credentials checked and hidden from the console."""

    session: Any
    console: Console

    @classmethod
    def open(cls, region: str | None, console: Console) -> Aws:
        # The AWS CLI (v2) and Lambda itself use AWS_REGION; boto3 reads only
        # AWS_DEFAULT_REGION and the profile, so AWS_REGION is honoured here.
        region = region or os.environ.get("AWS_REGION") or None
        session = boto3.session.Session(region_name=region)
        credentials = session.get_credentials()
        if credentials is None:
            raise DeployError(NO_CREDENTIALS)
        frozen = credentials.get_frozen_credentials()
        console.hide(frozen.access_key, frozen.secret_key, frozen.token)
        console.debug(f"credentials from: {credentials.method}")
        if not session.region_name:
            raise UsageError(NO_REGION)
        return cls(session, console)

    @property
    def region(self) -> str:
        return str(self.session.region_name)

    @property
    def partition(self) -> str:
        """aws, aws-cn, aws-us-gov...: the second field of every ARN in the region."""
        try:
            return str(self.session.get_partition_for_region(self.region))
        except botocore.exceptions.UnknownRegionError:  # a local emulator's name: assume aws
            return "aws"

    def client(self, service: str) -> Any:
        client = self.session.client(service, config=AWS_CONFIG)
        endpoint = client.meta.endpoint_url
        host = urlsplit(endpoint).hostname or ""
        # A region botocore does not know, on AWS's own endpoint, is a typo: the DNS error
        # it would end in says less. A redirected endpoint may use any region name.
        if self.region not in known_regions(self.session) and self.region in host.split("."):
            raise UsageError(f"unknown AWS region {self.region!r} (check REGION / AWS_REGION)")
        self.console.debug(f"{service} endpoint: {endpoint} (region {self.region})")
        client.meta.events.register("after-call", self._log_call)
        return client

    def _log_call(self, http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
        # Operation, status and request id only: never headers, where the signature lives.
        meta = parsed.get("ResponseMetadata", {})
        code = parsed.get("Error", {}).get("Code")
        self.console.debug(
            f"{model.service_model.service_name}.{model.name} -> HTTP {http_response.status_code}"
            f"{' ' + code if code else ''} (request id {meta.get('RequestId', '-')}, "
            f"{meta.get('RetryAttempts', 0)} retries)"
        )
