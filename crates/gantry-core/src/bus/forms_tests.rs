//! Every operator form of the pattern language, matching and refused, against what the
//! EventBridge user guide ("Comparison operators for use in event patterns", "Content filtering
//! in Amazon EventBridge event patterns") documents and what aws/event-ruler's
//! `JsonRuleCompiler` accepts or refuses. Each test names the behaviour it checks.

use super::Pattern;
use serde_json::{Value, json};

fn m(pattern: Value, event: Value) -> bool {
    Pattern::from_json(&pattern)
        .unwrap_or_else(|e| panic!("{pattern}: {e}"))
        .matches_json(&event)
}

fn refused(pattern: Value, why: &str) {
    match Pattern::from_json(&pattern) {
        Ok(_) => panic!("accepted: {pattern}"),
        Err(e) => assert!(e.to_string().contains(why), "{pattern}: {e}"),
    }
}

/// `{"f": [p]}` against `{"f": v}`.
fn f(p: Value, v: Value) -> bool {
    m(json!({ "f": [p] }), json!({ "f": v }))
}

/// User guide, "Anything-but (begins with)": `{"anything-but": {"prefix": "us-"}}`; event-ruler
/// also takes a list of prefixes (`processAnythingButValuesSetMatchExpression`): the value
/// starts with none of them.
#[test]
fn anything_but_prefix_list() {
    let p = json!({"anything-but": {"prefix": ["us-", "eu-"]}});
    assert!(f(p.clone(), json!("ap-south-1")));
    assert!(!f(p.clone(), json!("us-east-1")));
    assert!(!f(p.clone(), json!("eu-west-1")));
    assert!(f(p.clone(), json!("US-east-1")), "case matters");
    assert!(f(p, json!(5)), "a number starts with no string");
    assert!(!f(
        json!({"anything-but": {"prefix": "us-"}}),
        json!("us-west-2")
    ));
}

/// User guide, "Anything-but (ends with)": `{"anything-but": {"suffix": ".png"}}`, and a list.
#[test]
fn anything_but_suffix_list() {
    let p = json!({"anything-but": {"suffix": [".png", ".jpg"]}});
    assert!(f(p.clone(), json!("a.txt")));
    assert!(!f(p.clone(), json!("a.png")));
    assert!(!f(p, json!("b.jpg")));
    assert!(f(
        json!({"anything-but": {"suffix": ".png"}}),
        json!("a.PNG")
    ));
}

/// User guide, "Anything-but using a wildcard": `{"anything-but": {"wildcard": "*/lib/*"}}`;
/// a list refuses every one of its wildcards.
#[test]
fn anything_but_wildcard_list() {
    let p = json!({"anything-but": {"wildcard": ["*.txt", "*.md"]}});
    assert!(f(p.clone(), json!("main.rs")));
    assert!(!f(p.clone(), json!("notes.txt")));
    assert!(!f(p, json!("README.md")));
    let lib = json!({"anything-but": {"wildcard": "*/lib/*"}});
    assert!(!f(lib.clone(), json!("/usr/lib/x")));
    assert!(f(lib, json!("/usr/bin/x")));
}

/// User guide, "Anything-but (ignore case)": `{"anything-but": {"equals-ignore-case":
/// "initializing"}}` refuses every casing; a list refuses each of them.
#[test]
fn anything_but_equals_ignore_case() {
    let one = json!({"anything-but": {"equals-ignore-case": "initializing"}});
    assert!(!f(one.clone(), json!("INITIALIZING")));
    assert!(f(one, json!("running")));
    let list = json!({"anything-but": {"equals-ignore-case": ["Stopped", "overloaded"]}});
    assert!(!f(list.clone(), json!("stopped")));
    assert!(!f(list.clone(), json!("OVERLOADED")));
    assert!(f(list, json!("running")));
}

/// User guide, "Anything-but matching": a string, a number, a list of only strings or only
/// numbers; the field must exist; an event value of another type is none of the listed ones;
/// in an event array, any element that is not listed matches.
#[test]
fn anything_but_values() {
    assert!(f(
        json!({"anything-but": ["stopped", "overloaded"]}),
        json!("running")
    ));
    assert!(!f(
        json!({"anything-but": ["stopped", "overloaded"]}),
        json!("stopped")
    ));
    assert!(!f(json!({"anything-but": [100, 200, 300]}), json!(200.0)));
    assert!(f(json!({"anything-but": 123}), json!(124)));
    assert!(f(json!({"anything-but": "x"}), json!(null)));
    assert!(f(json!({"anything-but": "5"}), json!(5)));
    assert!(!m(json!({"g": [{"anything-but": "x"}]}), json!({"f": "y"})));
    assert!(f(json!({"anything-but": "a"}), json!(["a", "b"])));
    assert!(!f(json!({"anything-but": ["a", "b"]}), json!(["a", "b"])));
}

