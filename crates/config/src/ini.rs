//! A small INI reader with the syntax oslo.config accepts.
//!
//! Why our own: every error must carry the file's line number (and every warning too), and the
//! general-purpose INI crates return maps without the line each key came from. The subset needed is
//! small: `[section]` headers, `key = value` and `key: value` (the first `=` or `:` separates),
//! whole-line `#` and `;` comments, indented continuation lines (joined with a newline, as oslo does),
//! values surrounded by matching quotes lose them, and empty values are allowed. Like oslo, a `#`
//! after a value is part of the value, not a comment.

use crate::error::ConfigError;

/// One `key = value` assignment as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assignment {
    /// The section header it follows, as written.
    pub section: String,
    /// The line of that section header.
    pub section_line: usize,
    /// The option name, trimmed.
    pub key: String,
    /// The value, trimmed, without surrounding quotes; continuation lines joined with `\n`.
    pub value: String,
    /// The 1-based line of the key.
    pub line: usize,
}

/// A parsed file: the section headers (in order, repeated ones included) and the assignments.
#[derive(Debug, Default)]
pub(crate) struct Document {
    /// `(name, line)` of each section header.
    pub sections: Vec<(String, usize)>,
    /// Every assignment, in file order.
    pub assignments: Vec<Assignment>,
}

fn unquote(v: &str) -> &str {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// Parses `text`; `origin` names the file in errors.
pub(crate) fn parse(text: &str, origin: &str) -> Result<Document, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut doc = Document::default();
    let mut current: Option<(String, usize)> = None;
    // Whether the previous non-comment line was an assignment (so an indented line continues it).
    let mut open_value = false;
    let syntax = |line: usize, message: &str| ConfigError::Syntax {
        origin: origin.to_string(),
        line,
        message: message.to_string(),
    };
    for (idx, raw) in text.split('\n').enumerate() {
        let line = idx + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            open_value = false;
            continue;
        }
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if raw.starts_with([' ', '\t']) && open_value {
            let last = doc
                .assignments
                .last_mut()
                .expect("open_value implies an assignment");
            last.value.push('\n');
            last.value.push_str(unquote(trimmed));
            continue;
        }
        open_value = false;
        if let Some(rest) = trimmed.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .ok_or_else(|| syntax(line, "a section header must end with `]`"))?
                .trim();
            if name.is_empty() {
                return Err(syntax(line, "empty section name `[]`"));
            }
            doc.sections.push((name.to_string(), line));
            current = Some((name.to_string(), line));
            continue;
        }
        let sep = trimmed.find(['=', ':']).ok_or_else(|| {
            syntax(
                line,
                &format!("expected `option = value`, `[section]` or a comment, found {trimmed:?}"),
            )
        })?;
        let key = trimmed[..sep].trim();
        if key.is_empty() {
            return Err(syntax(
                line,
                &format!("no option name before the `{}`", &trimmed[sep..=sep]),
            ));
        }
        let (section, section_line) = current.clone().ok_or_else(|| {
            syntax(
                line,
                &format!("option {key} comes before any section header; add [DEFAULT] above it"),
            )
        })?;
        doc.assignments.push(Assignment {
            section,
            section_line,
            key: key.to_string(),
            value: unquote(trimmed[sep + 1..].trim()).to_string(),
            line,
        });
        open_value = true;
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_subset() {
        let doc = parse(
            "\u{feff}# c\n; c\n[DEFAULT]\na = 1\nb: two\r\nc =\nd = \"q\"\ne = 'x' # not a comment\n\
             f = x,\n  y\n\n[ovn]\ng=tcp:1.2.3.4:6641\n",
            "t",
        )
        .unwrap();
        let kv: Vec<_> = doc
            .assignments
            .iter()
            .map(|a| (a.section.as_str(), a.key.as_str(), a.value.as_str(), a.line))
            .collect();
        assert_eq!(
            kv,
            vec![
                ("DEFAULT", "a", "1", 4),
                ("DEFAULT", "b", "two", 5),
                ("DEFAULT", "c", "", 6),
                ("DEFAULT", "d", "q", 7),
                ("DEFAULT", "e", "'x' # not a comment", 8),
                ("DEFAULT", "f", "x,\ny", 9),
                ("ovn", "g", "tcp:1.2.3.4:6641", 13),
            ]
        );
        assert_eq!(
            doc.sections,
            vec![("DEFAULT".into(), 3), ("ovn".into(), 12)]
        );
    }

    #[test]
    fn syntax_errors_carry_line() {
        for (text, line, needle) in [
            ("[DEFAULT\n", 1, "must end with `]`"),
            ("\n[]\n", 2, "empty section"),
            ("[DEFAULT]\njunk\n", 2, "expected `option = value`"),
            ("[DEFAULT]\n = 3\n", 2, "no option name"),
            ("a = 1\n", 1, "before any section"),
        ] {
            let e = parse(text, "f.conf").unwrap_err();
            assert_eq!(e.line(), Some(line), "{text:?}");
            let s = e.to_string();
            assert!(s.starts_with(&format!("f.conf:{line}: ")), "{s}");
            assert!(s.contains(needle), "{s}");
        }
    }
}
