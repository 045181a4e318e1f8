//! placeholder (being written)

/// A tiny namespace-resolved element tree built from quick-xml's `NsReader`, shared by the UPO and
/// AuthTokenRequest parsers. quick-xml's serde layer matches names by local name only, so a
/// document in a foreign namespace would deserialize silently; this tree keeps every element's
/// resolved namespace so the parsers can check it.
pub(crate) mod dom {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;
    use quick_xml::reader::NsReader;

    /// Deepest nesting accepted (the documents we parse are a few levels deep; the limit keeps
    /// hostile input from exhausting the stack when the tree is dropped).
    const MAX_DEPTH: usize = 64;

    /// XML Digital Signature namespace (`ds:Signature` elements are skipped by callers).
    pub(crate) const XMLDSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";

    /// One element.
    #[derive(Debug, Clone, Default)]
    pub(crate) struct Element {
        /// Resolved namespace URI (`None` when unbound).
        pub ns: Option<String>,
        /// Local name.
        pub local: String,
        /// Attributes other than namespace declarations: (namespace, local name, value).
        pub attrs: Vec<(Option<String>, String, String)>,
        /// Child elements in document order.
        pub children: Vec<Element>,
        /// Concatenated character data directly inside this element.
        pub text: String,
    }

    impl Element {
        /// `{ns}local` for messages.
        pub fn qname(&self) -> String {
            match &self.ns {
                Some(ns) => format!("{{{ns}}}{}", self.local),
                None => self.local.clone(),
            }
        }

        /// Whether the element is `{ns}local`.
        pub fn is(&self, ns: &str, local: &str) -> bool {
            self.ns.as_deref() == Some(ns) && self.local == local
        }

        /// Attribute value by local name (unqualified attributes only).
        #[allow(dead_code)]
        pub fn attr(&self, local: &str) -> Option<&str> {
            self.attrs
                .iter()
                .find(|(ns, l, _)| ns.is_none() && l == local)
                .map(|(_, _, v)| v.as_str())
        }
    }

    fn resolved_ns(r: ResolveResult<'_>) -> Result<Option<String>, String> {
        match r {
            ResolveResult::Bound(ns) => Ok(Some(ns.as_ref().to_owned())),
            ResolveResult::Unbound => Ok(None),
            ResolveResult::Unknown(p) => Err(format!("undeclared namespace prefix {p:?}")),
        }
    }

    fn start_element(
        reader: &NsReader<&[u8]>,
        ns: Option<String>,
        e: &quick_xml::events::BytesStart<'_>,
    ) -> Result<Element, String> {
        let mut el = Element {
            ns,
            local: e.local_name().as_ref().to_owned(),
            ..Element::default()
        };
        for a in e.attributes() {
            let a = a.map_err(|e| format!("bad attribute: {e}"))?;
            let key = a.key;
            if key.as_ref() == "xmlns" || key.as_ref().starts_with("xmlns:") {
                continue;
            }
            let (ans, local) = reader.resolver().resolve_attribute(key);
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| format!("bad attribute value: {e}"))?;
            el.attrs.push((
                resolved_ns(ans)?,
                local.as_ref().to_owned(),
                value.into_owned(),
            ));
        }
        Ok(el)
    }

    fn general_ref(name: &str) -> Result<char, String> {
        Ok(match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "apos" => '\'',
            "quot" => '"',
            n => {
                let c = n.strip_prefix('#').and_then(|num| {
                    match num.strip_prefix('x') {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => num.parse::<u32>().ok(),
                    }
                    .and_then(char::from_u32)
                });
                match c {
                    Some(c) if c != '\0' => c,
                    _ => return Err(format!("unknown entity or character reference &{n};")),
                }
            }
        })
    }

    /// Parses a whole UTF-8 document into its root element. Rejects DTDs, undeclared prefixes,
    /// unknown entities, mismatched tags, text outside the root and nesting deeper than 64.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Element, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("document is not UTF-8: {e}"))?;
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let mut reader = NsReader::from_reader(text.as_bytes());
        let mut stack: Vec<Element> = Vec::new();
        let mut root: Option<Element> = None;
        loop {
            let (ns, ev) = match reader.read_resolved_event() {
                Ok((ns, ev)) => (resolved_ns(ns), ev),
                Err(e) => {
                    return Err(format!(
                        "malformed XML at byte {}: {e}",
                        reader.error_position()
                    ));
                }
            };
            match ev {
                Event::Start(e) => {
                    if root.is_some() {
                        return Err("content after the root element".into());
                    }
                    if stack.len() >= MAX_DEPTH {
                        return Err(format!("elements nested deeper than {MAX_DEPTH}"));
                    }
                    let el = start_element(&reader, ns?, &e)?;
                    stack.push(el);
                }
                Event::Empty(e) => {
                    if root.is_some() {
                        return Err("content after the root element".into());
                    }
                    let el = start_element(&reader, ns?, &e)?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => root = Some(el),
                    }
                }
                Event::End(_) => {
                    let Some(el) = stack.pop() else {
                        return Err("unexpected end tag".into());
                    };
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => root = Some(el),
                    }
                }
                Event::Text(t) => {
                    let s = t.xml10_content();
                    match stack.last_mut() {
                        Some(el) => el.text.push_str(&s),
                        None if s.trim().is_empty() => {}
                        None => return Err("text outside the root element".into()),
                    }
                }
                Event::CData(c) => match stack.last_mut() {
                    Some(el) => el.text.push_str(&c.xml10_content()),
                    None => return Err("CDATA outside the root element".into()),
                },
                Event::GeneralRef(r) => {
                    let c = general_ref(&r)?;
                    match stack.last_mut() {
                        Some(el) => el.text.push(c),
                        None => return Err("entity reference outside the root element".into()),
                    }
                }
                Event::DocType(_) => return Err("DOCTYPE declarations are not allowed".into()),
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => break,
            }
        }
        if !stack.is_empty() {
            return Err("document ended before the root element was closed".into());
        }
        root.ok_or_else(|| "document has no root element".to_string())
    }
}
