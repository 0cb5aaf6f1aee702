"""The execution role `--create-role` makes, and the only kind of existing role it will use.

    FunctionRef         a function given by name, partial ARN, ARN or qualified ARN, parsed:
                        the role and the log group belong to the unqualified name
    role_name_for       staticlambda-<function>; cut to IAM's 64 characters with a short hash,
                        so two long names never share a role
    RoleSpec            the role one deploy wants: name, function, region, boundary
    logs_policy         its one inline policy: the function's own log group, nothing else
    trust_problems      what in a trust policy is not "Lambda, and only Lambda, may assume this"
    role_problems       read-only: why an existing role is not the one this deploy would make
    plan_role           before any write: the ARN of a role to reuse, None to create, or refuse
    create_role         the role, tagged at birth, its inline policy, its boundary
    check_again         right before CreateFunction: the role is still what was checked

Why so strict: a role is reused only when it is exactly what `create_role` makes: its path,
its trust policy, its tags (the one it is made with and no other), its one inline policy
and no other inline or managed one, its permissions boundary. A role of the same name made
by someone else may trust another account or hold AdministratorAccess; running a function
as it would hand the function (and whoever controls the code) those rights, and a copied
tag proves nothing. Such a role is refused with one line naming what is wrong; nothing is
attached to an existing role, ever. The role may change between the plan and the function's
creation (by someone else's hand, or a race): it is checked again right before each
CreateFunction call. To run a function as a role of your own making, pass ROLE=<arn>.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import botocore.exceptions  # type: ignore[import-untyped]

from build.aws_errors import DeployError, UsageError, error_code

ROLE_PREFIX = "staticlambda-"
ROLE_PATH = "/"  # create_role gives none: IAM's default
MAX_ROLE_NAME = 64  # IAM's limit
HASH_CHARS = 8  # 32 bits: names cut alike differ here
CREATED_FOR_TAG = "staticlambda:created-for"
LOGS_POLICY_NAME = "staticlambda-logs"
LOGS_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
LAMBDA_SERVICE = "lambda.amazonaws.com"
LAMBDA_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": LAMBDA_SERVICE},
            "Action": "sts:AssumeRole",
        }
    ],
}

# FunctionName as Lambda's API takes it: name, 123456789012:function:name, or the full ARN,
# each optionally followed by :version or :alias.
FUNCTION_REF = re.compile(
    r"^(?:(?:arn:(?P<partition>aws[a-z-]*):lambda:(?P<region>[a-z0-9-]+):)?"
    r"(?P<account>\d{12}):function:)?"
    r"(?P<name>[A-Za-z0-9_-]{1,64})"
    r"(?::(?P<qualifier>\$LATEST|[A-Za-z0-9_-]{1,128}))?$"
)
ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
POLICY_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:iam::(\d{12}|aws):policy/[\w+=,.@/-]{1,512}$")


@dataclass(frozen=True)
class FunctionRef:
    name: str  # unqualified: what the log group and the role are named after
    region: str | None = None
    account: str | None = None
    qualifier: str | None = None

    @classmethod
    def parse(cls, text: str) -> FunctionRef:
        match = FUNCTION_REF.match(text)
        if match is None:
            raise UsageError(
                f"FUNCTION must be a function name (letters, digits, - and _, at most 64) or "
                f"its ARN, not {text!r}"
            )
        return cls(match["name"], match["region"], match["account"], match["qualifier"])


def role_name_for(function: FunctionRef) -> str:
    """staticlambda-<unqualified name>, at most 64 characters.

    When the name must be cut, the cut part is replaced by a hash of the whole name, so
    functions that differ only past the cut still get roles of their own.
    """
    name = ROLE_PREFIX + function.name
    if len(name) <= MAX_ROLE_NAME:
        return name
    digest = hashlib.sha256(function.name.encode()).hexdigest()[:HASH_CHARS]
    return f"{name[: MAX_ROLE_NAME - HASH_CHARS - 1]}-{digest}"


def check_role_name(name: str) -> str:
    if not ROLE_NAME.match(name):
        raise UsageError(
            f"--role-name {name!r} is not an IAM role name (1-64 of letters, digits and +=,.@_-)"
        )
    return name


def check_boundary(arn: str) -> str:
    if not POLICY_ARN.match(arn):
        raise UsageError(
            "PERMISSIONS_BOUNDARY must be an IAM policy ARN "
            f"(arn:aws:iam::<account>:policy/<name>), not {arn!r}"
        )
    return arn


@dataclass(frozen=True)
class RoleSpec:
    """The role one deploy wants, all but the account (known once IAM answers)."""

    name: str
    function: str  # the unqualified function name
    region: str
    partition: str
    boundary: str | None = None

    def log_group_arn(self, account: str) -> str:
        group = f"/aws/lambda/{self.function}"
        return f"arn:{self.partition}:logs:{self.region}:{account}:log-group:{group}"

    def logs_policy(self, account: str) -> dict[str, Any]:
        """Create and write the function's own log group: Lambda writes nowhere else.

        AWSLambdaBasicExecutionRole grants the same actions on every log group in the
        account; a function could then write into (or create) any other function's logs.
        """
        group = self.log_group_arn(account)
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ItsOwnLogGroupOnly",
                    "Effect": "Allow",
                    "Action": list(LOGS_ACTIONS),
                    "Resource": [group, f"{group}:*"],
                }
            ],
        }

    def describe_new(self, account: str | None) -> str:
        """The plan's words for the role create_role makes, everything it will hold."""
        group = self.log_group_arn(account or "<account>")
        boundary = f"permissions boundary {self.boundary}" if self.boundary else "no boundary"
        return (
            f"{self.name} (new: trusts {LAMBDA_SERVICE} only, tag {CREATED_FOR_TAG}="
            f"{self.function}, inline policy {LOGS_POLICY_NAME} allowing "
            f"{', '.join(LOGS_ACTIONS)} on {group} and {group}:* only, no managed policy, "
            f"{boundary})"
        )


