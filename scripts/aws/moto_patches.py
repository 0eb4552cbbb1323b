"""Changes to moto, made in the emulator's process, where moto's CloudFormation does less than
AWS (each change says what and why): a RestApi from an OpenAPI `Body`, resource types moto does
not emulate kept as records, rollback of a failed stack, outputs after a change set, and the
ValidationErrors AWS gives for a change set a stack cannot take. `emulator.py` applies them.
"""

import json

from samtranslator.yaml_helper import yaml_parse


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
