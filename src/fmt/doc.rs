//! A Wadler/Lindig-style pretty-printing document algebra and its renderer (after Gleam's
//! `compiler-core/src/pretty.rs`): text, line breaks, nesting, and groups that are laid out
//! flat when they fit in the line width and otherwise break every one of their own lines.

/// A document.
#[derive(Clone, Debug)]
pub enum Doc {
    Text(String),
    /// A space when its group is flat, a line break (plus indentation) when broken.
    Line,
    /// Nothing when its group is flat, a line break when broken.
    SoftLine,
    /// Always a line break; the groups around it cannot be flat.
    HardLine,
    /// Nothing, but the groups around it cannot be flat (after a trailing comment).
    BreakParent,
    /// `broken` when its group is broken, `flat` when flat (e.g. a trailing comma).
    IfBreak(Box<Doc>, Box<Doc>),
    /// The document with its line breaks indented by this many more spaces.
    Nest(usize, Box<Doc>),
    /// Flat if all of it fits on the rest of the line, else broken (as a whole).
    Group(Box<Doc>),
    Concat(Vec<Doc>),
}

pub fn text(s: impl Into<String>) -> Doc {
    Doc::Text(s.into())
}

pub fn concat(docs: impl IntoIterator<Item = Doc>) -> Doc {
    Doc::Concat(docs.into_iter().collect())
}

pub fn nest(indent: usize, doc: Doc) -> Doc {
    Doc::Nest(indent, Box::new(doc))
}

pub fn group(doc: Doc) -> Doc {
    Doc::Group(Box::new(doc))
}

pub fn if_break(broken: Doc, flat: Doc) -> Doc {
    Doc::IfBreak(Box::new(broken), Box::new(flat))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Flat,
    Break,
}

/// Does the first line of `first` (flat) followed by `rest` fit in `width` columns?
fn fits(width: isize, first: &Doc, rest: &[(usize, Mode, &Doc)]) -> bool {
    let mut left = width;
    let mut stack: Vec<(Mode, &Doc)> = vec![(Mode::Flat, first)];
    let mut rest = rest.iter().rev();
    loop {
        let Some((mode, doc)) = stack.pop() else {
            match rest.next() {
                Some((_, mode, doc)) => {
                    stack.push((*mode, doc));
                    continue;
                }
                None => return true,
            }
        };
        match doc {
            Doc::Text(s) => {
                left -= s.chars().count() as isize;
                if left < 0 {
                    return false;
                }
            }
            Doc::Line | Doc::SoftLine => match mode {
                Mode::Break => return true,
                Mode::Flat => {
                    if matches!(doc, Doc::Line) {
                        left -= 1;
                        if left < 0 {
                            return false;
                        }
                    }
                }
            },
            Doc::HardLine => return mode == Mode::Break,
            Doc::BreakParent => {
                if mode == Mode::Flat {
                    return false;
                }
            }
            Doc::IfBreak(broken, flat) => {
                stack.push((mode, if mode == Mode::Break { broken } else { flat }))
            }
            Doc::Nest(_, d) => stack.push((mode, d)),
            // Inside a flat group everything is flat; a group in the rest keeps its mode.
            Doc::Group(d) => stack.push((mode, d)),
            Doc::Concat(ds) => stack.extend(ds.iter().rev().map(|d| (mode, d))),
        }
    }
}

/// Renders `doc` in `width` columns. No line ends in spaces.
pub fn render(doc: &Doc, width: usize) -> String {
    let mut out = String::new();
    let mut col: usize = 0;
    // The indentation owed before the next text on a fresh line.
    let mut pending: Option<usize> = None;
    let mut stack: Vec<(usize, Mode, &Doc)> = vec![(0, Mode::Break, doc)];
    while let Some((indent, mode, doc)) = stack.pop() {
        match doc {
            Doc::Text(s) => {
                if s.is_empty() {
                    continue;
                }
                if let Some(n) = pending.take() {
                    out.extend(std::iter::repeat_n(' ', n));
                    col = n;
                }
                out.push_str(s);
                col += s.chars().count();
            }
            Doc::Line | Doc::SoftLine | Doc::HardLine => {
                if mode == Mode::Flat && !matches!(doc, Doc::HardLine) {
                    if matches!(doc, Doc::Line) {
                        out.push(' ');
                        col += 1;
                    }
                } else {
                    out.push('\n');
                    pending = Some(indent);
                    col = indent;
                }
            }
            Doc::BreakParent => {}
            Doc::IfBreak(broken, flat) => stack.push((
                indent,
                mode,
                if mode == Mode::Break { broken } else { flat },
            )),
            Doc::Nest(n, d) => stack.push((indent + n, mode, d)),
            Doc::Group(d) => {
                let mode = if mode == Mode::Flat || fits(width as isize - col as isize, d, &stack) {
                    Mode::Flat
                } else {
                    Mode::Break
                };
                stack.push((indent, mode, d));
            }
            Doc::Concat(ds) => stack.extend(ds.iter().rev().map(|d| (indent, mode, d))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Doc {
        let mut parts = vec![text("{")];
        let mut inner = vec![Doc::Line];
        for (i, it) in items.iter().enumerate() {
            if i > 0 {
                inner.push(text(","));
                inner.push(Doc::Line);
            }
            inner.push(text(*it));
        }
        parts.push(nest(2, concat(inner)));
        parts.push(Doc::Line);
        parts.push(text("}"));
        group(concat(parts))
    }

    #[test]
    fn a_group_that_fits_is_flat() {
        assert_eq!(render(&list(&["a", "b"]), 20), "{ a, b }");
    }

    #[test]
    fn a_group_that_does_not_fit_breaks_every_line() {
        assert_eq!(
            render(&list(&["aaaa", "bbbb"]), 10),
            "{\n  aaaa,\n  bbbb\n}"
        );
    }

    #[test]
    fn a_hard_line_breaks_the_groups_around_it() {
        let d = group(concat([
            text("a"),
            Doc::Line,
            text("b"),
            Doc::HardLine,
            text("c"),
        ]));
        assert_eq!(render(&d, 80), "a\nb\nc");
    }

    #[test]
    fn if_break_follows_its_group() {
        let d = |w| {
            render(
                &group(concat([
                    text("x"),
                    nest(2, concat([Doc::SoftLine, text("yyyy")])),
                    if_break(text(","), text("")),
                ])),
                w,
            )
        };
        assert_eq!(d(80), "xyyyy");
        assert_eq!(d(3), "x\n  yyyy,");
    }

    #[test]
    fn no_trailing_spaces_on_blank_lines() {
        let d = nest(
            4,
            concat([text("a"), Doc::HardLine, Doc::HardLine, text("b")]),
        );
        assert_eq!(render(&d, 80), "a\n\n    b");
    }
}
