"""CREATE_ROLE's step of a deploy (the role itself: build/execution_role.py)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from build import execution_role
from build.aws import Aws, Console
from build.execution_role import FunctionRef, RoleSpec


@dataclass
class RoleStep:
    """CREATE_ROLE's part of a plan, looked at before anything is written: a role of that
    name this deploy did not make stops it there, the dry run included."""

    iam: Any
    spec: RoleSpec
    reusable: str | None  # the ARN of a role this deploy made for the function earlier
    account: str | None  # for the plan's words, when known before the role is

    @classmethod
    def look(cls, aws: Aws, args: argparse.Namespace, function: FunctionRef) -> RoleStep:
        spec = RoleSpec(
            name=args.role_name or execution_role.role_name_for(function),
            function=function.name,
            region=aws.region,
            partition=aws.partition,
            boundary=args.permissions_boundary,
        )
        iam = aws.client("iam")
        reusable = execution_role.plan_role(iam, spec)
        account = function.account or (reusable and execution_role.account_of(reusable))
        return cls(iam, spec, reusable, account)

    def describe(self) -> str:
        if self.reusable:
            return (
                f"{self.reusable} (made by staticlambda for {self.spec.function}: reused as it is)"
            )
        return self.spec.describe_new(self.account)

    def check_again(self, arn: str) -> None:
        """Right before CreateFunction: the role is still what was checked or made."""
        execution_role.check_again(self.iam, self.spec, arn)

    def role_arn(self, console: Console) -> str:
        if self.reusable:
            console.info(f"reusing role {self.reusable}")
            return self.reusable
        spec = self.spec
        description = f"Execution role of Lambda function {spec.function} (staticlambda)"
        arn, created = execution_role.create_role(self.iam, spec, description)
        if not created:
            console.info(f"reusing role {arn} (made by staticlambda for {spec.function}, checked)")
            return arn
        console.info(
            f"created role {arn}: trusts {execution_role.LAMBDA_SERVICE}, inline policy "
            f"{execution_role.LOGS_POLICY_NAME} on "
            f"{spec.log_group_arn(execution_role.account_of(arn))} only"
            + (f", permissions boundary {spec.boundary}" if spec.boundary else "")
        )
        return arn
