#!/usr/bin/env python3
"""Drives the emulator (`scripts/aws/emulator.py`) as Gantry's deployer will, with boto3 (a
real AWS SDK; it comes with moto), and prints what came back as one JSON object.

    $GANTRY_TEST_VENV/bin/python scripts/aws/selftest.py URL CASE

URL is the emulator's (what clients use as AWS_ENDPOINT_URL); CASE one of `sam`, `plain`,
`lambda`, `rollback`. Each case uses its own names, so cases can share one emulator. The
assertions are the caller's (crates/gantry/tests/moto_emulator.rs): this only records.
"""

import io
import json
import sys
import urllib.request
import zipfile

import boto3
from botocore.config import Config

REGION = "us-east-1"


def clients(url):
    kw = dict(
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )
    return {name: boto3.client(name, **kw) for name in ("s3", "cloudformation", "lambda",
                                                        "dynamodb", "apigateway")}


def handler_zip(source):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", source)
    return buf.getvalue()


def stack_view(cfn, name):
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    resources = cfn.describe_stack_resources(StackName=name)["StackResources"]
    events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    return {
        "status": stack["StackStatus"],
        "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []},
        "resources": sorted(
            [
                {
                    "logical_id": r.get("LogicalResourceId"),
                    "type": r.get("ResourceType"),
                    "physical_id": r.get("PhysicalResourceId"),
                    "status": r.get("ResourceStatus"),
                }
                for r in resources
            ],
            key=lambda r: r["logical_id"] or "",
        ),
        # Oldest first.
        "events": [
            {
                "logical_id": e.get("LogicalResourceId"),
                "type": e.get("ResourceType"),
                "status": e.get("ResourceStatus"),
                "reason": e.get("ResourceStatusReason"),
            }
            for e in reversed(events)
        ],
    }


def change_set_view(cfn, stack, name):
    cs = cfn.describe_change_set(StackName=stack, ChangeSetName=name)
    return {
        "status": cs["Status"],
        "execution_status": cs.get("ExecutionStatus"),
        "reason": cs.get("StatusReason"),
        "changes": sorted(
            (c["ResourceChange"]["Action"], c["ResourceChange"]["LogicalResourceId"],
             c["ResourceChange"]["ResourceType"])
            for c in cs.get("Changes", [])
        ),
    }


SAM_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Description: a SAM app
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: s3://sam-artifacts/hello.zip
      Events:
        Get:
          Type: Api
          Properties:
            Path: /hello
            Method: get
        Http:
          Type: HttpApi
          Properties:
            Path: /hi
            Method: get
Outputs:
  HelloApi:
    Value: !Sub "https://${ServerlessRestApi}.execute-api.${AWS::Region}.amazonaws.com/Prod/hello"
  HelloFunction:
    Value: !GetAtt Hello.Arn
  HttpApiId:
    Value: !Ref ServerlessHttpApi
"""


def case_sam(c):
    s3, cfn = c["s3"], c["cloudformation"]
    s3.create_bucket(Bucket="sam-artifacts")
    s3.put_object(
        Bucket="sam-artifacts",
        Key="hello.zip",
        Body=handler_zip("def handler(event, context):\n    return {'statusCode': 200}\n"),
    )
    caps = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
    out = {}
    cfn.create_change_set(
        StackName="sam-app",
        ChangeSetName="deploy-1",
        ChangeSetType="CREATE",
        TemplateBody=SAM_TEMPLATE,
        Capabilities=caps,
    )
    out["change_set"] = change_set_view(cfn, "sam-app", "deploy-1")
    cfn.execute_change_set(StackName="sam-app", ChangeSetName="deploy-1")
    out["stack"] = stack_view(cfn, "sam-app")
    fn = out["stack"]["outputs"].get("HelloFunction", "")
    out["function"] = c["lambda"].get_function(FunctionName=fn)["Configuration"]
    for key in ("LastModified", "CodeSha256", "RevisionId"):
        out["function"].pop(key, None)
    api_id = out["stack"]["outputs"].get("HelloApi", "https://x.").split("//")[1].split(".")[0]
    resources = c["apigateway"].get_resources(restApiId=api_id)["items"]
    out["rest_api_paths"] = sorted(r["path"] for r in resources)

    # The same template again: an empty change set.
    cfn.create_change_set(
        StackName="sam-app",
        ChangeSetName="deploy-2",
        ChangeSetType="UPDATE",
        TemplateBody=SAM_TEMPLATE,
        Capabilities=caps,
    )
    out["empty_change_set"] = change_set_view(cfn, "sam-app", "deploy-2")

    # A SAM template the transform rejects.
    try:
        cfn.create_change_set(
            StackName="sam-bad",
            ChangeSetName="deploy-1",
            ChangeSetType="CREATE",
            TemplateBody=SAM_TEMPLATE.replace("Handler: app.handler", "Handler: [1, 2]")
            .replace("CodeUri: s3://sam-artifacts/hello.zip", "CodeUri: 42"),
            Capabilities=caps,
        )
        out["bad_sam"] = None
    except cfn.exceptions.ClientError as e:
        out["bad_sam"] = {"code": e.response["Error"]["Code"],
                          "message": e.response["Error"]["Message"]}
    return out


PLAIN_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Site:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "${AWS::StackName}-site"
  Items:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Join ["-", [!Ref "AWS::StackName", items]]
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - AttributeName: id
          AttributeType: S
      KeySchema:
        - AttributeName: id
          KeyType: HASH
Outputs:
  BucketName:
    Value: !Ref Site
  TableName:
    Value: !Ref Items
  TableArn:
    Value: !GetAtt Items.Arn
"""


