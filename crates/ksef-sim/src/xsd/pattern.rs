//! XSD regular expressions (XML Schema Part 2, appendix F) translated to the `regex` crate's
//! syntax: implicitly anchored, `.` excludes CR and LF, `\s` is XML whitespace, `\i` / `\c`
//! are XML name characters, `\p{IsBlock}` names a Unicode block, `[a-z-[aeiou]]` subtracts a
//! class, and `^` / `$` are ordinary characters.

/// Translates an XSD pattern to an anchored `regex` pattern.
pub(crate) fn translate(xsd: &str) -> Result<String, String> {
    let chars: Vec<char> = xsd.chars().collect();
    let mut p = Parser { s: &chars, i: 0 };
    let mut out = String::from(r"\A(?:");
    p.branch_list(&mut out, 0)?;
    if p.i != chars.len() {
        return Err(format!("nieoczekiwany znak na pozycji {}", p.i));
    }
    out.push_str(r")\z");
    Ok(out)
}

struct Parser<'a> {
    s: &'a [char],
    i: usize,
}

/// A literal character in `regex` syntax (escaped unless alphanumeric).
fn lit(c: char) -> String {
    if c.is_ascii_alphanumeric() {
        c.to_string()
    } else {
        format!(r"\x{{{:X}}}", u32::from(c))
    }
}

/// The class body (without brackets) of a multi-character escape, and whether it is negated.
fn class_escape(c: char) -> Option<(&'static str, bool)> {
    const SPACE: &str = r"\x20\t\n\r";
    // Letters, `_` and `:` (XML 1.0 name start characters, approximately by category).
    const INITIAL: &str = r"\p{L}\p{Nl}_:";
    const NAME: &str = r"\p{L}\p{Nl}\p{Nd}\p{Mn}\p{Mc}\p{Lm}_:.\-\x{B7}";
    const WORD: &str = r"\p{P}\p{Z}\p{C}";
    Some(match c {
        's' => (SPACE, false),
        'S' => (SPACE, true),
        'i' => (INITIAL, false),
        'I' => (INITIAL, true),
        'c' => (NAME, false),
        'C' => (NAME, true),
        'd' => (r"\p{Nd}", false),
        'D' => (r"\p{Nd}", true),
        // \w: everything but punctuation, separators and "other" characters.
        'w' => (WORD, true),
        'W' => (WORD, false),
        _ => return None,
    })
}

/// A Unicode block (`IsBasicLatin`, ...) as a range class body.
fn block(name: &str) -> Option<&'static str> {
    Some(match name {
        "BasicLatin" => r"\x00-\x7F",
        "Latin-1Supplement" => r"\x{80}-\x{FF}",
        "LatinExtended-A" => r"\x{100}-\x{17F}",
        "LatinExtended-B" => r"\x{180}-\x{24F}",
        "IPAExtensions" => r"\x{250}-\x{2AF}",
        "GreekandCoptic" | "Greek" => r"\x{370}-\x{3FF}",
        "Cyrillic" => r"\x{400}-\x{4FF}",
        "GeneralPunctuation" => r"\x{2000}-\x{206F}",
        "CurrencySymbols" => r"\x{20A0}-\x{20CF}",
        _ => return None,
    })
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Result<char, String> {
        let c = self.peek().ok_or("nieoczekiwany koniec wzorca")?;
        self.i += 1;
        Ok(c)
    }

    fn branch_list(&mut self, out: &mut String, depth: usize) -> Result<(), String> {
        loop {
            self.branch(out, depth)?;
            if self.peek() == Some('|') {
                self.i += 1;
                out.push('|');
            } else {
                return Ok(());
            }
        }
    }

    fn branch(&mut self, out: &mut String, depth: usize) -> Result<(), String> {
        while let Some(c) = self.peek() {
            match c {
                '|' => return Ok(()),
                ')' if depth > 0 => return Ok(()),
                _ => {
                    self.atom(out, depth)?;
                    self.quantifier(out)?;
                }
            }
        }
        Ok(())
    }

    fn quantifier(&mut self, out: &mut String) -> Result<(), String> {
        match self.peek() {
            Some(c @ ('?' | '*' | '+')) => {
                self.i += 1;
                out.push(c);
            }
            Some('{') => {
                self.i += 1;
                let mut q = String::from("{");
                loop {
                    let c = self.next()?;
                    if !(c.is_ascii_digit() || c == ',' || c == '}') {
                        return Err(format!("niepoprawny kwantyfikator przy '{c}'"));
                    }
                    q.push(c);
                    if c == '}' {
                        break;
                    }
                }
                if q == "{}" || q.starts_with("{,") {
                    return Err("niepoprawny kwantyfikator".into());
                }
                out.push_str(&q);
            }
            _ => return Ok(()),
        }
        Ok(())
    }

    fn atom(&mut self, out: &mut String, depth: usize) -> Result<(), String> {
        let c = self.next()?;
        match c {
            '(' => {
                out.push_str("(?:");
                self.branch_list(out, depth + 1)?;
                if self.next()? != ')' {
                    return Err("brak nawiasu zamykającego".into());
                }
                out.push(')');
            }
            '.' => out.push_str(r"[^\n\r]"),
            '[' => {
                let body = self.class_body()?;
                out.push_str(&body);
            }
            '\\' => out.push_str(&self.escape(false)?),
            '?' | '*' | '+' | '{' | '}' | ')' | ']' => {
                return Err(format!("nieoczekiwany znak '{c}'"));
            }
            c => out.push_str(&lit(c)),
        }
        Ok(())
    }

    /// After a backslash: a single-character escape as a literal, or a class escape (in a class
    /// body when `in_class`, bare otherwise).
    fn escape(&mut self, in_class: bool) -> Result<String, String> {
        let c = self.next()?;
        let wrap = |body: &str, neg: bool| {
            if in_class && !neg {
                body.to_owned()
            } else {
                format!("[{}{body}]", if neg { "^" } else { "" })
            }
        };
        Ok(match c {
            'n' => lit('\n'),
            'r' => lit('\r'),
            't' => lit('\t'),
            '\\' | '|' | '.' | '?' | '*' | '+' | '(' | ')' | '{' | '}' | '-' | '[' | ']' | '^' => {
                lit(c)
            }
            'p' | 'P' => {
                if self.next()? != '{' {
                    return Err("brak '{' po \\p".into());
                }
                let mut name = String::new();
                loop {
                    let c = self.next()?;
                    if c == '}' {
                        break;
                    }
                    name.push(c);
                }
                let neg = c == 'P';
                if let Some(b) = name.strip_prefix("Is") {
                    let r = block(b).ok_or(format!("nieznany blok Unicode {b}"))?;
                    wrap(r, neg)
                } else {
                    let ok = name.chars().all(|c| c.is_ascii_alphabetic()) && name.len() <= 2;
                    if !ok {
                        return Err(format!("nieznana kategoria Unicode {name}"));
                    }
                    format!(r"\{c}{{{name}}}")
                }
            }
            c => match class_escape(c) {
                Some((body, neg)) => wrap(body, neg),
                None => return Err(format!("nieznana sekwencja \\{c}")),
            },
        })
    }

    /// A character class after `[`, through its `]`, as a `regex` class.
    fn class_body(&mut self) -> Result<String, String> {
        let neg = self.peek() == Some('^');
        if neg {
            self.i += 1;
        }
        let mut items = String::new();
        let mut first = true;
        loop {
            let c = self.next()?;
            match c {
                ']' if !first => break,
                '-' if self.peek() == Some('[') && !first => {
                    self.i += 1;
                    let sub = self.class_body()?;
                    if self.next()? != ']' {
                        return Err("odejmowanie klas musi kończyć klasę".into());
                    }
                    let base = format!("[{}{items}]", if neg { "^" } else { "" });
                    return Ok(format!("[{base}--{sub}]"));
                }
                '[' => return Err("nieoczekiwany '[' w klasie".into()),
                _ => {
                    let start = if c == '\\' {
                        let e = self.escape(true)?;
                        if e.starts_with(r"\x{") {
                            e
                        } else {
                            // A class escape: no range may start from it.
                            items.push_str(&e);
                            first = false;
                            continue;
                        }
                    } else {
                        lit(c)
                    };
                    items.push_str(&start);
                    // A range `a-z` (a `-` before `]` or `[` is not a range).
                    if self.peek() == Some('-')
                        && !matches!(self.s.get(self.i + 1), Some(']') | Some('[') | None)
                    {
                        self.i += 1;
                        let end = self.next()?;
                        let end = if end == '\\' {
                            let e = self.escape(true)?;
                            if !e.starts_with(r"\x{") {
                                return Err("zakres kończy się klasą".into());
                            }
                            e
                        } else {
                            lit(end)
                        };
                        items.push('-');
                        items.push_str(&end);
                    }
                }
            }
            first = false;
        }
        Ok(format!("[{}{items}]", if neg { "^" } else { "" }))
    }
}

