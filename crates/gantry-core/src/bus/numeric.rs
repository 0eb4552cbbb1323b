//! Numbers in EventBridge patterns: the `numeric` operator's ranges and the checks every
//! number EventBridge compares must pass. The grammar and the limits are aws/event-ruler's
//! (`JsonRuleCompiler.processNumericMatchExpression`, `ComparableNumber`): an optional lower
//! bound (`>` / `>=`) first, then an optional upper bound (`<` / `<=`), or `=` alone; values
//! between -5e9 and 5e9 inclusive with at most 6 digits after the decimal point.

use serde_json::Value;

/// The largest magnitude EventBridge compares numbers in.
pub const NUMERIC_LIMIT: f64 = 5.0e9;
/// The most digits after the decimal point EventBridge compares.
pub const MAX_DECIMALS: i64 = 6;

/// A numeric range; a bound is (value, inclusive).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub lower: Option<(f64, bool)>,
    pub upper: Option<(f64, bool)>,
}

/// How a JSON value reads in an error message.
pub fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
        other => other.to_string(),
    }
}

/// How many digits after the decimal point a number's text needs (`1.50` needs 1, `2e-7`
/// needs 7, `1e3` none).
fn decimals(text: &str) -> i64 {
    let lower = text.to_ascii_lowercase();
    let (mantissa, exp) = match lower.split_once('e') {
        Some((m, e)) => (m, e.parse::<i64>().unwrap_or(0)),
        None => (lower.as_str(), 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: String = format!("{int}{frac}");
    let mut scale = frac.len() as i64 - exp;
    while scale > 0 && digits.ends_with('0') {
        digits.pop();
        scale -= 1;
    }
    scale.max(0)
}

/// A number EventBridge can compare: within ±5e9 and with at most 6 decimals. The error says
/// which rule `v` breaks.
pub fn comparable(v: &Value) -> Result<f64, String> {
    let Value::Number(n) = v else {
        return Err(format!("expected a number, found {}", describe(v)));
    };
    let x = n.as_f64().unwrap_or(f64::NAN);
    if !(-NUMERIC_LIMIT..=NUMERIC_LIMIT).contains(&x) {
        return Err(format!(
            "{n} is outside -5e9..5e9 (inclusive), the numbers EventBridge compares"
        ));
    }
    if decimals(&n.to_string()) > MAX_DECIMALS {
        return Err(format!(
            "{n} has more than {MAX_DECIMALS} digits after the decimal point, more than EventBridge compares"
        ));
    }
    Ok(x)
}

impl Range {
    /// Whether the event number `x` is in the range. Numbers outside ±5e9 are never in one:
    /// event-ruler cannot turn them into its comparable form.
    pub fn contains(&self, x: f64) -> bool {
        if !(-NUMERIC_LIMIT..=NUMERIC_LIMIT).contains(&x) {
            return false;
        }
        let above = match self.lower {
            None => true,
            Some((b, true)) => x >= b,
            Some((b, false)) => x > b,
        };
        let below = match self.upper {
            None => true,
            Some((b, true)) => x <= b,
            Some((b, false)) => x < b,
        };
        above && below
    }

    /// `["=", 3]`, `[">", 0]`, `["<=", 5]`, `[">=", 0, "<", 10]` — nothing else.
    pub fn parse(items: &[Value]) -> Result<Range, String> {
        let bad = |why: String| Err(format!("bad numeric expression: {why}"));
        let number = |i: usize, op: &str| -> Result<f64, String> {
            match items.get(i) {
                None => Err(format!(
                    "bad numeric expression: `{op}` must be followed by a number"
                )),
                Some(v @ Value::Number(_)) => {
                    comparable(v).map_err(|e| format!("bad numeric expression: {e}"))
                }
                Some(v) => Err(format!(
                    "bad numeric expression: `{op}` must be followed by a number, found {}",
                    describe(v)
                )),
            }
        };
        let Some(first) = items.first() else {
            return bad("it is empty; expected an operator and a number, like [\">\", 0]".into());
        };
        let Some(op) = first.as_str() else {
            return bad(format!(
                "it must start with an operator (<, <=, =, >, >=), found {}",
                describe(first)
            ));
        };
        match op {
            "=" => {
                let n = number(1, op)?;
                if items.len() > 2 {
                    return bad("`=` takes one number and nothing after it".into());
                }
                Ok(Range {
                    lower: Some((n, true)),
                    upper: Some((n, true)),
                })
            }
            "<" | "<=" => {
                let n = number(1, op)?;
                if items.len() > 2 {
                    return bad(format!(
                        "nothing may follow the upper bound `{op}`; a lower bound comes first, like [\">\", 0, \"{op}\", 5]"
                    ));
                }
                Ok(Range {
                    lower: None,
                    upper: Some((n, op == "<=")),
                })
            }
            ">" | ">=" => {
                let lo = number(1, op)?;
                let lower = Some((lo, op == ">="));
                let Some(next) = items.get(2) else {
                    return Ok(Range { lower, upper: None });
                };
                let up_op = match next.as_str() {
                    Some(o @ ("<" | "<=")) => o,
                    Some(o @ (">" | ">=" | "=")) => {
                        return bad(format!(
                            "the lower bound `{op}` may only be followed by an upper bound (< or <=), found `{o}`"
                        ));
                    }
                    Some(o) => return bad(format!("unknown operator `{o}`")),
                    None => {
                        return bad(format!(
                            "the lower bound `{op}` may only be followed by an upper bound (< or <=), found {}",
                            describe(next)
                        ));
                    }
                };
                let hi = number(3, up_op)?;
                if items.len() > 4 {
                    return bad("too many terms; at most a lower and an upper bound".into());
                }
                if lo >= hi {
                    return bad(format!(
                        "the lower bound {lo} must be below the upper bound {hi}"
                    ));
                }
                Ok(Range {
                    lower,
                    upper: Some((hi, up_op == "<=")),
                })
            }
            other => bad(format!(
                "unknown operator `{other}`; expected <, <=, =, > or >="
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(v: Value) -> Result<Range, String> {
        Range::parse(v.as_array().expect("an array"))
    }

    /// EventBridge user guide, "Numeric matching": `[">", 0, "<=", 5]`, `["<", 10]`,
    /// `["=", 3.018e2]`.
    #[test]
    fn documented_ranges() {
        let x = r(json!([">", 0, "<=", 5])).unwrap();
        assert!(!x.contains(0.0) && x.contains(0.1) && x.contains(5.0) && !x.contains(5.1));
        let x = r(json!([">=", 0, "<", 10])).unwrap();
        assert!(x.contains(0.0) && !x.contains(10.0));
        assert!(r(json!(["<", 10])).unwrap().contains(-3.0));
        assert!(!r(json!(["<=", 10])).unwrap().contains(10.5));
        assert!(r(json!([">=", 2])).unwrap().contains(2.0));
        let eq = r(json!(["=", 3.018e2])).unwrap();
        assert!(eq.contains(301.8) && !eq.contains(301.81));
        // Limits are inclusive (event-ruler `ComparableNumber`: "between -5.0E9 and 5.0E9,
        // inclusive").
        assert!(r(json!([">=", -5e9, "<=", 5e9])).unwrap().contains(5e9));
        assert!(r(json!([">", 0, "<", 1.123456])).is_ok());
    }

    /// Event numbers outside ±5e9 have no comparable form in event-ruler, so no range holds
    /// them.
    #[test]
    fn event_numbers_out_of_range_never_match() {
        let any = r(json!([">", 0])).unwrap();
        assert!(any.contains(5e9) && !any.contains(6e9));
        assert!(!r(json!(["<", 0])).unwrap().contains(-6e9));
    }

    /// Every rejection of event-ruler's `processNumericMatchExpression` /
    /// `completeNumericRange` / `Range.between` / `ComparableNumber.generate`, with the
    /// words of ours.
    #[test]
    fn rejections_say_why() {
        for (v, why) in [
            // "Invalid member in numeric match"
            (json!([]), "it is empty"),
            (json!([5, ">"]), "must start with an operator"),
            // incomplete: "Value of > must be numeric"
            (json!([">"]), "`>` must be followed by a number"),
            (json!(["="]), "`=` must be followed by a number"),
            (json!([">", 1, "<"]), "`<` must be followed by a number"),
            // non-numbers
            (json!([">", "1"]), "found \"1\""),
            (json!(["=", null]), "found null"),
            (json!([">", 1, "<", true]), "found true"),
            // out of order: an upper bound is last ("Too many elements in numeric expression")
            (
                json!(["<", 5, ">", 1]),
                "nothing may follow the upper bound",
            ),
            (
                json!(["<=", 5, ">=", 1]),
                "nothing may follow the upper bound",
            ),
            // "Bottom must be less than top"
            (json!([">", 10, "<", 5]), "must be below the upper bound"),
            (json!([">=", 5, "<=", 5]), "must be below the upper bound"),
            // repeated bounds ("Bad numeric range operator")
            (
                json!([">", 1, ">=", 2]),
                "may only be followed by an upper bound",
            ),
            (
                json!([">", 1, "=", 2]),
                "may only be followed by an upper bound",
            ),
            (
                json!([">", 1, 2, 3]),
                "may only be followed by an upper bound",
            ),
            (json!(["=", 1, "<", 4]), "`=` takes one number"),
            // "Too many terms in numeric range expression"
            (json!([">", 0, "<", 4, "<", 5]), "too many terms"),
            // "Unrecognized numeric range operator"
            (json!(["!", 1]), "unknown operator `!`"),
            (json!([">", 0, "!=", 1]), "unknown operator `!=`"),
            // ComparableNumber: "Value must be between -5.0E9 and 5.0E9, inclusive"
            (json!([">", 6e9]), "outside -5e9..5e9"),
            (json!(["<", -5000000001i64]), "outside -5e9..5e9"),
            // ComparableNumber: "Only values upto 6 decimals are supported"
            (json!(["=", 1.1234567]), "more than 6 digits"),
            (json!([">", 0, "<", 1e-7]), "more than 6 digits"),
        ] {
            let got = r(v.clone()).expect_err(&v.to_string());
            assert!(got.contains(why), "{v}: {got}");
        }
    }

    #[test]
    fn decimal_places() {
        assert_eq!(decimals("1"), 0);
        assert_eq!(decimals("1.50"), 1);
        assert_eq!(decimals("1e-7"), 7);
        assert_eq!(decimals("1.5e3"), 0);
        assert_eq!(decimals("100e-2"), 0);
        assert_eq!(decimals("0.000001"), 6);
    }
}