/// event-ruler accepts an empty list in the object forms (only the plain list must hold a
/// value): excluding nothing, it matches every value.
#[test]
fn anything_but_empty_set_excludes_nothing() {
    assert!(f(json!({"anything-but": {"prefix": []}}), json!("a")));
    assert!(f(json!({"anything-but": {"wildcard": []}}), json!("a")));
}

/// event-ruler's refusals inside `anything-but` ("Unsupported anything-but pattern", "Null
/// prefix/suffix not allowed", "prefix/suffix match pattern must be a string", "Inside
/// anything-but/equals-ignore-case list, number|start|null|boolean is not supported",
/// "Inside anything but list, either all values are number or string", "Value of anything-but
/// must be an array or single string/number value", the wildcard parser's), each naming the
/// field's path.
#[test]
fn anything_but_refusals() {
    let at = |p: Value| json!({"detail": {"f": [p]}});
    for (p, why) in [
        (
            json!({"anything-but": {"contains": "a"}}),
            "does not take `contains`",
        ),
        (
            json!({"anything-but": {"numeric": [">", 1]}}),
            "does not take `numeric`",
        ),
        (json!({"anything-but": {}}), "needs one of prefix"),
        (
            json!({"anything-but": {"prefix": "a", "suffix": "b"}}),
            "exactly one key",
        ),
        (
            json!({"anything-but": {"prefix": ""}}),
            "cannot be an empty string",
        ),
        (
            json!({"anything-but": {"suffix": ["a", ""]}}),
            "cannot be an empty string",
        ),
        (
            json!({"anything-but": {"prefix": ["a", 1]}}),
            "only strings, found 1",
        ),
        (
            json!({"anything-but": {"prefix": 5}}),
            "a string or a list of strings, found 5",
        ),
        (
            json!({"anything-but": {"equals-ignore-case": [null]}}),
            "only strings, found null",
        ),
        (
            json!({"anything-but": {"equals-ignore-case": 3}}),
            "found 3",
        ),
        (
            json!({"anything-but": {"wildcard": ["*.txt", 1]}}),
            "only strings",
        ),
        (
            json!({"anything-but": {"wildcard": ["a**"]}}),
            "consecutive wildcard",
        ),
        (
            json!({"anything-but": {"wildcard": "a\\b"}}),
            "`\\` must be followed",
        ),
        (json!({"anything-but": []}), "cannot be an empty list"),
        (json!({"anything-but": ["a", 1]}), "not both"),
        (
            json!({"anything-but": ["a", null]}),
            "only strings or only numbers, found null",
        ),
        (json!({"anything-but": [true]}), "found true"),
        (json!({"anything-but": true}), "found true"),
        (json!({"anything-but": null}), "found null"),
        (json!({"anything-but": 6e9}), "outside -5e9..5e9"),
        (
            json!({"anything-but": [1, 1.1234567]}),
            "more than 6 digits",
        ),
    ] {
        refused(at(p.clone()), "`detail.f`");
        refused(at(p), why);
    }
}

/// User guide, "Numeric matching": `>`/`>=` then `<`/`<=`, or `=`; event-ruler refuses bounds
/// out of order, incomplete or repeated expressions, non-numbers, and numbers outside
/// -5e9..5e9 or with more than 6 decimals. The error names the path.
#[test]
fn numeric_forms() {
    let p = |r: Value| json!({"detail": {"n": [{"numeric": r}]}});
    let e = |n: Value| json!({"detail": {"n": n}});
    assert!(m(p(json!([">", 0, "<=", 5])), e(json!(5))));
    assert!(
        !m(p(json!([">", 0, "<=", 5])), e(json!("5"))),
        "JSON numbers only"
    );
    assert!(m(p(json!(["=", 3.018e2])), e(json!(301.8))));
    assert!(m(p(json!([">=", 1])), e(json!([0, 2]))), "any element");
    for (r, why) in [
        (json!([">", 10, "<", 5]), "must be below the upper bound"),
        (
            json!(["<", 5, ">", 1]),
            "nothing may follow the upper bound",
        ),
        (json!([">"]), "must be followed by a number"),
        (json!([">", 1, "<"]), "must be followed by a number"),
        (
            json!([">", 1, ">", 2]),
            "may only be followed by an upper bound",
        ),
        (
            json!(["<", 1, "<", 2]),
            "nothing may follow the upper bound",
        ),
        (json!(["=", "3"]), "found \"3\""),
        (json!([">", 5000000001i64]), "outside -5e9..5e9"),
        (json!(["=", 0.1234567]), "more than 6 digits"),
    ] {
        refused(p(r.clone()), "`detail.n`: bad numeric expression");
        refused(p(r), why);
    }
    refused(json!({"n": [{"numeric": ">"}]}), "`numeric` takes an array");
}