#[cfg(test)]
mod tests {
    use super::translate;

    fn m(xsd: &str, v: &str) -> bool {
        regex::Regex::new(&translate(xsd).unwrap())
            .unwrap()
            .is_match(v)
    }

    #[test]
    fn anchored_and_dot() {
        assert!(m(r"\d{4}", "2024") && !m(r"\d{4}", "20245") && !m(r"\d{4}", "x2024"));
        assert!(m("(.)+@(.)+", "a@b") && !m("(.)+@(.)+", "a\n@b"));
        assert!(m("a|bc", "bc") && !m("a|bc", "abc"));
        assert!(m("^$", "^$"), "^ and $ are literals");
    }

    #[test]
    fn classes() {
        assert!(m("[A-OQ-Z][A-Z]", "AB") && !m("[A-OQ-Z][A-Z]", "PL"));
        assert!(m(r"[A-Za-z0-9\-+]{0,20}", "a-b+c") && !m(r"[A-Za-z0-9\-+]{0,20}", "a_b"));
        assert!(m("[a-z-[aeiou]]+", "bcd") && !m("[a-z-[aeiou]]+", "bad"));
        assert!(m(r"[^\s?#]*", "abc") && !m(r"[^\s?#]*", "a b"));
        assert!(m("[-a]+", "-a-") && m("[a-]+", "a-"));
        assert!(m(r"\p{IsBasicLatin}+", "abc") && !m(r"\p{IsBasicLatin}+", "ąb"));
        assert!(m(r"\p{Lu}\P{Lu}", "Ab") && !m(r"\p{Lu}\P{Lu}", "AB"));
    }

    #[test]
    fn escapes() {
        assert!(m(r"\i\c*", "a-1") && !m(r"\i\c*", "1a"));
        assert!(m(r"\s", "\t") && !m(r"\s", "\u{A0}"));
        assert!(m(r"\w+", "ab1") && !m(r"\w", "."));
        assert!(m(r"\.\?\*\+\(\)\{\}\[\]\|\\", r".?*+(){}[]|\"));
        assert!(
            m("a&b~c#d", "a&b~c#d"),
            "no regex-crate class operators leak through"
        );
        assert!(m("[&~]+", "&~&"));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["(a", "a)", "[a", "a{,2}", r"\q", "*a", r"\p{IsNoSuchBlock}"] {
            assert!(translate(bad).is_err(), "{bad}");
        }
    }
}
