#!/usr/bin/env python3
"""An AWS emulator for Gantry's deployer tests: moto's server, with a small proxy in front.

Run with the Python of the venv that `scripts/test-deps` makes (moto[server] and
aws-sam-translator are installed there):

    $GANTRY_TEST_VENV/bin/python scripts/aws/emulator.py [--port N]

It starts moto's server (`moto.server.ThreadedMotoServer`) in this process on 127.0.0.1 on a
free port and, on another port (`--port`, default a free one), a proxy that forwards every
request to moto unchanged. Where moto does less than AWS, the emulator (not Gantry) closes the
gap, as AWS behaves, and says so where it does:

* moto's IAM has none of AWS's managed policies unless told to load them: the emulator does
  (`MOTO_IAM_LOAD_MANAGED_POLICIES=true`, set before moto is imported).
* moto does not apply the SAM transform (`Transform: AWS::Serverless-2016-10-31`). On AWS,
  CloudFormation runs it on the template first, so the proxy does the same for the
  CloudFormation calls that take a template, with aws-sam-translator, the library the SAM CLI
  uses (`Emulator.transform_cloudformation_request`).
* moto runs Lambda handlers only in Docker images, which cannot be pulled here: the emulator
  turns on moto's documented setting for Lambda without Docker
  (`POST /moto-api/config {"lambda": {"use_docker": false}}`). Then an invoke runs no code: it
  answers 200 with the request's payload (`{}` for `{}`; "Simple Lambda happy path OK" for an
  empty one), or with the next result queued through moto's own
  `POST /moto-api/static/lambda-simple/response {"results": [STR], "region": R}` (for
  whichever function is invoked next). It never fails, not even for a missing function; the
  emulator makes it answer 404 for a missing function and lets a test queue a function error
  for one function (`patch_moto_lambda`, and the endpoint below).
* moto's CloudFormation neither rolls a failed stack back nor keeps the outputs of a stack
  made by change sets, takes a CREATE change set for a stack that exists, and doesn't
  emulate some resource types the SAM transform makes (`patch_moto_cloudformation`,
  `UnemulatedResource`); its `AWS::ApiGateway::RestApi` ignores the OpenAPI `Body`
  (`patch_moto_rest_api`).

Once both listen it prints one line, `emulator listening on http://127.0.0.1:PORT` (the
proxy's URL: what clients use as AWS_ENDPOINT_URL), and serves until killed.

Test-only endpoint of the proxy (JSON bodies), for what moto's own API can't do:

* `POST /_emulator/lambda-results` `{"function": NAME, "payload": STR-OR-JSON,
  "function_error": "Unhandled" (optional), "repeat": false (optional)}`: the next invoke of
  function NAME (a name or an ARN) answers 200 with PAYLOAD and, when given, the
  `X-Amz-Function-Error` header: AWS's answer for a handler that raised is
  `X-Amz-Function-Error: Unhandled` with `{"errorMessage": ..., "errorType": ...,
  "stackTrace": [...]}`. With `repeat`, every invoke of it does, until a reset. Answers 201.
* `DELETE /_emulator/lambda-results`: forgets every queued result.
* moto's own `POST /moto-api/reset` also forgets them; moto keeps its config (Lambda without
  Docker) and the emulator its fixes across a reset.

The requests a client sends are SigV4-signed by it; moto picks the service from the
credential scope of the `Authorization` header (an unsigned request goes to its S3) and
doesn't check signatures.
"""

import argparse
import http.client
import json
import logging
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlencode, urlparse

# The region and credentials boto3 (and so moto's and samtranslator's helpers) fall back on.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
# AWS's managed IAM policies (AWSLambdaBasicExecutionRole, which a function's role is given)
# exist in every AWS account; moto's IAM has them only when told, before it is imported.
os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"

