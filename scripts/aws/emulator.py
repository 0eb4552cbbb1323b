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

With `--timings FILE`, each proxied request appends a JSON line to FILE: `{"start", "end"}`
(Unix seconds, from the request read to the answer sent) and the `service` and `action`, so a
benchmark can tell the emulator's time from its client's.

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
* `POST /_emulator/faults` `{"service": "ecs", "action": "RunTask", "status": 400, "code":
  "ThrottlingException", "message": "Rate exceeded", "times": 1}`: the next `times` requests
  of that action (-1: all, until cleared) get AWS's error in the service's protocol instead of
  moto's answer. `GET` answers `{"served": {"ecs:RunTask": N}}`; `DELETE` clears both.
* `POST /_emulator/ecs-tasks` `{"statuses": ["PROVISIONING", "PENDING", "STOPPED"],
  "stopped_reason": STR, "exit_code": N}`: the next task RunTask starts follows that script,
  one status per DescribeTasks (see `service_patches.TaskScripts`). Without one, a task stays
  RUNNING until stopped, as a service's task does on AWS (moto would move it on by itself).
  Its container has no exit code until the DescribeTasks that says STOPPED, as on AWS
  (`job_patches.py`).
* `POST /_emulator/codebuild-builds` `{"phases": [["PROVISIONING", "SUCCEEDED"], ["BUILD",
  "FAILED"]], "status": "FAILED", "hold": false}`: the next build StartBuild starts shows one
  more phase per BatchGetBuilds, then ends with `status`; with `hold` it stays IN_PROGRESS
  until StopBuild (moto completes a build, all SUCCEEDED, when it is first read). Builds keep
  the variables they were started with (`job_patches.patch_moto_codebuild`).
* `POST /_emulator/target-health` `{"target_group_arn": ARN, "target": ID, "states": [{"state":
  "initial", "reason": "Elb.RegistrationInProgress"}, {"state": "healthy"}]}`: what
  DescribeTargetHealth says of that registered target (`"*"`: any target of the group), one
  state per call (the last stays); moto says `healthy` as soon as a target is registered.
* moto's own `POST /moto-api/reset` also forgets all of these; moto keeps its config (Lambda
  without Docker) and the emulator its fixes across a reset.

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
import time
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from moto_patches import (  # noqa: E402
    parse_template,
    patch_moto_cloudformation,
    patch_moto_rest_api,
)
from job_patches import (  # noqa: E402
    BUILD_SCRIPTS,
    patch_moto_codebuild,
    patch_moto_ecs_exit_codes,
)
from service_patches import (  # noqa: E402
    Faults,
    RateLimits,
    TargetHealth,
    TaskScripts,
    error_response,
    patch_moto_ecs,
    patch_moto_elbv2,
    throttling_fault,
)

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


class Emulator:
    def __init__(self, moto_host, moto_port, lambda_results, task_scripts, target_health):
        self.moto_host = moto_host
        self.moto_port = moto_port
        self.moto_url = f"http://{moto_host}:{moto_port}"
        self.lambda_results = lambda_results
        self.task_scripts = task_scripts
        self.target_health = target_health
        self.faults = Faults()
        self.rate_limits = RateLimits()
        # samtranslator reads the region from a process-wide setting: one transform at a time.
        self.transform_lock = threading.Lock()
        # `--timings`: where each proxied request's times go.
        self.timings = None
        self.timings_lock = threading.Lock()

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


def action_of(command, path, headers, body):
    """The API action a request calls: the query protocol's `Action`, the JSON protocol's
    `X-Amz-Target` operation, or Lambda's REST `Invoke`."""
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    if b"Action=" in body:
        try:
            return dict(parse_qsl(body.decode("utf-8"))).get("Action")
        except UnicodeDecodeError:
            return None
    if command == "POST" and path.split("?", 1)[0].endswith("/invocations"):
        return "Invoke"
    return None