def case_plain(c, url):
    s3, cfn = c["s3"], c["cloudformation"]
    out = {}
    cfn.create_change_set(
        StackName="plain-app",
        ChangeSetName="deploy-1",
        ChangeSetType="CREATE",
        TemplateBody=PLAIN_TEMPLATE,
    )
    out["change_set"] = change_set_view(cfn, "plain-app", "deploy-1")
    cfn.execute_change_set(StackName="plain-app", ChangeSetName="deploy-1")
    out["stack"] = stack_view(cfn, "plain-app")
    outputs = out["stack"]["outputs"]
    s3.head_bucket(Bucket=outputs["BucketName"])
    out["head_bucket"] = "ok"
    table = c["dynamodb"].describe_table(TableName=outputs["TableName"])["Table"]
    out["table_status"] = table["TableStatus"]

    # The same stack's template by TemplateURL (a large template is passed so), as a client
    # of the emulator makes it: path-style on the emulator's URL.
    s3.create_bucket(Bucket="plain-templates")
    s3.put_object(Bucket="plain-templates", Key="t.yaml",
                  Body=PLAIN_TEMPLATE.replace("-site", "-www").encode())
    cfn.create_change_set(
        StackName="plain-app",
        ChangeSetName="deploy-2",
        ChangeSetType="UPDATE",
        TemplateURL=f"{url}/plain-templates/t.yaml",
    )
    out["url_change_set"] = change_set_view(cfn, "plain-app", "deploy-2")
    cfn.execute_change_set(StackName="plain-app", ChangeSetName="deploy-2")
    out["url_stack_status"] = cfn.describe_stacks(StackName="plain-app")["Stacks"][0][
        "StackStatus"]
    out["url_outputs"] = stack_view(cfn, "plain-app")["outputs"]
    return out


def raw_invoke(url, function, payload):
    """An Invoke as plain HTTP (moto doesn't check signatures): status, headers, body."""
    req = urllib.request.Request(
        f"{url}/2015-03-31/functions/{function}/invocations",
        data=payload,
        method="POST",
        headers={
            "Content-Type": "application/json",
            # moto picks the service from the SigV4 credential scope (an unsigned request
            # goes to its S3); it doesn't check the signature.
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/lambda/"
            "aws4_request, SignedHeaders=host, Signature=0",
        },
    )
    with urllib.request.urlopen(req) as resp:
        return resp.status, dict(resp.headers), resp.read().decode()


def invoke(lam, function, payload):
    r = lam.invoke(FunctionName=function, Payload=payload)
    return {
        "status": r["StatusCode"],
        "function_error": r.get("FunctionError"),
        "payload": r["Payload"].read().decode(),
    }