import boto3  # noqa: E402  (after the defaults above)
from botocore.config import Config  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402
from samtranslator.model.exceptions import InvalidDocumentException  # noqa: E402
from samtranslator.translator.arn_generator import ArnGenerator  # noqa: E402
from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
# The CloudFormation actions (AWS query protocol) whose template CloudFormation transforms.
TEMPLATE_ACTIONS = {
    "CreateChangeSet",
    "CreateStack",
    "UpdateStack",
    "ValidateTemplate",
    "GetTemplateSummary",
}
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
}


class StaticPolicyLoader:
    """Managed policy names for the SAM transform without calling IAM.

    samtranslator looks a policy name (`Policies: [AmazonDynamoDBReadOnlyAccess]`) up in the
    map it bundles first, and asks this loader only for names not there; AWS's list of managed
    policies isn't in moto (it loads it only when configured to), so nothing more is known.
    """

    def load(self):
        return {}


class LambdaResults:
    """Results queued for the invokes of one function, each with an optional function error
    (see `patch_moto_lambda`)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._queues = {}

    def push(self, function, payload, function_error, repeat):
        with self._lock:
            self._queues.setdefault(function, []).append((payload, function_error, repeat))

    def pop(self, function):
        with self._lock:
            queue = self._queues.get(function)
            if not queue:
                return None
            if queue[0][2]:
                return queue[0]
            return queue.pop(0)

    def clear(self):
        with self._lock:
            self._queues.clear()


def patch_moto_lambda(results):
    """Makes moto's Lambda without Docker answer as AWS does for a missing function, and for a
    function whose handler raised.

    moto's Lambda without Docker (`awslambda_simple`) runs no code: an invoke answers with its
    payload, or with the next result queued through moto's
    `/moto-api/static/lambda-simple/response`. It never fails: it answers 200 even for a
    function that doesn't exist, where AWS answers 404 ResourceNotFoundException (moto's own
    Lambda with Docker does check), and it has no way to answer a function error. So, in this
    process (moto runs in it): the function is looked up first, as moto's Lambda with Docker
    does, and a result queued for it with the emulator's `/_emulator/lambda-results` comes
    before moto's queue, with its `X-Amz-Function-Error` header when it has one (AWS's answer
    for a handler that raised: 200, `X-Amz-Function-Error: Unhandled`, the error as payload).
    """
    from moto.awslambda_simple.models import LambdaSimpleBackend

    invoke = LambdaSimpleBackend.invoke

    def simple_invoke(self, function_name, qualifier, body, headers, response_headers):
        fn = self.get_function(function_name, qualifier)  # 404 ResourceNotFoundException
        queued = results.pop(fn.function_name)
        if queued is None:
            return invoke(self, function_name, qualifier, body, headers, response_headers)
        payload, function_error, _ = queued
        if function_error:
            response_headers["x-amz-function-error"] = function_error
        return payload

    LambdaSimpleBackend.invoke = simple_invoke


class TransformError(Exception):
    pass


def function_name_of(name_or_arn):
    """`my-fn`, `arn:aws:lambda:REGION:ACCOUNT:function:my-fn[:QUALIFIER]` or
    `ACCOUNT:function:my-fn` → `my-fn`."""
    parts = name_or_arn.split(":")
    if "function" in parts:
        i = parts.index("function")
        if i + 1 < len(parts):
            return parts[i + 1]
    return parts[0]


def region_of(headers):
    """The region of a SigV4 request's credential scope (`Credential=AKID/DATE/REGION/...`)."""
    auth = headers.get("Authorization", "")
    marker = "Credential="
    if marker in auth:
        scope = auth.split(marker, 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 3 and scope[2]:
            return scope[2]
    return os.environ["AWS_DEFAULT_REGION"]


def service_of(headers):
    """The service of a SigV4 request's credential scope, None when unsigned."""
    auth = headers.get("Authorization", "")
    marker = "Credential="
    if marker in auth:
        scope = auth.split(marker, 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 4:
            return scope[3]
    return None


def parse_template(text):
    """A template's JSON or YAML; YAML's short forms (`!Ref`, `!GetAtt a.b`, `!Sub`, ...)
    become their `Fn::` forms through samtranslator's loader (the AWS CLI's)."""
    text = text.strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return yaml_parse(text)


def declares_sam_transform(template):
    if not isinstance(template, dict):
        return False
    declared = template.get("Transform")
    if isinstance(declared, str):
        declared = [declared]
    return isinstance(declared, list) and SAM_TRANSFORM in declared


def request_parameters(fields):
    """`Parameters.member.N.ParameterKey/ParameterValue` of a query-protocol body."""
    keys, values = {}, {}
    for key, value in fields:
        if key.startswith("Parameters.member."):
            rest = key[len("Parameters.member."):]
            n, _, attr = rest.partition(".")
            if attr == "ParameterKey":
                keys[n] = value
            elif attr == "ParameterValue":
                values[n] = value
    return {keys[n]: values[n] for n in keys if n in values}


def patch_moto_rest_api():
    """Makes moto's CloudFormation create an `AWS::ApiGateway::RestApi` with an OpenAPI `Body`
    as AWS does.

    That is what the SAM transform makes for an `Api` event. On AWS the API then takes its
    name from the definition's `info.title` when `Name` is missing, and has the definition's
    paths, methods and integrations. moto's CloudFormation requires `Name` (it answers a
    KeyError, an internal error, otherwise) and ignores `Body`, so the API has no methods and
    the SAM transform's `AWS::ApiGateway::Deployment` fails ("The REST API doesn't contain any
    methods"). So, in this process (moto runs in it), the creation goes on as moto does it and
    then imports `Body` through moto's own PutRestApi (mode overwrite). moto's import takes
    only OpenAPI 3 documents but reads Swagger 2's `paths` the same way, so a Swagger 2 body
    (the SAM transform's) is given to it under an OpenAPI 3 version.
    """
    from moto.apigateway.models import RestAPI, apigateway_backends

    create = RestAPI.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id,
                                        region_name, **kwargs):
        props = cloudformation_json.setdefault("Properties", {})
        body = props.get("Body")
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except ValueError:
                body = parse_template(body)
        if "Name" not in props and isinstance(body, dict):
            props["Name"] = (body.get("info") or {}).get("title") or resource_name
        api = create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        if isinstance(body, dict) and isinstance(body.get("paths"), dict):
            doc = dict(body)
            if "swagger" in doc:
                del doc["swagger"]
                doc["openapi"] = "3.0.1"
            backend = apigateway_backends[account_id][region_name]
            backend.put_rest_api(api.id, doc, fail_on_warnings=False, mode="overwrite")
        return api

    RestAPI.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


def failure_reason(e):
    """What a failed resource's event says, in AWS's words around moto's error:
    `Resource handler returned message: "MESSAGE" (HandlerErrorCode: CODE)`."""
    message = getattr(e, "message", None)
    code = getattr(e, "error_type", None)
    if not message:
        message, code = str(e), type(e).__name__
    return f'Resource handler returned message: "{message}" (HandlerErrorCode: {code})'


class UnemulatedResource:
    """A resource of a type moto's CloudFormation does not emulate (`AWS::ApiGatewayV2::Api`,
    `AWS::ApiGateway::Stage`, ... which the SAM transform makes).

    moto skips such a resource with a warning, and then lists it in DescribeStackResources
    with no LogicalResourceId, ResourceType nor PhysicalResourceId, and a `Ref` to it gives
    nothing. On AWS it exists: so it is kept as a record with its logical id, its type and a
    physical id, which `Ref` gives. Nothing else of it is emulated: a `Fn::GetAtt` of it fails
    the stack, with a reason that says so.
    """

    def __init__(self, logical_id, resource_type, stack_id):
        import random
        import string

        self.logical_resource_id = logical_id
        self.cf_resource_type = resource_type
        self.physical_resource_id = "".join(
            random.choices(string.ascii_lowercase + string.digits, k=10)
        )

    def get_cfn_attribute(self, attribute_name):
        raise RuntimeError(
            f"the emulator (moto) does not emulate {self.cf_resource_type}: "
            f"no attribute {attribute_name}"
        )

    def is_created(self):
        return True

    def delete(self, account_id, region_name):
        pass


def patch_moto_cloudformation():
    """Makes moto's CloudFormation fail and roll back stacks, and keep their outputs, as AWS
    does.

    * moto creates a stack's resources while it answers CreateStack / UpdateStack /
      ExecuteChangeSet, and when one fails it answers that call with the error (an internal
      error, HTTP 500, for most) and leaves the stack half made, in CREATE_IN_PROGRESS (there
      is a "TODO: handle execution errors and implement rollback" in its execute_change_set).
      On AWS the call succeeds, the resource gets a CREATE_FAILED (UPDATE_FAILED) event with
      the reason, the stack rolls back and ends ROLLBACK_COMPLETE (UPDATE_ROLLBACK_COMPLETE).
      So here the failure is caught and the stack is rolled back: for a creation the resources
      made are deleted; for an update moto cannot restore the old resources, so only the
      stack's template and status go back (what a deployer reads). The events' texts are
      AWS's, with moto's error message as the resource's reason.
    * moto computes a stack's outputs when CreateStack / UpdateStack run but not when a change
      set is executed, so a stack made by change sets has no Outputs: they are computed again
      after the execution.
    """
    from moto.cloudformation import models, parsing

    parse_and_create = parsing.parse_and_create_resource

    def parse_and_create_resource(logical_id, resource_json, resources_map, account_id,
                                  region_name):
        resource_type = resource_json.get("Type", "")
        condition = resource_json.get("Condition")
        if (
            resource_type not in parsing.get_model_map()
            and resource_type not in parsing.NULL_MODELS
            and not resource_type.startswith("Custom::")
            and not (condition and not resources_map.lazy_condition_map[condition])
        ):
            return UnemulatedResource(logical_id, resource_type, resources_map.stack_id)
        try:
            return parse_and_create(logical_id, resource_json, resources_map, account_id,
                                    region_name)
        except Exception as e:
            # The innermost resource that failed (a Ref creates what it names first).
            if not hasattr(e, "gantry_failed_resource"):
                e.gantry_failed_resource = (logical_id, resource_json.get("Type", ""))
            raise

    parsing.parse_and_create_resource = parse_and_create_resource

    def resource_event(stack, e, status):
        logical_id, resource_type = getattr(e, "gantry_failed_resource", (stack.name, ""))
        event = models.Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id="",
            resource_type=resource_type,
            resource_status=status,
            resource_status_reason=failure_reason(e),
            resource_properties=None,
        )
        stack.events.append(event)
        return logical_id

    def roll_back_creation(stack, e):
        failed = resource_event(stack, e, "CREATE_FAILED")
        stack._add_stack_event(
            "ROLLBACK_IN_PROGRESS",
            resource_status_reason=f"The following resource(s) failed to create: [{failed}]. "
            "Rollback requested by user.",
        )
        try:
            stack.resource_map.delete()
        except Exception:  # noqa: BLE001 - what can't be deleted in moto stays
            pass
        # Nothing is left to list (moto would try to make the failed resource again when
        # asked for the stack's resources).
        stack.resource_map._resource_json_map = {}
        stack._add_stack_event("ROLLBACK_COMPLETE")
        stack.status = "ROLLBACK_COMPLETE"

    def roll_back_update(stack, e, old_template):
        failed = resource_event(stack, e, "UPDATE_FAILED")
        stack._add_stack_event(
            "UPDATE_ROLLBACK_IN_PROGRESS",
            resource_status_reason=f"The following resource(s) failed to update: [{failed}]. ",
        )
        stack.template = old_template
        stack._parse_template()
        # The stack's resources are the old template's again; what the update made before it
        # failed is deleted.
        resource_map = stack.resource_map
        old_resources = dict(stack.template_dict.get("Resources") or {})
        for logical_id, resource_json in list(resource_map._resource_json_map.items()):
            if logical_id in old_resources:
                continue
            made = resource_map._parsed_resources.pop(logical_id, None)
            if made is not None and not isinstance(made, str):
                try:
                    resource_map._delete_resource(made, resource_json)
                except Exception:  # noqa: BLE001
                    pass
        resource_map._resource_json_map = old_resources
        stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
        stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
        stack.status = "UPDATE_ROLLBACK_COMPLETE"

    create_resources = models.Stack.create_resources

    def stack_create_resources(self):
        try:
            create_resources(self)
        except Exception as e:  # noqa: BLE001
            roll_back_creation(self, e)

    models.Stack.create_resources = stack_create_resources

    update = models.Stack.update

    def stack_update(self, template, *args, **kwargs):
        old_template = self.template
        try:
            update(self, template, *args, **kwargs)
        except Exception as e:  # noqa: BLE001
            roll_back_update(self, e, old_template)

    models.Stack.update = stack_update

    execute_change_set = models.CloudFormationBackend.execute_change_set

    def backend_execute_change_set(self, change_set_name, stack_name=None):
        change_set = self.change_sets.get(change_set_name)
        if change_set is None:
            for cs in self.change_sets.values():
                if cs.change_set_name == change_set_name and (
                    stack_name is None or stack_name in (cs.stack.name, cs.stack_id)
                ):
                    change_set = cs
        if change_set is None:
            return execute_change_set(self, change_set_name, stack_name)
        stack = self.stacks[change_set.stack_id]
        old_template = stack.template
        try:
            execute_change_set(self, change_set_name, stack_name)
        except Exception as e:  # noqa: BLE001
            change_set.execution_status = "EXECUTE_FAILED"
            if change_set.change_set_type == "CREATE":
                roll_back_creation(stack, e)
            else:
                roll_back_update(stack, e, old_template)
            return
        stack._parse_template()
        stack.description = stack.template_dict.get("Description")
        stack.output_map = stack._create_output_map()
        for export in stack.exports:
            self.exports[export.name] = export

    models.CloudFormationBackend.execute_change_set = backend_execute_change_set

    # CreateChangeSet on a stack that can't take it. moto makes a second stack of the same
    # name for a CREATE change set of an existing stack (and DescribeStacks then finds the
    # old one), and answers an internal error for an UPDATE of a stack whose creation rolled
    # back. AWS answers a ValidationError for both, in these words.
    from moto.cloudformation.exceptions import ValidationError
    from moto.cloudformation.responses import CloudFormationResponse

    response_create_change_set = CloudFormationResponse.create_change_set

    def create_change_set(self):
        name = self._get_param("StackName")
        kind = self._get_param("ChangeSetType", "CREATE")
        stack = next(
            (s for s in self.cloudformation_backend.stacks.values() if s.name == name), None
        )
        if stack is not None and kind == "CREATE" and stack.status != "REVIEW_IN_PROGRESS":
            raise ValidationError(
                message=f"Stack [{name}] already exists and cannot be created again with the "
                f"changeSet [{self._get_param('ChangeSetName')}]."
            )
        if stack is not None and kind == "UPDATE" and stack.status in (
            "ROLLBACK_COMPLETE",
            "ROLLBACK_FAILED",
            "REVIEW_IN_PROGRESS",
        ):
            raise ValidationError(
                message=f"Stack:{stack.stack_id} is in {stack.status} state and can not be "
                "updated."
            )
        return response_create_change_set(self)

    CloudFormationResponse.create_change_set = create_change_set