def make_handler(emulator):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # The headers and the body go out in two writes: without this, Nagle's algorithm
        # holds the body back until the client's delayed ACK (~40 ms a request), a stall AWS
        # doesn't have.
        disable_nagle_algorithm = True

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
            json_type = [("Content-Type", "application/json")]
            if self.path.startswith("/_emulator/faults"):
                if self.command == "DELETE":
                    emulator.faults.clear()
                    return self.reply(200, b"{}", json_type)
                if self.command == "GET":
                    served = json.dumps({"served": emulator.faults.served}).encode("utf-8")
                    return self.reply(200, served, json_type)
                if self.command == "POST":
                    emulator.faults.push(json.loads(body or b"{}"))
                    return self.reply(201, b"{}", json_type)
            if self.path.startswith("/_emulator/rate-limits"):
                if self.command == "GET":
                    counts = {
                        "allowed": emulator.rate_limits.allowed,
                        "throttled": emulator.rate_limits.throttled,
                    }
                    return self.reply(200, json.dumps(counts).encode("utf-8"), json_type)
                if self.command == "POST":
                    emulator.rate_limits.set(json.loads(body or b"{}"))
                    return self.reply(201, b"{}", json_type)
            if self.path.startswith("/_emulator/ecs-tasks"):
                if self.command == "DELETE":
                    emulator.task_scripts.clear()
                    return self.reply(200, b"{}", json_type)
                if self.command == "POST":
                    emulator.task_scripts.push(json.loads(body or b"{}"))
                    return self.reply(201, b"{}", json_type)
            if self.path.startswith("/_emulator/codebuild-builds") and self.command == "POST":
                BUILD_SCRIPTS.push(json.loads(body or b"{}"))
                return self.reply(201, b"{}", json_type)
            if self.path.startswith("/_emulator/target-health"):
                if self.command == "DELETE":
                    emulator.target_health.clear()
                    return self.reply(200, b"{}", json_type)
                if self.command == "POST":
                    req = json.loads(body or b"{}")
                    emulator.target_health.set(
                        req["target_group_arn"], req["target"], req["states"]
                    )
                    return self.reply(201, b"{}", json_type)
            return self.reply(404, b'{"message": "no such emulator endpoint"}')

        def proxy(self):
            began = time.time()
            self.proxy_request()
            if emulator.timings is not None:
                line = json.dumps(
                    {
                        "start": began,
                        "end": time.time(),
                        "service": service_of(self.headers),
                        "action": self.action,
                    }
                )
                with emulator.timings_lock:
                    emulator.timings.write(line + "\n")
                    emulator.timings.flush()

        def proxy_request(self):
            body = self.read_body()
            if emulator.timings is not None:
                form = dict(parse_qsl(body.decode("utf-8", "replace"))) if b"Action=" in body else {}
                self.action = (
                    form.get("Action")
                    or self.headers.get("X-Amz-Target")
                    or f"{self.command} {self.path.split('?', 1)[0][:80]}"
                )
            path = self.path
            if path.startswith("/_emulator/"):
                return self.handle_emulator_api(body)
            if path.startswith("/moto-api/reset"):
                emulator.lambda_results.clear()
                emulator.faults.clear()
                emulator.task_scripts.clear()
                emulator.target_health.clear()
                emulator.rate_limits.clear()
                BUILD_SCRIPTS.clear()
            service = service_of(self.headers)
            action = action_of(self.command, path, self.headers, body)
            fault = emulator.faults.take(service, action)
            if fault is None and not emulator.rate_limits.take(service, action):
                fault = throttling_fault(service)
            if fault is not None:
                return self.reply(*error_response(service, fault))

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
    parser.add_argument("--timings", help="append each proxied request's times to this file")
    args = parser.parse_args()

    # moto's server logs every request through werkzeug; stdout is for the one line only.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    lambda_results = LambdaResults()
    task_scripts, target_health = TaskScripts(), TargetHealth()
    patch_moto_rest_api()
    patch_moto_cloudformation()
    patch_moto_lambda(lambda_results)
    patch_moto_ecs(task_scripts)
    patch_moto_ecs_exit_codes()
    patch_moto_codebuild()
    patch_moto_elbv2(target_health)
    # moto moves an ECS task on (towards STOPPED) each time it is described; on AWS a
    # service's task runs until stopped: no progression unless a test scripts one.
    from moto.moto_api import state_manager

    state_manager.set_transition(
        model_name="ecs::task", transition={"progression": "manual", "times": 10**12}
    )
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

    emulator = Emulator(moto_host, moto_port, lambda_results, task_scripts, target_health)
    if args.timings:
        emulator.timings = open(args.timings, "a", encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(emulator))
    server.daemon_threads = True
    print(f"emulator listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
