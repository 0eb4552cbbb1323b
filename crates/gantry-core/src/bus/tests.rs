//! The pattern language against the examples of the EventBridge documentation and
//! event-ruler's behaviour, plus property tests.

use super::Pattern;
use proptest::prelude::*;
use serde_json::{Value, json};

fn m(pattern: Value, event: Value) -> bool {
    Pattern::from_json(&pattern)
        .unwrap_or_else(|e| panic!("{pattern}: {e}"))
        .matches_json(&event)
}

fn invalid(pattern: Value) -> String {
    match Pattern::from_json(&pattern) {
        Ok(_) => panic!("accepted: {pattern}"),
        Err(e) => e.to_string(),
    }
}

fn ec2() -> Value {
    json!({
        "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
        "account": "111122223333", "time": "2017-12-22T18:43:48Z", "region": "us-west-1",
        "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
        "detail": {"instance-id": "i-1234567890abcdef0", "state": "terminated",
                   "c-count": 5, "d-count": 0.25, "source-ip": "10.0.0.123",
                   "tags": ["a", "prod"], "flag": true, "nothing": null}
    })
}

#[test]
fn exact_values_and_nesting() {
    assert!(m(json!({"source": ["aws.ec2"]}), ec2()));
    assert!(!m(json!({"source": ["aws.s3"]}), ec2()));
    assert!(m(json!({"source": ["aws.s3", "aws.ec2"]}), ec2()));
    assert!(m(json!({"detail": {"state": ["terminated"]}}), ec2()));
    assert!(!m(json!({"detail": {"state": ["Terminated"]}}), ec2()));
    assert!(m(
        json!({"source": ["aws.ec2"], "detail": {"state": ["terminated"]}}),
        ec2()
    ));
    assert!(!m(
        json!({"source": ["aws.ec2"], "detail": {"state": ["running"]}}),
        ec2()
    ));
    assert!(m(json!({"detail": {"flag": [true]}}), ec2()));
    assert!(
        !m(json!({"detail": {"flag": ["true"]}}), ec2()),
        "types differ"
    );
    assert!(m(json!({"detail": {"nothing": [null]}}), ec2()));
    assert!(
        !m(json!({"detail": {"missing": [null]}}), ec2()),
        "null is not absent"
    );
    assert!(
        m(json!({"detail": {"c-count": [5.0]}}), ec2()),
        "3 equals 3.0"
    );
    assert!(!m(json!({"detail": {"c-count": ["5"]}}), ec2()));
    // Arrays in the event: any element.
    assert!(m(json!({"detail": {"tags": ["prod"]}}), ec2()));
    assert!(m(json!({"resources": [{"prefix": "arn:aws:ec2"}]}), ec2()));
}

#[test]
fn string_operators() {
    assert!(m(json!({"time": [{"prefix": "2017-12-22"}]}), ec2()));
    assert!(!m(json!({"time": [{"prefix": "2018"}]}), ec2()));
    assert!(m(
        json!({"source": [{"prefix": {"equals-ignore-case": "AWS."}}]}),
        ec2()
    ));
    assert!(m(
        json!({"detail": {"instance-id": [{"suffix": "def0"}]}}),
        ec2()
    ));
    assert!(m(
        json!({"detail": {"instance-id": [{"suffix": {"equals-ignore-case": "DEF0"}}]}}),
        ec2()
    ));
    assert!(m(
        json!({"detail": {"state": [{"equals-ignore-case": "TERMINATED"}]}}),
        ec2()
    ));
    assert!(m(
        json!({"detail": {"instance-id": [{"wildcard": "i-*def*"}]}}),
        ec2()
    ));
    assert!(!m(
        json!({"detail": {"instance-id": [{"wildcard": "i-*xyz"}]}}),
        ec2()
    ));
    assert!(
        !m(json!({"detail": {"c-count": [{"prefix": "5"}]}}), ec2()),
        "strings only"
    );
}

#[test]
fn anything_but() {
    let st = |p: Value| m(json!({"detail": {"state": [p]}}), ec2());
    assert!(st(json!({"anything-but": "running"})));
    assert!(!st(json!({"anything-but": "terminated"})));
    assert!(!st(json!({"anything-but": ["stopped", "terminated"]})));
    assert!(st(json!({"anything-but": {"prefix": "run"}})));
    assert!(!st(json!({"anything-but": {"prefix": "term"}})));
    assert!(!st(json!({"anything-but": {"suffix": "nated"}})));
    assert!(!st(json!({"anything-but": {"wildcard": "t*d"}})));
    assert!(!st(
        json!({"anything-but": {"equals-ignore-case": ["TERMINATED"]}})
    ));
    assert!(m(
        json!({"detail": {"c-count": [{"anything-but": [1, 2]}]}}),
        ec2()
    ));
    assert!(!m(
        json!({"detail": {"c-count": [{"anything-but": [5.0]}]}}),
        ec2()
    ));
    assert!(
        !m(
            json!({"detail": {"missing": [{"anything-but": "x"}]}}),
            ec2()
        ),
        "needs the field"
    );
}

