"""The execution role's rules, alone: names from any form of a function name, and the trust
policy parsed (the role's life against moto is in test_deploy_role.py)."""

from __future__ import annotations

from typing import Any

import pytest

from build.aws_errors import UsageError
from build.execution_role import (
    LAMBDA_TRUST_POLICY,
    FunctionRef,
    RoleSpec,
    role_name_for,
    trust_problems,
)

ARN = "arn:aws:lambda:eu-west-1:123456789012:function"


@pytest.mark.parametrize(
    ("given", "name", "region", "qualifier"),
    [
        ("billing", "billing", None, None),
        ("billing:prod", "billing", None, "prod"),
        ("123456789012:function:billing", "billing", None, None),
        (f"{ARN}:billing", "billing", "eu-west-1", None),
        (f"{ARN}:billing:prod", "billing", "eu-west-1", "prod"),
        (f"{ARN}:billing:$LATEST", "billing", "eu-west-1", "$LATEST"),
    ],
)
def test_the_function_name_is_found_in_every_form_lambda_takes(
    given: str, name: str, region: str | None, qualifier: str | None
) -> None:
    ref = FunctionRef.parse(given)
    assert (ref.name, ref.region, ref.qualifier) == (name, region, qualifier)


@pytest.mark.parametrize("given", ["", "a b", "x" * 65, "arn:aws:lambda:eu-west-1:1:function:f"])
def test_what_is_no_function_name_is_a_usage_error(given: str) -> None:
    with pytest.raises(UsageError, match="FUNCTION must be a function name"):
        FunctionRef.parse(given)


def test_qualified_arns_of_two_functions_get_two_roles() -> None:
    billing = role_name_for(FunctionRef.parse(f"{ARN}:billing:prod"))
    search = role_name_for(FunctionRef.parse(f"{ARN}:search:prod"))
    assert (billing, search) == ("staticlambda-billing", "staticlambda-search")


def test_names_cut_to_64_keep_apart_by_a_hash() -> None:
    # 51 characters fit beside the prefix as they are; longer ones are cut and hashed.
    assert role_name_for(FunctionRef("f" * 51)) == "staticlambda-" + "f" * 51
    long = ["f" * 63 + "a", "f" * 63 + "b", "f" * 52]
    roles = [role_name_for(FunctionRef(name)) for name in long]
    assert len(set(roles)) == 3
    assert all(len(role) == 64 and role.startswith("staticlambda-" + "f" * 42) for role in roles)
    assert roles[0] == role_name_for(FunctionRef(long[0]))  # stable from run to run


ALLOW = LAMBDA_TRUST_POLICY["Statement"][0]


def trust(*statements: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


@pytest.mark.parametrize(
    "document",
    [
        LAMBDA_TRUST_POLICY,
        trust({**ALLOW, "Action": ["sts:AssumeRole"], "Sid": "x"}),
        "%7B%22Statement%22%3A%20%5B%7B%22Effect%22%3A%20%22Allow%22%2C%20%22Principal%22%3A%20"
        "%7B%22Service%22%3A%20%22lambda.amazonaws.com%22%7D%2C%20%22Action%22%3A%20%22sts%3A"
        "AssumeRole%22%7D%5D%7D",
    ],
    ids=["ours", "list-and-sid", "url-encoded"],
)
def test_a_trust_in_lambda_alone_passes(document: Any) -> None:
    assert trust_problems(document) == []


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (trust({**ALLOW, "Effect": "Deny"}), "trust statement is Deny, not Allow"),
        (trust(ALLOW, {**ALLOW, "Effect": "Deny"}), "trust policy has 2 statements"),
        (
            trust({**ALLOW, "Principal": {"AWS": "arn:aws:iam::999999999999:root"}}),
            'trusts {"AWS": "arn:aws:iam::999999999999:root"}, not lambda.amazonaws.com alone',
        ),
        (
            trust({**ALLOW, "Principal": {"Service": "lambda.amazonaws.com", "AWS": "*"}}),
            "not lambda.amazonaws.com alone",
        ),
        (trust({**ALLOW, "Principal": "*"}), 'trusts "*"'),
        (trust({**ALLOW, "Action": "sts:*"}), 'trust allows "sts:*", not sts:AssumeRole'),
        (
            trust({k: v for k, v in ALLOW.items() if k != "Principal"} | {"NotPrincipal": {}}),
            "trust statement uses NotPrincipal",
        ),
        (
            # Narrower, but not what create_role writes: a role of ours never has one.
            trust({**ALLOW, "Condition": {"StringEquals": {"aws:SourceAccount": "1" * 12}}}),
            "trust statement uses Condition",
        ),
        ({"Version": "2012-10-17"}, "trust policy unreadable"),
        ("not json", "trust policy unreadable"),
    ],
    ids=[
        "deny",
        "allow-and-deny",
        "other-account",
        "lambda-and-anyone",
        "anyone",
        "any-sts",
        "not-principal",
        "condition",
        "no-statement",
        "garbage",
    ],
)
def test_any_other_trust_is_refused(document: Any, problem: str) -> None:
    assert any(problem in found for found in trust_problems(document))


def test_the_logs_policy_names_only_the_functions_log_group() -> None:
    spec = RoleSpec("staticlambda-f", "f", "eu-west-1", "aws-cn")
    group = "arn:aws-cn:logs:eu-west-1:123456789012:log-group:/aws/lambda/f"
    assert spec.logs_policy("123456789012")["Statement"] == [
        {
            "Sid": "ItsOwnLogGroupOnly",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [group, f"{group}:*"],
        }
    ]