def policy_document(value: Any) -> Any:
    """A policy as IAM returns it: a dict (boto3 decodes it) or URL-encoded JSON."""
    if isinstance(value, str):
        try:
            return json.loads(unquote(value))
        except ValueError:
            return None
    return value


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def trust_problems(document: Any) -> list[str]:
    """What keeps a trust policy from meaning "lambda.amazonaws.com may assume it, no one else".

    Parsed, not searched: a Deny that names Lambda, or an Allow for Lambda beside one for
    another account, holds the string "lambda.amazonaws.com" too.
    """
    document = policy_document(document)
    statements = document.get("Statement") if isinstance(document, dict) else None
    if statements is None:
        return ["trust policy unreadable"]
    statements = as_list(statements)
    if len(statements) != 1:
        return [f"trust policy has {len(statements)} statements, not one Allow for Lambda"]
    (statement,) = statements
    if not isinstance(statement, dict):
        return ["trust policy unreadable"]
    problems = []
    if statement.get("Effect") != "Allow":
        problems.append(f"trust statement is {statement.get('Effect')}, not Allow")
    # A Sid is a label; a Condition, even one that narrows, is not what create_role writes.
    extra = sorted(set(statement) - {"Sid", "Effect", "Principal", "Action"})
    if extra:
        problems.append(f"trust statement uses {', '.join(extra)}")
    principal = statement.get("Principal")
    services = principal.get("Service") if isinstance(principal, dict) else None
    if (
        not isinstance(principal, dict)
        or set(principal) != {"Service"}
        or (as_list(services) != [LAMBDA_SERVICE])
    ):
        problems.append(f"trusts {json.dumps(principal)}, not {LAMBDA_SERVICE} alone")
    if as_list(statement.get("Action")) != ["sts:AssumeRole"]:
        problems.append(f"trust allows {json.dumps(statement.get('Action'))}, not sts:AssumeRole")
    return problems


def all_pages(iam: Any, operation: str, key: str, role_name: str) -> list[Any]:
    pages = iam.get_paginator(operation).paginate(RoleName=role_name)
    return [item for page in pages for item in page[key]]