#[test]
fn numeric_exists_cidr() {
    let d = |field: &str, p: Value| m(json!({"detail": {field: [p]}}), ec2());
    assert!(d("c-count", json!({"numeric": [">", 0, "<=", 5]})));
    assert!(!d("c-count", json!({"numeric": [">", 5]})));
    assert!(d("d-count", json!({"numeric": ["<", 10]})));
    assert!(d("c-count", json!({"numeric": ["=", 5]})));
    assert!(!d("state", json!({"numeric": [">", 0]})), "numbers only");
    assert!(d("state", json!({"exists": true})));
    assert!(d("missing", json!({"exists": false})));
    assert!(!d("state", json!({"exists": false})));
    assert!(
        !m(json!({"detail": [{"exists": true}]}), ec2()),
        "leaves only"
    );
    assert!(d("source-ip", json!({"cidr": "10.0.0.0/24"})));
    assert!(!d("source-ip", json!({"cidr": "10.0.1.0/24"})));
    assert!(m(
        json!({"detail": {"missing": [{"exists": false}, "x"]}}),
        ec2()
    ));
}

#[test]
fn or_and_array_consistency() {
    let p =
        json!({"$or": [{"source": ["aws.s3"]}, {"detail": {"c-count": [{"numeric": [">", 1]}]}}]});
    assert!(m(p, ec2()));
    let p = json!({"detail": {"$or": [{"state": ["running"]}, {"flag": [false]}]}});
    assert!(!m(p, ec2()));
    let ev = json!({"items": [{"kind": "a", "size": 1}, {"kind": "b", "size": 2}]});
    assert!(m(
        json!({"items": {"kind": ["a"], "size": [1]}}),
        ev.clone()
    ));
    assert!(
        !m(json!({"items": {"kind": ["a"], "size": [2]}}), ev.clone()),
        "same element"
    );
    assert!(m(json!({"items": {"kind": ["b"]}}), ev));
}

#[test]
fn invalid_patterns_say_why() {
    for (p, why) in [
        (json!([]), "must be a JSON object"),
        (json!({}), "empty objects"),
        (json!({"detail": {}}), "empty objects"),
        (json!({"source": []}), "empty arrays"),
        (
            json!({"source": "aws.ec2"}),
            "must be an object or an array",
        ),
        (
            json!({"source": [{"prefixx": "a"}]}),
            "unknown operator `prefixx`",
        ),
        (
            json!({"source": [{"prefix": "a", "suffix": "b"}]}),
            "exactly one key",
        ),
        (json!({"source": [{"prefix": 3}]}), "must be given a string"),
        (
            json!({"source": [{"exists": "yes"}]}),
            "`exists` must be true or false",
        ),
        (
            json!({"n": [{"numeric": [">", 5, "<", 1]}]}),
            "bad numeric expression",
        ),
        (
            json!({"n": [{"numeric": ["=", "x"]}]}),
            "bad numeric expression",
        ),
        (json!({"ip": [{"cidr": "10.0.0.0/40"}]}), "not a CIDR block"),
        (json!({"w": [{"wildcard": "a**b"}]}), "consecutive wildcard"),
        (json!({"a": [{"anything-but": []}]}), "empty list"),
        (
            json!({"a": [{"anything-but": ["x", 1]}]}),
            "only strings or only numbers",
        ),
        (
            json!({"a": [{"anything-but": {"prefix": ""}}]}),
            "cannot be an empty string",
        ),
        (json!({"$or": [{"a": ["x"]}]}), "at least 2"),
        (json!({"$or": {"a": ["x"]}}), "array of patterns"),
        (json!({"a": [["x"]]}), "not an array"),
    ] {
        let got = invalid(p.clone());
        assert!(got.contains(why), "{p}: {got}");
    }
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-c]{0,3}".prop_map(Value::from),
        (-3i64..4).prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ]
}

fn event() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        4 => scalar(),
        1 => prop::collection::vec(scalar(), 0..3).prop_map(Value::from),
    ];
    prop::collection::btree_map(prop_oneof![Just("a"), Just("b"), Just("c")], leaf, 0..3).prop_map(
        |m| {
            let inner: serde_json::Map<String, Value> =
                m.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            json!({"x": Value::Object(inner.clone()), "a": inner.get("a").cloned().unwrap_or(Value::Null)})
        },
    )
}

proptest! {
    /// A pattern built from one of the event's own values matches it; `anything-but` that
    /// same value does not when the field holds only that value.
    #[test]
    fn own_values_match(ev in event()) {
        let Value::Object(x) = &ev["x"] else { unreachable!() };
        for (k, v) in x {
            let values: Vec<Value> = match v { Value::Array(a) => a.clone(), s => vec![s.clone()] };
            for val in &values {
                let p = json!({"x": {k: [val]}});
                prop_assert!(m(p, ev.clone()));
            }
            if let [only @ (Value::String(_) | Value::Number(_))] = values.as_slice() {
                let p = json!({"x": {k: [{"anything-but": only}]}});
                prop_assert!(!m(p, ev.clone()));
            }
            let p = json!({"x": {k: [{"exists": true}]}});
            prop_assert_eq!(m(p, ev.clone()), !values.is_empty());
        }
    }

    /// `$or` of two patterns matches exactly when one of them does.
    #[test]
    fn or_is_disjunction(ev in event(), a in scalar(), b in scalar()) {
        let p1 = json!({"x": {"a": [a]}});
        let p2 = json!({"x": {"b": [b]}});
        let either = json!({"$or": [p1.clone(), p2.clone()]});
        prop_assert_eq!(m(either, ev.clone()), m(p1, ev.clone()) || m(p2, ev));
    }

    /// Parsing never panics, whatever the input.
    #[test]
    fn parse_never_panics(text in ".{0,200}") {
        let _ = Pattern::parse(&text);
    }
}
