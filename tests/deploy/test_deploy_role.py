"""CREATE_ROLE=1 against moto (build/deploy/role.py, build/execution_role.py): the role made,
reused only when this deploy made it for this function, refused otherwise; a given role.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from deploy_support import (
    ACCOUNT,
    ADMIN_POLICY,
    LOG_GROUP,
    REGION,
    Hook,
    aws_error,
    client,
    configuration,
    make_role,
    make_zip,
    run_deploy,
)
from support import MotoServer

from build import execution_role


def test_create_role_is_least_privilege_and_waits_for_propagation(
    aws: MotoServer, tmp_path: Path, hooks: list[tuple[str, Hook]]
) -> None:
    # A new role is not assumable at once: Lambda refuses it twice, then accepts.
    not_yet = "The role defined for the function cannot be assumed by Lambda."
    hooks.append(
        (
            "before-call.lambda.CreateFunction",
            aws_error("InvalidParameterValueException", not_yet, times=2),
        )
    )
    result = run_deploy("--function", "hello", "--create-role", zip_path=make_zip(tmp_path))
    assert result.code == 0, result.err
    assert len(result.sleeps) == 2 and result.out.count("cannot be assumed") == 2
    iam = client("iam")
    role = iam.get_role(RoleName="staticlambda-hello")["Role"]
    assert role["AssumeRolePolicyDocument"] == execution_role.LAMBDA_TRUST_POLICY
    assert "PermissionsBoundary" not in role
    assert iam.list_role_tags(RoleName="staticlambda-hello")["Tags"] == [
        {"Key": "staticlambda:created-for", "Value": "hello"}
    ]
    # No managed policy: AWSLambdaBasicExecutionRole would let it write any log group.
    assert iam.list_attached_role_policies(RoleName="staticlambda-hello")["AttachedPolicies"] == []
    assert iam.list_role_policies(RoleName="staticlambda-hello")["PolicyNames"] == [
        "staticlambda-logs"
    ]
    policy = iam.get_role_policy(RoleName="staticlambda-hello", PolicyName="staticlambda-logs")
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Sid": "ItsOwnLogGroupOnly",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [LOG_GROUP, f"{LOG_GROUP}:*"],
        }
    ]
    assert configuration()["Role"] == role["Arn"]
    assert f"created role {role['Arn']}: trusts lambda.amazonaws.com, inline policy " in result.out


def test_the_plan_says_what_the_role_will_hold_and_the_boundary_is_set(
    aws: MotoServer, tmp_path: Path
) -> None:
    boundary = client("iam").create_policy(
        PolicyName="developer-boundary",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}],
            }
        ),
    )["Policy"]["Arn"]
    args = ("--function", "hello", "--create-role", "--permissions-boundary", boundary)
    planned = (
        "role staticlambda-hello (new: trusts lambda.amazonaws.com only, tag "
        "staticlambda:created-for=hello, inline policy staticlambda-logs allowing "
        "logs:CreateLogGroup, logs:CreateLogStream, logs:PutLogEvents on "
        f"arn:aws:logs:{REGION}:<account>:log-group:/aws/lambda/hello and "
        f"arn:aws:logs:{REGION}:<account>:log-group:/aws/lambda/hello:* only, "
        f"no managed policy, permissions boundary {boundary})"
    )
    dry = run_deploy(*args, "--dry-run", zip_path=make_zip(tmp_path))
    assert dry.code == 0, dry.err
    assert f"hello does not exist in {REGION}: would create it: {planned}" in dry.out
    assert [r["RoleName"] for r in client("iam").list_roles()["Roles"]] == []

    result = run_deploy(*args, zip_path=make_zip(tmp_path))
    assert result.code == 0, result.err
    assert f"create it: {planned}" in result.out
    role = client("iam").get_role(RoleName="staticlambda-hello")["Role"]
    assert role["PermissionsBoundary"] == {
        "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
        "PermissionsBoundaryArn": boundary,
    }
    (created,) = [line for line in result.out.splitlines() if "created role" in line]
    assert created.endswith(f", permissions boundary {boundary}")


def test_create_role_reuses_the_role_it_made_for_the_function_as_it_is(
    aws: MotoServer, tmp_path: Path
) -> None:
    assert run_deploy("--function", "hello", "--create-role", zip_path=make_zip(tmp_path)).code == 0
    client("lambda").delete_function(FunctionName="hello")
    result = run_deploy(
        "--function", "hello", "--create-role", "--debug", zip_path=make_zip(tmp_path)
    )
    assert result.code == 0, result.err
    arn = f"arn:aws:iam::{ACCOUNT}:role/staticlambda-hello"
    assert f"create it: role {arn} (made by staticlambda for hello: reused as it is)" in result.out
    iam_calls = {line.split()[2] for line in result.err.splitlines() if "debug: iam." in line}
    assert iam_calls == {
        "iam.GetRole",
        "iam.ListRoleTags",
        "iam.ListAttachedRolePolicies",
        "iam.ListRolePolicies",
        "iam.GetRolePolicy",
    }


def test_create_role_refuses_an_admin_role_of_its_name_and_changes_nothing(
    aws: MotoServer, tmp_path: Path
) -> None:
    # Planted by someone else: trusts another account, holds AdministratorAccess and *:*.
    iam = client("iam")
    other_account = {"AWS": "arn:aws:iam::999999999999:root"}
    make_role(
        "staticlambda-hello",
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": other_account, "Action": "sts:AssumeRole"}
            ],
        },
    )
    iam.attach_role_policy(RoleName="staticlambda-hello", PolicyArn=ADMIN_POLICY)
    everything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    iam.put_role_policy(
        RoleName="staticlambda-hello", PolicyName="all", PolicyDocument=json.dumps(everything)
    )
    for extra in (["--dry-run"], ["--debug"]):
        result = run_deploy(
            "--function", "hello", "--create-role", *extra, zip_path=make_zip(tmp_path)
        )
        assert result.code == 1
        error = [line for line in result.err.splitlines() if "error" in line]
        assert error == [
            "deploy: error: role staticlambda-hello exists and will not be used for hello: "
            "no tag staticlambda:created-for (staticlambda did not make it); "
            'trusts {"AWS": "arn:aws:iam::999999999999:root"}, not lambda.amazonaws.com '
            "alone; managed policies attached (AdministratorAccess); inline policies not "
            "staticlambda's (all); no inline policy staticlambda-logs. Use --role-name NAME, "
            "delete the role, or pass ROLE=<its ARN>"
        ]
        writes = [
            w
            for w in ("CreateRole", "AttachRolePolicy", "PutRolePolicy", "TagRole")
            if f"iam.{w} " in result.err
        ]
        assert writes == []
    assert client("lambda").list_functions()["Functions"] == []
    attached = iam.list_attached_role_policies(RoleName="staticlambda-hello")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [ADMIN_POLICY]
    assert iam.list_role_policies(RoleName="staticlambda-hello")["PolicyNames"] == ["all"]
    assert iam.list_role_tags(RoleName="staticlambda-hello")["Tags"] == []

    # A forged tag does not make it ours: everything else is still wrong.
    iam.tag_role(
        RoleName="staticlambda-hello", Tags=[{"Key": "staticlambda:created-for", "Value": "hello"}]
    )
    result = run_deploy("--function", "hello", "--create-role", zip_path=make_zip(tmp_path))
    assert result.code == 1 and "AdministratorAccess" in result.err
    assert "no tag" not in result.err
    assert client("lambda").list_functions()["Functions"] == []


LAMBDA_ALLOW = {
    "Effect": "Allow",
    "Principal": {"Service": "lambda.amazonaws.com"},
    "Action": "sts:AssumeRole",
}


@pytest.mark.parametrize(
    ("statements", "problem"),
    [
        (
            [{**LAMBDA_ALLOW, "Effect": "Deny"}],
            "trust statement is Deny, not Allow",
        ),
        (
            [LAMBDA_ALLOW, {**LAMBDA_ALLOW, "Principal": {"AWS": "999999999999"}}],
            "trust policy has 2 statements, not one Allow for Lambda",
        ),
        (
            [
                {
                    **LAMBDA_ALLOW,
                    "Principal": {"Service": ["lambda.amazonaws.com", "ec2.amazonaws.com"]},
                }
            ],
            'trusts {"Service": ["lambda.amazonaws.com", "ec2.amazonaws.com"]}, '
            "not lambda.amazonaws.com alone",
        ),
    ],
    ids=["deny-lambda", "and-another-account", "and-ec2"],
)
def test_create_role_refuses_its_own_role_whose_trust_was_changed(
    aws: MotoServer, tmp_path: Path, statements: list[dict[str, Any]], problem: str
) -> None:
    # The role as this deploy makes it, tag and policy right: only the trust is wrong.
    assert run_deploy("--function", "hello", "--create-role", zip_path=make_zip(tmp_path)).code == 0
    client("lambda").delete_function(FunctionName="hello")
    iam = client("iam")
    trust = {"Version": "2012-10-17", "Statement": statements}
    iam.update_assume_role_policy(RoleName="staticlambda-hello", PolicyDocument=json.dumps(trust))
    result = run_deploy("--function", "hello", "--create-role", zip_path=make_zip(tmp_path))
    assert result.code == 1
    assert result.err == (
        f"deploy: error: role staticlambda-hello exists and will not be used for hello: "
        f"{problem}. Use --role-name NAME, delete the role, or pass ROLE=<its ARN>\n"
    )
    assert client("lambda").list_functions()["Functions"] == []
    assert iam.list_attached_role_policies(RoleName="staticlambda-hello")["AttachedPolicies"] == []
    assert iam.list_role_policies(RoleName="staticlambda-hello")["PolicyNames"] == [
        "staticlambda-logs"
    ]


def test_create_role_refuses_a_role_it_made_for_another_function_or_region(
    aws: MotoServer, tmp_path: Path
) -> None:
    assert run_deploy("--function", "hello", "--create-role", zip_path=make_zip(tmp_path)).code == 0
    result = run_deploy(
        "--function",
        "other",
        "--create-role",
        "--role-name",
        "staticlambda-hello",
        zip_path=make_zip(tmp_path),
    )
    assert result.code == 1
    assert "made for function hello, not other" in result.err
    # The same name in another region: the policy names the first region's log group.
    result = run_deploy(
        "--function", "hello", "--create-role", "--region", "eu-west-1", zip_path=make_zip(tmp_path)
    )
    assert result.code == 1
    assert (
        f"staticlambda-logs is not the policy for arn:aws:logs:eu-west-1:{ACCOUNT}:"
        "log-group:/aws/lambda/hello" in result.err
    )


def test_long_function_names_get_roles_of_their_own(aws: MotoServer, tmp_path: Path) -> None:
    # 60 characters each, alike for the first 59: cut to 64 with the prefix, they would meet.
    names = ["orders-" + "x" * 52 + "a", "orders-" + "x" * 52 + "b"]
    roles = []
    for name in names:
        result = run_deploy("--function", name, "--create-role", zip_path=make_zip(tmp_path))
        assert result.code == 0, result.err
        roles.append(configuration(name)["Role"].rsplit("/", 1)[1])
    assert roles[0] != roles[1]
    assert all(len(role) == 64 and role.startswith("staticlambda-orders-xxx") for role in roles)
    for name, role in zip(names, roles):
        document = client("iam").get_role_policy(RoleName=role, PolicyName="staticlambda-logs")
        resources = document["PolicyDocument"]["Statement"][0]["Resource"]
        assert resources[0].endswith(f":log-group:/aws/lambda/{name}")


def test_a_qualified_arn_is_planned_with_the_functions_own_role(
    aws: MotoServer, tmp_path: Path
) -> None:
    for function in ("billing", "search"):
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}:prod"
        result = run_deploy(
            "--function", arn, "--create-role", "--dry-run", zip_path=make_zip(tmp_path)
        )
        assert result.code == 0, result.err
        assert (
            f"role staticlambda-{function} (new: trusts lambda.amazonaws.com only, tag "
            f"staticlambda:created-for={function}, " in result.out
        )
        assert f"on arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{function} and" in (
            result.out
        )


def test_a_given_role_lambda_cannot_assume_is_not_retried(aws: MotoServer, tmp_path: Path) -> None:
    missing = f"arn:aws:iam::{ACCOUNT}:role/no-such-role"
    result = run_deploy("--function", "hello", "--role", missing, zip_path=make_zip(tmp_path))
    assert result.code == 1 and result.sleeps == []
    assert (
        "CreateFunction failed: InvalidParameterValueException: "
        "The role defined for the function cannot be assumed by Lambda." in result.err
    )


# --- every property compared, and compared again right before CreateFunction -------------


def boundary_policy(name: str) -> str:
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}],
    }
    return str(
        client("iam").create_policy(PolicyName=name, PolicyDocument=json.dumps(document))["Policy"][
            "Arn"
        ]
    )


def refusal(problem: str) -> str:
    return (
        f"deploy: error: role staticlambda-hello exists and will not be used for hello: "
        f"{problem}. Use --role-name NAME, delete the role, or pass ROLE=<its ARN>\n"
    )


def deploy_hello(tmp_path: Path, *args: str) -> Any:
    return run_deploy("--function", "hello", "--create-role", *args, zip_path=make_zip(tmp_path))


def made_then_function_deleted(tmp_path: Path, *args: str) -> None:
    assert deploy_hello(tmp_path, *args).code == 0
    client("lambda").delete_function(FunctionName="hello")


@pytest.mark.parametrize(
    ("made_with", "deployed_with", "problem"),
    [
        ("first", "second", "permissions boundary {first}, not {second}"),
        ("first", None, "permissions boundary {first}, not none"),
        (None, "second", "permissions boundary none, not {second}"),
    ],
    ids=["another-boundary", "boundary-not-asked-for", "no-boundary"],
)
def test_create_role_refuses_its_own_role_with_another_boundary(
    aws: MotoServer,
    tmp_path: Path,
    made_with: str | None,
    deployed_with: str | None,
    problem: str,
) -> None:
    boundaries = {"first": boundary_policy("first"), "second": boundary_policy("second")}

    def option(name: str | None) -> tuple[str, ...]:
        return ("--permissions-boundary", boundaries[name]) if name else ()

    made_then_function_deleted(tmp_path, *option(made_with))
    result = deploy_hello(tmp_path, *option(deployed_with))
    assert (result.code, result.err) == (1, refusal(problem.format(**boundaries)))
    assert client("lambda").list_functions()["Functions"] == []


def test_create_role_refuses_its_own_role_with_a_tag_more(aws: MotoServer, tmp_path: Path) -> None:
    made_then_function_deleted(tmp_path)
    client("iam").tag_role(
        RoleName="staticlambda-hello", Tags=[{"Key": "team", "Value": "someone-else"}]
    )
    result = deploy_hello(tmp_path)
    assert (result.code, result.err) == (1, refusal("tags not staticlambda's (team)"))
    assert client("lambda").list_functions()["Functions"] == []


def test_create_role_refuses_a_copy_of_its_role_on_another_path(
    aws: MotoServer, tmp_path: Path
) -> None:
    # Everything as create_role makes it, the tag copied, but made by someone else at a path.
    iam = client("iam")
    make_role(
        "staticlambda-hello",
        Path="/someone-else/",
        Tags=[{"Key": "staticlambda:created-for", "Value": "hello"}],
    )
    document = execution_role.RoleSpec("staticlambda-hello", "hello", REGION, "aws").logs_policy(
        ACCOUNT
    )
    iam.put_role_policy(
        RoleName="staticlambda-hello",
        PolicyName="staticlambda-logs",
        PolicyDocument=json.dumps(document),
    )
    result = deploy_hello(tmp_path)
    assert (result.code, result.err) == (1, refusal("path /someone-else/, not /"))


def test_create_role_refuses_its_own_role_whose_trust_gained_a_condition(
    aws: MotoServer, tmp_path: Path
) -> None:
    made_then_function_deleted(tmp_path)
    narrowed = {
        **LAMBDA_ALLOW,
        "Condition": {"StringEquals": {"aws:SourceAccount": "999999999999"}},
    }
    client("iam").update_assume_role_policy(
        RoleName="staticlambda-hello",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [narrowed]}),
    )
    result = deploy_hello(tmp_path)
    assert (result.code, result.err) == (1, refusal("trust statement uses Condition"))


def changed_once(change: Any) -> Hook:
    """An after-call handler that changes the role once, by another hand, then lets be."""
    left = [1]

    def handler(**_: Any) -> None:
        if left[0]:
            left[0] -= 1
            change(client("iam"))

    return handler


def attach_admin(iam: Any) -> None:
    iam.attach_role_policy(RoleName="staticlambda-hello", PolicyArn=ADMIN_POLICY)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (attach_admin, "managed policies attached (AdministratorAccess)"),
        (
            lambda iam: iam.delete_role_permissions_boundary(RoleName="staticlambda-hello"),
            "permissions boundary none, not {boundary}",
        ),
        (
            lambda iam: iam.tag_role(
                RoleName="staticlambda-hello", Tags=[{"Key": "owner", "Value": "x"}]
            ),
            "tags not staticlambda's (owner)",
        ),
    ],
    ids=["admin-attached", "boundary-removed", "tag-added"],
)
def test_a_reused_role_changed_after_the_plan_is_not_given_to_the_function(
    aws: MotoServer, tmp_path: Path, hooks: list[tuple[str, Hook]], change: Any, problem: str
) -> None:
    boundary = boundary_policy("developer-boundary")
    made_then_function_deleted(tmp_path, "--permissions-boundary", boundary)
    # The plan reads the role (its inline policy last); then someone changes it.
    hooks.append(("after-call.iam.GetRolePolicy", changed_once(change)))
    result = deploy_hello(tmp_path, "--permissions-boundary", boundary)
    assert result.code == 1
    assert "(made by staticlambda for hello: reused as it is)" in result.out
    assert result.err == (
        "deploy: error: role staticlambda-hello changed after it was checked and was not "
        f"given to hello: {problem.format(boundary=boundary)}. Nothing was created; deploy "
        "again to check it anew\n"
    )
    assert client("lambda").list_functions()["Functions"] == []


def test_a_role_made_now_and_changed_before_create_function_is_not_given_to_it(
    aws: MotoServer, tmp_path: Path, hooks: list[tuple[str, Hook]]
) -> None:
    hooks.append(("after-call.iam.PutRolePolicy", changed_once(attach_admin)))
    result = deploy_hello(tmp_path)
    assert result.code == 1
    assert "created role arn:aws:iam::" in result.out
    assert "changed after it was checked and was not given to hello: managed policies " in (
        result.err
    )
    assert client("lambda").list_functions()["Functions"] == []