def role_problems(iam: Any, role: dict[str, Any], spec: RoleSpec) -> list[str]:
    """Read-only: what differs between an existing role and the one create_role would make."""
    problems = []
    tags = {t["Key"]: t["Value"] for t in all_pages(iam, "list_role_tags", "Tags", spec.name)}
    made_for = tags.pop(CREATED_FOR_TAG, None)
    if made_for is None:
        problems.append(f"no tag {CREATED_FOR_TAG} (staticlambda did not make it)")
    elif made_for != spec.function:
        problems.append(f"made for function {made_for}, not {spec.function}")
    if tags:
        problems.append(f"tags not staticlambda's ({few(sorted(tags))})")
    if role.get("Path", ROLE_PATH) != ROLE_PATH:
        problems.append(f"path {role['Path']}, not {ROLE_PATH}")
    problems += trust_problems(role.get("AssumeRolePolicyDocument"))
    attached = all_pages(iam, "list_attached_role_policies", "AttachedPolicies", spec.name)
    if attached:
        problems.append(f"managed policies attached ({few(p['PolicyName'] for p in attached)})")
    inline = all_pages(iam, "list_role_policies", "PolicyNames", spec.name)
    others = [name for name in inline if name != LOGS_POLICY_NAME]
    if others:
        problems.append(f"inline policies not staticlambda's ({few(others)})")
    if LOGS_POLICY_NAME not in inline:
        problems.append(f"no inline policy {LOGS_POLICY_NAME}")
    else:
        account = account_of(str(role["Arn"]))
        document = iam.get_role_policy(RoleName=spec.name, PolicyName=LOGS_POLICY_NAME)
        if policy_document(document["PolicyDocument"]) != spec.logs_policy(account):
            problems.append(
                f"{LOGS_POLICY_NAME} is not the policy for {spec.log_group_arn(account)}"
            )
    boundary = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    if boundary != spec.boundary:
        problems.append(f"permissions boundary {boundary or 'none'}, not {spec.boundary or 'none'}")
    return problems


def few(names: Any, shown: int = 3) -> str:
    """A list that keeps the error to one line whatever the role holds."""
    names = list(names)
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def refuse(spec: RoleSpec, problems: list[str]) -> DeployError:
    return DeployError(
        f"role {spec.name} exists and will not be used for {spec.function}: "
        f"{'; '.join(problems)}. Use --role-name NAME, delete the role, or pass ROLE=<its ARN>"
    )


def plan_role(iam: Any, spec: RoleSpec) -> str | None:
    """Read-only: the ARN of an existing role this deploy made and may reuse as it is,
    None when there is none to reuse; raises when one of that name exists but is not ours."""
    try:
        role = iam.get_role(RoleName=spec.name)["Role"]
    except botocore.exceptions.ClientError as e:
        if error_code(e) == "NoSuchEntity":
            return None
        raise
    problems = role_problems(iam, role, spec)
    if problems:
        raise refuse(spec, problems)
    return str(role["Arn"])


def check_again(iam: Any, spec: RoleSpec, arn: str) -> None:
    """Read-only, right before the role is given to the function: it is still the role that
    was checked (or made), or the deploy stops there, nothing created."""
    try:
        role = iam.get_role(RoleName=spec.name)["Role"]
    except botocore.exceptions.ClientError as e:
        if error_code(e) != "NoSuchEntity":
            raise
        problems = ["it no longer exists"]
    else:
        problems = role_problems(iam, role, spec)
        if str(role["Arn"]) != arn:
            problems.insert(0, f"it is {role['Arn']} now, not {arn}")
    if problems:
        raise DeployError(
            f"role {spec.name} changed after it was checked and was not given to "
            f"{spec.function}: {'; '.join(problems)}. Nothing was created; deploy again to "
            "check it anew"
        )


def create_role(iam: Any, spec: RoleSpec, description: str) -> tuple[str, bool]:
    """Make the role with its tag and boundary in one call, then its inline policy.

    Returns (role ARN, True when made now). A role that appeared since plan_role looked is
    checked as any existing one, and reused only if it passes.
    """
    params: dict[str, Any] = {
        "RoleName": spec.name,
        "AssumeRolePolicyDocument": json.dumps(LAMBDA_TRUST_POLICY),
        "Description": description,
        "Tags": [{"Key": CREATED_FOR_TAG, "Value": spec.function}],
    }
    if spec.boundary:
        params["PermissionsBoundary"] = spec.boundary
    try:
        arn = str(iam.create_role(**params)["Role"]["Arn"])
    except botocore.exceptions.ClientError as e:
        if error_code(e) != "EntityAlreadyExists":
            raise
        reused = plan_role(iam, spec)
        if reused is None:
            raise DeployError(
                f"role {spec.name} appeared and vanished while deploying: deploy again"
            ) from None
        return reused, False
    iam.put_role_policy(
        RoleName=spec.name,
        PolicyName=LOGS_POLICY_NAME,
        PolicyDocument=json.dumps(spec.logs_policy(account_of(arn))),
    )
    return arn, True


def account_of(arn: str) -> str:
    return arn.split(":")[4]
