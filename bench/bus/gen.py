#!/usr/bin/env python3
"""Generates the pattern-matching benchmark's inputs (fixed seed, so the committed files can be
re-made): patterns.json, a JSON array of 100 EventBridge patterns mixing exact, prefix,
numeric, anything-but and $or; events.jsonl, 1,000 events of about 1 KB, one per line."""
import json, random

rng = random.Random(42)
SOURCES = [f"com.example.svc{i}" for i in range(20)]
TYPES = ["Order Placed", "Order Shipped", "Payment Failed", "User Signed Up", "Deploy Finished"]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-south-1"]
STATES = ["pending", "running", "succeeded", "failed", "cancelled"]

def pattern(i):
    kind = i % 5
    if kind == 0:   # exact
        return {"source": [rng.choice(SOURCES)], "detail-type": [rng.choice(TYPES)]}
    if kind == 1:   # prefix
        return {"source": [{"prefix": "com.example.svc1"}], "detail": {"region": [{"prefix": rng.choice(["us-", "eu-", "ap-"])}]}}
    if kind == 2:   # numeric
        lo = rng.randint(0, 500)
        return {"detail-type": [rng.choice(TYPES)], "detail": {"amount": [{"numeric": [">=", lo, "<", lo + 250]}]}}
    if kind == 3:   # anything-but
        return {"source": [rng.choice(SOURCES)], "detail": {"state": [{"anything-but": rng.sample(STATES, 2)}]}}
    return {        # $or
        "source": [rng.choice(SOURCES), rng.choice(SOURCES)],
        "$or": [{"detail": {"priority": [{"numeric": [">", 7]}]}},
                {"detail": {"customer": {"tier": ["gold", "platinum"]}}}],
    }

def event(i):
    e = {
        "version": "0", "id": f"{i:08d}-6a7e-4cf7-a9f1-bf3703467718",
        "detail-type": rng.choice(TYPES), "source": rng.choice(SOURCES),
        "account": "111122223333", "time": "2026-11-22T10:00:00Z", "region": rng.choice(REGIONS),
        "resources": [f"arn:aws:ec2:us-west-1:123456789012:instance/i-{rng.getrandbits(64):016x}"],
        "detail": {
            "region": rng.choice(REGIONS), "state": rng.choice(STATES),
            "amount": round(rng.uniform(0, 1000), 2), "priority": rng.randint(0, 10),
            "customer": {"id": f"c-{rng.getrandbits(32):08x}", "tier": rng.choice(["free", "silver", "gold", "platinum"]),
                         "email": f"user{i}@example.com", "address": {"street": "1 Main St", "city": "Springfield", "zip": "12345"}},
            "items": [{"sku": f"sku-{rng.randint(1, 9999)}", "qty": rng.randint(1, 5), "price": round(rng.uniform(1, 200), 2)} for _ in range(4)],
            "notes": "x" * rng.randint(260, 360),
        },
    }
    return e

patterns = [pattern(i) for i in range(100)]
with open("patterns.json", "w") as f:
    json.dump(patterns, f, indent=1)
    f.write("\n")
with open("events.jsonl", "w") as f:
    for i in range(1000):
        f.write(json.dumps(event(i), separators=(",", ":")) + "\n")