class Emulator:
    def __init__(self, moto_host, moto_port, lambda_results):
        self.moto_host = moto_host
        self.moto_port = moto_port
        self.moto_url = f"http://{moto_host}:{moto_port}"
        self.lambda_results = lambda_results
        # samtranslator reads the region from a process-wide setting: one transform at a time.
        self.transform_lock = threading.Lock()

    def s3_client(self, region):
        return boto3.client(
            "s3",
            endpoint_url=self.moto_url,
            region_name=region,
            config=Config(s3={"addressing_style": "path"}),
        )

    def fetch_template_url(self, url, region):
        """The object a TemplateURL points at, read from moto's S3.

        moto reads TemplateURL itself, but takes the bucket from the host's first label unless
        the URL has "localhost" in it, so an `http://127.0.0.1:PORT/bucket/key` URL (what a
        client of this emulator makes) would name a bucket "127": the proxy reads it instead,
        path-style for `s3.*amazonaws.com`, IP and localhost hosts, virtual-hosted otherwise.
        """
        parts = urlparse(url)
        host = parts.hostname or ""
        path = unquote(parts.path).lstrip("/")
        path_style = (
            host.startswith("s3") and host.endswith("amazonaws.com")
        ) or host == "localhost" or host.replace(".", "").isdigit() or host.startswith("[")
        if path_style:
            bucket, _, key = path.partition("/")
        else:
            bucket, key = host.split(".")[0], path
        try:
            obj = self.s3_client(region).get_object(Bucket=bucket, Key=key)
        except Exception as e:  # noqa: BLE001 - reported to the client as AWS does
            raise TransformError(f"S3 error: {e}") from e
        return obj["Body"].read().decode("utf-8")

    def transform_cloudformation_request(self, headers, body):
        """The body to send to moto for a CloudFormation query-protocol request, or None to send
        it unchanged; raises TransformError with the message to answer.

        moto does not apply transforms; on AWS, CloudFormation applies the SAM transform to a
        template that declares it before it validates, summarizes or deploys it. So here the
        proxy does it, with samtranslator, and sends moto the transformed template as
        TemplateBody (JSON). A TemplateURL is read from moto's S3 (see `fetch_template_url`).
        """
        try:
            fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return None
        action = dict(fields).get("Action")
        if action not in TEMPLATE_ACTIONS or service_of(headers) not in (None, "cloudformation"):
            return None
        values = dict(fields)
        region = region_of(headers)
        if "TemplateBody" in values:
            text = values["TemplateBody"]
        elif "TemplateURL" in values:
            text = self.fetch_template_url(values["TemplateURL"], region)
        else:
            return None
        try:
            template = parse_template(text)
        except Exception:  # noqa: BLE001
            if "TemplateURL" in values:
                # Hand moto the body; it answers for a template it can't read.
                return self.with_template_body(fields, text)
            return None
        if not declares_sam_transform(template):
            if "TemplateURL" in values:
                return self.with_template_body(fields, text)
            return None
        with self.transform_lock:
            ArnGenerator.BOTO_SESSION_REGION_NAME = region
            try:
                transformed = transform(
                    template, request_parameters(fields), StaticPolicyLoader()
                )
            except InvalidDocumentException as e:
                # AWS's words for a SAM template the transform rejects.
                causes = " ".join(str(c) for c in e.causes)
                raise TransformError(
                    f"Transform {SAM_TRANSFORM} failed with: Invalid Serverless Application "
                    f"Specification document. Number of errors found: {len(e.causes)}. {causes}"
                ) from e
            except Exception as e:  # noqa: BLE001
                raise TransformError(f"Transform {SAM_TRANSFORM} failed with: {e}") from e
            finally:
                ArnGenerator.BOTO_SESSION_REGION_NAME = None
        return self.with_template_body(fields, json.dumps(transformed))

    @staticmethod
    def with_template_body(fields, text):
        out = [(k, v) for k, v in fields if k not in ("TemplateBody", "TemplateURL")]
        out.append(("TemplateBody", text))
        return urlencode(out).encode("utf-8")