/// A number listed as a plain value outside the comparable range is still an exact value
/// (event-ruler: "make that condition survivable", e.g. account numbers).
#[test]
fn large_exact_numbers_are_allowed() {
    assert!(f(json!(123456789012i64), json!(123456789012i64)));
}

/// event-ruler `parseIntoOrRelationship` / `parseObjectInsideOrRelationship`: `$or` takes an
/// array of at least two objects, and no key inside it (at any depth) may be one of the
/// reserved keywords; outside `$or` those names are plain field names.
#[test]
fn or_refusals() {
    for key in [
        "prefix",
        "numeric",
        "anything-but",
        "exists",
        "=",
        ">=",
        "regex",
        "cidr",
    ] {
        refused(
            json!({"$or": [{key: ["a"]}, {"b": ["c"]}]}),
            &format!("`{key}` is a reserved keyword"),
        );
        refused(
            json!({"d": {"$or": [{"a": {key: ["x"]}}, {"b": ["c"]}]}}),
            &format!(
                "`d.a`: `{key}` is a reserved keyword and cannot be used as a field name inside `$or`"
            ),
        );
        assert!(
            m(json!({ key: ["a"] }), json!({ key: "a" })),
            "{key} outside $or"
        );
    }
    refused(json!({"$or": [{"a": ["x"]}]}), "at least 2");
    refused(json!({"$or": []}), "at least 2");
    refused(
        json!({"$or": [{"a": ["x"]}, ["b"]]}),
        "each item of `$or` must be an object",
    );
    refused(json!({"$or": [{"a": ["x"]}, {}]}), "empty objects");
    refused(json!({"$or": {"a": ["x"]}}), "must be an array");
}

/// event-ruler `writeRules`: a path given again in the same branch (once outside `$or`, once
/// in one of its alternatives) replaces the earlier condition rather than adding to it.
#[test]
fn or_later_path_replaces_earlier() {
    let p = json!({"a": ["x"], "$or": [{"a": ["y"]}, {"b": ["z"]}]});
    assert!(
        m(p.clone(), json!({"a": "y"})),
        "the alternative's `a` replaces"
    );
    assert!(m(p.clone(), json!({"a": "x", "b": "z"})));
    assert!(!m(p, json!({"a": "x"})));
    // event-ruler's own example (JsonRuleCompilerTest.testWithRuleOverride).
    let p = json!({"name": ["a", "b"], "$or": [
        {"name": [{"anything-but": "a"}]}, {"condition1": ["x"]}]});
    assert!(m(p.clone(), json!({"name": "a", "condition1": "x"})));
    assert!(m(p, json!({"name": "c"})));
    // A key repeated in the pattern's text: the later one counts (ibid., event-ruler
    // issue 22's rule).
    let p = Pattern::parse(
        r#"{"detail": {"eventSource": ["s3.amazonaws.com"], "eventSource": ["sns.amazonaws.com"]}}"#,
    )
    .unwrap();
    assert!(p.matches_json(&json!({"detail": {"eventSource": "sns.amazonaws.com"}})));
    assert!(!p.matches_json(&json!({"detail": {"eventSource": "s3.amazonaws.com"}})));
}

/// User guide, "Exists matching": `true` or `false` only (event-ruler: "exists match pattern
/// must be either true or false").
#[test]
fn exists_only_booleans() {
    assert!(f(json!({"exists": true}), json!(null)), "null is present");
    assert!(m(json!({"g": [{"exists": false}]}), json!({"f": 1})));
    for v in [json!(1), json!("true"), json!(null), json!([true])] {
        refused(
            json!({"f": [{"exists": v}]}),
            "`exists` must be true or false",
        );
    }
}