def case_lambda(c, url):
    lam, iam = c["lambda"], boto3.client(
        "iam", endpoint_url=url, region_name=REGION, aws_access_key_id="testing",
        aws_secret_access_key="testing")
    role = iam.create_role(
        RoleName="fn-role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    fn = lam.create_function(
        FunctionName="echo",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": handler_zip("def handler(event, context):\n    raise Exception('boom')\n")},
    )
    out = {"state": fn.get("State")}
    out["invoke_empty_object"] = invoke(lam, "echo", b"{}")
    out["invoke_payload"] = invoke(lam, "echo", b'{"a": 1}')
    out["invoke_no_payload"] = invoke(lam, "echo", b"")

    # moto's own queue: the next invoke (of any function in the region) answers this.
    body = json.dumps({"results": ['{"queued": true}'], "region": REGION}).encode()
    req = urllib.request.Request(f"{url}/moto-api/static/lambda-simple/response", data=body,
                                 method="POST")
    with urllib.request.urlopen(req) as resp:
        out["moto_queue_status"] = resp.status
    out["invoke_moto_queued"] = invoke(lam, "echo", b"{}")

    # The emulator's endpoint: a handler that raised, for this function only.
    error = {"errorMessage": "boom", "errorType": "Exception",
             "stackTrace": ['  File "/var/task/app.py", line 2, in handler\n']}
    body = json.dumps({"function": "echo", "payload": error,
                       "function_error": "Unhandled"}).encode()
    req = urllib.request.Request(f"{url}/_emulator/lambda-results", data=body, method="POST")
    with urllib.request.urlopen(req) as resp:
        out["emulator_queue_status"] = resp.status
    out["invoke_failing"] = invoke(lam, "echo", b"{}")
    out["invoke_after_failing"] = invoke(lam, "echo", b"{}")
    status, headers, raw = raw_invoke(url, fn["FunctionArn"], b"{}")
    out["raw_invoke"] = {"status": status, "body": raw}
    try:
        lam.invoke(FunctionName="missing", Payload=b"{}")
        out["invoke_missing"] = None
    except lam.exceptions.ClientError as e:
        out["invoke_missing"] = {"code": e.response["Error"]["Code"],
                                 "message": e.response["Error"]["Message"],
                                 "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}
    return out


ROLLBACK_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: '2012-10-17'
        Statement: []
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      Role: !GetAtt Role.Arn
      Code:
        S3Bucket: no-such-bucket
        S3Key: code.zip
"""


def client_error(call):
    """The error a call answers: code, message, HTTP status (None if it succeeds)."""
    try:
        call()
        return None
    except boto3.session.botocore.exceptions.ClientError as e:
        return {"code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"],
                "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}


def case_rollback(c):
    cfn = c["cloudformation"]
    out = {"describe_missing": client_error(lambda: cfn.describe_stacks(StackName="broken-app"))}
    cfn.create_change_set(
        StackName="broken-app",
        ChangeSetName="deploy-1",
        ChangeSetType="CREATE",
        TemplateBody=ROLLBACK_TEMPLATE,
    )
    cfn.execute_change_set(StackName="broken-app", ChangeSetName="deploy-1")
    out["stack"] = stack_view(cfn, "broken-app")
    out["change_set"] = change_set_view(cfn, "broken-app", "deploy-1")
    out["functions"] = [f["FunctionName"] for f in c["lambda"].list_functions()["Functions"]
                        if f["FunctionName"].startswith("broken-app")]

    # What a deployer meets next: the stack can't be updated nor created again; it is
    # deleted, then created anew.
    out["update_rolled_back"] = client_error(lambda: cfn.create_change_set(
        StackName="broken-app", ChangeSetName="deploy-2", ChangeSetType="UPDATE",
        TemplateBody=PLAIN_TEMPLATE))
    out["create_existing"] = client_error(lambda: cfn.create_change_set(
        StackName="broken-app", ChangeSetName="deploy-2", ChangeSetType="CREATE",
        TemplateBody=PLAIN_TEMPLATE))
    cfn.delete_stack(StackName="broken-app")
    out["describe_deleted"] = client_error(lambda: cfn.describe_stacks(StackName="broken-app"))
    cfn.create_change_set(StackName="broken-app", ChangeSetName="deploy-3",
                          ChangeSetType="CREATE", TemplateBody=PLAIN_TEMPLATE)
    cfn.execute_change_set(StackName="broken-app", ChangeSetName="deploy-3")
    out["recreated_status"] = cfn.describe_stacks(StackName="broken-app")["Stacks"][0][
        "StackStatus"]

    # An update that fails rolls back to UPDATE_ROLLBACK_COMPLETE.
    cfn.create_stack(StackName="broken-update", TemplateBody=json.dumps(
        {"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}))
    cfn.create_change_set(
        StackName="broken-update",
        ChangeSetName="deploy-2",
        ChangeSetType="UPDATE",
        TemplateBody=ROLLBACK_TEMPLATE,
    )
    cfn.execute_change_set(StackName="broken-update", ChangeSetName="deploy-2")
    out["update"] = stack_view(cfn, "broken-update")
    return out


def main():
    url, case = sys.argv[1], sys.argv[2]
    c = clients(url)
    if case == "sam":
        out = case_sam(c)
    elif case == "plain":
        out = case_plain(c, url)
    elif case == "lambda":
        out = case_lambda(c, url)
    elif case == "rollback":
        out = case_rollback(c)
    else:
        sys.exit(f"selftest: no case {case}")
    print(json.dumps(out, default=str, indent=1))


if __name__ == "__main__":
    main()