def validation_error(message):
    """A CloudFormation (query protocol) ValidationError, as AWS answers it."""
    escaped = (
        message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    )
    return (
        '<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
        "<Error><Type>Sender</Type><Code>ValidationError</Code>"
        f"<Message>{escaped}</Message></Error>"
        "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    ).encode("utf-8")


def make_handler(emulator):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 - quiet: tests read stdout
            pass

        def read_body(self):
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";", 1)[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def reply(self, status, body, headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def handle_emulator_api(self, body):
            if self.path.startswith("/_emulator/lambda-results"):
                if self.command == "DELETE":
                    emulator.lambda_results.clear()
                    return self.reply(200, b"{}", [("Content-Type", "application/json")])
                if self.command == "POST":
                    req = json.loads(body or b"{}")
                    payload = req.get("payload", "")
                    if not isinstance(payload, str):
                        payload = json.dumps(payload)
                    emulator.lambda_results.push(
                        function_name_of(req["function"]),
                        payload.encode("utf-8"),
                        req.get("function_error"),
                        bool(req.get("repeat", False)),
                    )
                    return self.reply(201, b"{}", [("Content-Type", "application/json")])
            return self.reply(404, b'{"message": "no such emulator endpoint"}')

        def proxy(self):
            body = self.read_body()
            path = self.path
            if path.startswith("/_emulator/"):
                return self.handle_emulator_api(body)
            if path.startswith("/moto-api/reset"):
                emulator.lambda_results.clear()

            content_type = self.headers.get("Content-Type", "")
            if (
                self.command == "POST"
                and "x-www-form-urlencoded" in content_type
                and b"Action=" in body
            ):
                try:
                    changed = emulator.transform_cloudformation_request(self.headers, body)
                except TransformError as e:
                    return self.reply(
                        400, validation_error(str(e)), [("Content-Type", "text/xml")]
                    )
                if changed is not None:
                    body = changed

            headers = {}
            for k, v in self.headers.items():
                if k.lower() in HOP_BY_HOP or k.lower() == "content-length":
                    continue
                headers[k] = v
            # The body may have changed (transformed template): the length is the new one.
            # The SigV4 signature no longer matches it, but moto doesn't check signatures.
            if body or self.command in ("POST", "PUT", "PATCH"):
                headers["Content-Length"] = str(len(body))

            conn = http.client.HTTPConnection(emulator.moto_host, emulator.moto_port, timeout=300)
            try:
                conn.request(self.command, path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
                resp_headers = [
                    (k, v)
                    for k, v in resp.getheaders()
                    if k.lower() not in HOP_BY_HOP
                    and k.lower() not in ("content-length", "date", "server")
                ]
                moto_length = resp.getheader("Content-Length")
            finally:
                conn.close()

            self.send_response(status)
            for k, v in resp_headers:
                self.send_header(k, v)
            if self.command == "HEAD":
                # No body, but the length of what a GET would give, as moto said.
                if moto_length is not None:
                    self.send_header("Content-Length", moto_length)
                else:
                    self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = proxy

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0, help="the proxy's port (0: a free one)")
    args = parser.parse_args()

    # moto's server logs every request through werkzeug; stdout is for the one line only.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    lambda_results = LambdaResults()
    patch_moto_rest_api()
    patch_moto_cloudformation()
    patch_moto_lambda(lambda_results)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    moto_host, moto_port = moto.get_host_and_port()

    # moto runs Lambda handlers only in Docker images (which can't be pulled here): its
    # documented setting for Lambda without Docker, through its own API. (AWS's managed IAM
    # policies are loaded through MOTO_IAM_LOAD_MANAGED_POLICIES, set at the top.)
    conn = http.client.HTTPConnection(moto_host, moto_port, timeout=30)
    conn.request(
        "POST",
        "/moto-api/config",
        body=json.dumps(
            {"lambda": {"use_docker": False}}
        ),
        headers={"Content-Type": "application/json"},
    )
    resp = conn.getresponse()
    resp.read()
    conn.close()
    if resp.status >= 300:
        sys.exit(f"emulator: moto refused its config: {resp.status}")

    emulator = Emulator(moto_host, moto_port, lambda_results)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(emulator))
    server.daemon_threads = True
    print(f"emulator listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