/// User guide, "Wildcard matching", and event-ruler `WildcardParser`: `*` is any run of
/// characters, consecutive `*` are refused, `\*` is a literal star, `\\` a backslash, and a
/// backslash before anything else is refused.
#[test]
fn wildcard_rules() {
    assert!(f(json!({"wildcard": "dir/*.png"}), json!("dir/a.png")));
    assert!(!f(json!({"wildcard": "dir/*.png"}), json!("dir/a.jpg")));
    assert!(f(json!({"wildcard": "a\\*b"}), json!("a*b")));
    assert!(!f(json!({"wildcard": "a\\*b"}), json!("axb")));
    assert!(f(json!({"wildcard": "a\\\\b"}), json!("a\\b")));
    assert!(!f(json!({"wildcard": "*"}), json!(1)), "strings only");
    refused(json!({"f": [{"wildcard": "a**b"}]}), "consecutive wildcard");
    refused(
        json!({"f": [{"wildcard": "a\\b"}]}),
        "must be followed by `*` or `\\`",
    );
    refused(
        json!({"f": [{"wildcard": "a\\"}]}),
        "must be followed by `*` or `\\`",
    );
    refused(json!({"f": [{"wildcard": 1}]}), "must be given a string");
}

/// User guide, "IP address matching": `cidr` with IPv4 and IPv6 blocks; event-ruler refuses a
/// /32 or /128 mask and malformed blocks.
#[test]
fn cidr_forms() {
    assert!(f(json!({"cidr": "10.0.0.0/24"}), json!("10.0.0.255")));
    assert!(!f(json!({"cidr": "10.0.0.0/24"}), json!("10.0.1.0")));
    assert!(f(json!({"cidr": "2001:db8::/64"}), json!("2001:db8::ff")));
    assert!(!f(json!({"cidr": "10.0.0.0/8"}), json!("not an ip")));
    refused(json!({"f": [{"cidr": "10.0.0.1/32"}]}), "below /32");
    refused(json!({"f": [{"cidr": "10.0.0.0"}]}), "not a CIDR block");
    refused(json!({"f": [{"cidr": 10}]}), "must be given a string");
}

/// User guide, "Equals-ignore-case matching" and "Prefix/Suffix matching while ignoring case":
/// a string, or `{"equals-ignore-case": string}` inside `prefix` / `suffix`, nothing else.
#[test]
fn ignore_case_forms() {
    assert!(f(json!({"equals-ignore-case": "alice"}), json!("ALICE")));
    assert!(!f(json!({"equals-ignore-case": "alice"}), json!("alicia")));
    assert!(f(
        json!({"prefix": {"equals-ignore-case": "EventB"}}),
        json!("eventbridge")
    ));
    assert!(f(
        json!({"suffix": {"equals-ignore-case": ".png"}}),
        json!("A.PNG")
    ));
    assert!(!f(
        json!({"suffix": {"equals-ignore-case": ".png"}}),
        json!("a.jpg")
    ));
    refused(
        json!({"f": [{"equals-ignore-case": 1}]}),
        "must be given a string",
    );
    refused(
        json!({"f": [{"equals-ignore-case": ["a"]}]}),
        "must be given a string",
    );
    refused(
        json!({"f": [{"prefix": {"equals-ignore-case": 1}}]}),
        "must be given a string",
    );
    refused(
        json!({"f": [{"prefix": {"wildcard": "a*"}}]}),
        "takes a string or",
    );
    refused(
        json!({"f": [{"suffix": {"equals-ignore-case": "a", "x": "b"}}]}),
        "takes a string or",
    );
}

/// User guide, "Empty values" and "Null values": `""` matches only the empty string, `null`
/// only an explicit null (not a missing field); empty arrays in a pattern are refused.
#[test]
fn empty_and_null() {
    assert!(f(json!(""), json!("")));
    assert!(!f(json!(""), json!(null)));
    assert!(f(json!(null), json!(null)));
    assert!(!f(json!(null), json!("")));
    assert!(!m(json!({"g": [null]}), json!({"f": null})));
    refused(json!({"f": []}), "empty arrays are not allowed");
    refused(json!({"f": [{}]}), "exactly one key");
}

/// User guide, "Arrays": a pattern value matches an event array when any element matches.
#[test]
fn event_arrays_any_element() {
    assert!(f(json!("b"), json!(["a", "b"])));
    assert!(!f(json!("c"), json!(["a", "b"])));
    assert!(f(json!({"prefix": "b"}), json!(["a", "bc"])));
    assert!(
        !f(json!({"exists": true}), json!([])),
        "an empty array has no value"
    );
}
