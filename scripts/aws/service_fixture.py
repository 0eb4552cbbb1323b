#!/usr/bin/env python3
"""What a service on ECS behind an Application Load Balancer needs, made in the AWS emulator
for a test: a VPC with a subnet and a security group, an ECS cluster, a Fargate task
definition (awsvpc), an internet-facing ALB with an HTTP listener (default action: 404), and
an `ip` target group. Prints one JSON object with their ids and ARNs.

    $GANTRY_TEST_VENV/bin/python scripts/aws/service_fixture.py ENDPOINT_URL [NAME]

moto needs `memory` on each container definition (AWS takes it at the task level alone).
"""

import json
import sys

import boto3


def main():
    url = sys.argv[1]
    name = sys.argv[2] if len(sys.argv) > 2 else "auth"
    kw = dict(
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    ec2, ecs, elb = (boto3.client(s, **kw) for s in ("ec2", "ecs", "elbv2"))
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=az)[
            "Subnet"
        ]["SubnetId"]
        for i, az in ((1, "us-east-1a"), (2, "us-east-1b"))
    ]
    sg = ec2.create_security_group(GroupName=f"{name}-sg", Description="service", VpcId=vpc)[
        "GroupId"
    ]
    cluster = ecs.create_cluster(clusterName=f"{name}-cluster")["cluster"]["clusterName"]
    ecs.register_task_definition(
        family=name,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "app",
                "image": "public.ecr.aws/docker/library/busybox:latest",
                "memory": 512,
                "essential": True,
                "portMappings": [{"containerPort": 8080}],
            }
        ],
    )
    lb = elb.create_load_balancer(Name=f"{name}-alb", Subnets=subnets, SecurityGroups=[sg])[
        "LoadBalancers"
    ][0]
    tg = elb.create_target_group(
        Name=f"{name}-tg",
        Protocol="HTTP",
        Port=8080,
        VpcId=vpc,
        TargetType="ip",
        HealthCheckPath="/health",
    )["TargetGroups"][0]["TargetGroupArn"]
    listener = elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain"},
            }
        ],
    )["Listeners"][0]["ListenerArn"]
    print(
        json.dumps(
            {
                "vpc": vpc,
                "subnets": subnets,
                "security_group": sg,
                "cluster": cluster,
                "task_definition": name,
                "load_balancer": lb["LoadBalancerArn"],
                "listener": listener,
                "target_group": tg,
            }
        )
    )


if __name__ == "__main__":
    main()
