//! Log text to HTML: every character escaped, ANSI colour codes (SGR) turned into `<span>`s
//! with classes (`b`, `i`, `u`, `fg1`…`fg15`, `bg0`…`bg15`; the stylesheet gives them colours),
//! every other escape sequence and control character dropped.

use std::fmt::Write as _;

/// The current text style: what the open `<span>` says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Style {
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
    fg: Option<u8>,
    bg: Option<u8>,
}

impl Style {
    fn classes(&self) -> String {
        let mut c = Vec::new();
        if self.bold {
            c.push("b".to_string());
        }
        if self.dim {
            c.push("d".to_string());
        }
        if self.italic {
            c.push("i".to_string());
        }
        if self.underline {
            c.push("u".to_string());
        }
        if let Some(f) = self.fg {
            c.push(format!("fg{f}"));
        }
        if let Some(b) = self.bg {
            c.push(format!("bg{b}"));
        }
        c.join(" ")
    }

    /// Applies one SGR sequence's parameters (`1;31`, `38;5;9`, empty = reset).
    fn apply(&mut self, params: &str) {
        let nums: Vec<u32> = if params.is_empty() {
            vec![0]
        } else {
            params
                .split([';', ':'])
                .map(|p| p.parse().unwrap_or(0))
                .collect()
        };
        let mut i = 0;
        while i < nums.len() {
            match nums[i] {
                0 => *self = Style::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => (self.bold, self.dim) = (false, false),
                23 => self.italic = false,
                24 => self.underline = false,
                n @ 30..=37 => self.fg = Some((n - 30) as u8),
                39 => self.fg = None,
                n @ 40..=47 => self.bg = Some((n - 40) as u8),
                49 => self.bg = None,
                n @ 90..=97 => self.fg = Some((n - 90 + 8) as u8),
                n @ 100..=107 => self.bg = Some((n - 100 + 8) as u8),
                n @ (38 | 48) => {
                    // 256 colours: the first 16 have classes, the rest stay plain; true colour
                    // is skipped (no inline styles under the page's CSP).
                    let colour = match nums.get(i + 1) {
                        Some(5) => {
                            let c = nums.get(i + 2).copied();
                            i += 2;
                            c.filter(|c| *c < 16).map(|c| c as u8)
                        }
                        Some(2) => {
                            i += 4;
                            None
                        }
                        _ => None,
                    };
                    if n == 38 {
                        self.fg = colour;
                    } else {
                        self.bg = colour;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
}

/// Appends `c` HTML-escaped.
fn push_escaped(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        c => out.push(c),
    }
}

/// The log `text` as HTML for a `<pre>`: escaped, colours as spans, other escapes removed.
pub fn to_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut style = Style::default();
    let mut open = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    // CSI: parameter and intermediate bytes, then one final byte.
                    let mut params = String::new();
                    let mut fin = None;
                    for p in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&p) {
                            fin = Some(p);
                            break;
                        }
                        params.push(p);
                    }
                    if fin == Some('m')
                        && params
                            .chars()
                            .all(|p| p.is_ascii_digit() || p == ';' || p == ':')
                    {
                        let before = style;
                        style.apply(&params);
                        if style != before {
                            if open {
                                out.push_str("</span>");
                                open = false;
                            }
                            if style != Style::default() {
                                let _ = write!(out, "<span class=\"{}\">", style.classes());
                                open = true;
                            }
                        }
                    }
                }
                Some(']' | 'P' | '_' | '^' | 'X') => {
                    // OSC and the other strings: up to BEL or ST (ESC \).
                    while let Some(p) = chars.next() {
                        if p == '\u{7}' {
                            break;
                        }
                        if p == '\u{1b}' {
                            if chars.peek() == Some(&'\\') {
                                chars.next();
                            }
                            break;
                        }
                    }
                }
                Some('(' | ')' | '*' | '+' | '#' | '%') => {
                    chars.next(); // a character set designation: one more byte
                }
                _ => {} // a two-byte escape (ESC 7, ESC =, …) or a lone ESC at the end
            },
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {} // \r, backspace, bell, C1 controls
            c => push_escaped(&mut out, c),
        }
    }
    if open {
        out.push_str("</span>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_html;

    #[test]
    fn plain_text_is_escaped() {
        assert_eq!(
            to_html("<script>alert('x')</script> & \"q\"\n"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;\n"
        );
    }

    #[test]
    fn colours_become_spans_and_reset_closes_them() {
        assert_eq!(
            to_html("a\u{1b}[31mred\u{1b}[0m b"),
            "a<span class=\"fg1\">red</span> b"
        );
        assert_eq!(
            to_html("\u{1b}[1;92mok\u{1b}[22m still\u{1b}[m"),
            "<span class=\"b fg10\">ok</span><span class=\"fg10\"> still</span>"
        );
        assert_eq!(
            to_html("\u{1b}[44;37mx"),
            "<span class=\"fg7 bg4\">x</span>",
            "a span left open is closed at the end"
        );
        assert_eq!(
            to_html("\u{1b}[38;5;9mx\u{1b}[39m"),
            "<span class=\"fg9\">x</span>"
        );
        assert_eq!(
            to_html("\u{1b}[38;2;1;2;3mx"),
            "x",
            "true colour is dropped"
        );
        assert_eq!(
            to_html("\u{1b}[0mx"),
            "x",
            "a reset with nothing open adds nothing"
        );
    }

    #[test]
    fn other_escapes_and_controls_are_stripped() {
        assert_eq!(to_html("a\u{1b}[2Kb\u{1b}[1;1Hc"), "abc");
        assert_eq!(to_html("\u{1b}]0;title\u{7}t"), "t");
        assert_eq!(to_html("\u{1b}]8;;http://x\u{1b}\\link"), "link");
        assert_eq!(to_html("\u{1b}(Bq\u{1b}=z"), "qz");
        assert_eq!(to_html("50%\r100%\u{8}\u{7}\n"), "50%100%\n");
        assert_eq!(to_html("end\u{1b}"), "end");
        assert_eq!(
            to_html("\u{1b}[<script>m"),
            "cript&gt;m",
            "a CSI ends at its final byte (`s`); the rest is text"
        );
    }

    #[test]
    fn text_inside_a_span_is_escaped() {
        assert_eq!(
            to_html("\u{1b}[33m<b>\u{1b}[0m"),
            "<span class=\"fg3\">&lt;b&gt;</span>"
        );
    }
}
