//! XML canonicalization: exclusive XML c14n 1.0 (used for signing) and inclusive C14N 1.0 / 1.1
//! (needed to verify signatures made by other clients), with and without comments, over a whole
//! document or a document subset (an element with its ancestors' namespace context, minus excluded
//! subtrees such as an enveloped `ds:Signature`).
//!
//! Why our own code rather than a crate: a digest over canonical XML must be byte-exact, and the
//! Rust canonicalizers we looked at either pin an incompatible RustCrypto generation or do not
//! expose document subsets with the enveloped-signature exclusion. The rules are small and
//! precisely specified (W3C `xml-c14n`, `xml-exc-c14n`, `xml-c14n11`), so we implement them
//! directly on [`roxmltree`] and check the output against `xmllint` in the tests.
//!
//! Parsing goes through [`parse`], which refuses DTDs (and therefore entity declarations and
//! external entities) and never touches the network.
//!
//! ```
//! use ksef_crypto::c14n::{self, Method};
//! let doc = c14n::parse("<a xmlns:x='urn:x' b='1'   a='2'><x:c/></a>")?;
//! let out = c14n::canonicalize(doc.root(), &c14n::Options::new(Method::EXCLUSIVE));
//! assert_eq!(out, br#"<a a="2" b="1"><x:c xmlns:x="urn:x"></x:c></a>"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;

use roxmltree::{Document, Node, NodeId, NodeType};

/// The XML namespace URI (the `xml:` prefix), never declared in canonical output.
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Which canonicalization algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// Canonical XML 1.0 (inclusive), `http://www.w3.org/TR/2001/REC-xml-c14n-20010315`.
    Inclusive10,
    /// Canonical XML 1.1 (inclusive), `http://www.w3.org/2006/12/xml-c14n11`.
    Inclusive11,
    /// Exclusive XML canonicalization 1.0, `http://www.w3.org/2001/10/xml-exc-c14n#`.
    Exclusive,
}

/// A canonicalization method: an algorithm and whether comments are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Method {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Keep comments (the `#WithComments` variants).
    pub with_comments: bool,
}

impl Method {
    /// Inclusive C14N 1.0 without comments.
    pub const INCLUSIVE_10: Method = Method::new(Algorithm::Inclusive10, false);
    /// Inclusive C14N 1.0 with comments.
    pub const INCLUSIVE_10_WITH_COMMENTS: Method = Method::new(Algorithm::Inclusive10, true);
    /// Inclusive C14N 1.1 without comments.
    pub const INCLUSIVE_11: Method = Method::new(Algorithm::Inclusive11, false);
    /// Inclusive C14N 1.1 with comments.
    pub const INCLUSIVE_11_WITH_COMMENTS: Method = Method::new(Algorithm::Inclusive11, true);
    /// Exclusive c14n without comments (what we sign with).
    pub const EXCLUSIVE: Method = Method::new(Algorithm::Exclusive, false);
    /// Exclusive c14n with comments.
    pub const EXCLUSIVE_WITH_COMMENTS: Method = Method::new(Algorithm::Exclusive, true);

    /// A method from its parts.
    pub const fn new(algorithm: Algorithm, with_comments: bool) -> Self {
        Method {
            algorithm,
            with_comments,
        }
    }

    /// The method identified by an XMLDSig algorithm URI, if it is a canonicalization method.
    pub fn from_uri(uri: &str) -> Option<Self> {
        Some(match uri {
            "http://www.w3.org/TR/2001/REC-xml-c14n-20010315" => Self::INCLUSIVE_10,
            "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments" => {
                Self::INCLUSIVE_10_WITH_COMMENTS
            }
            "http://www.w3.org/2006/12/xml-c14n11" => Self::INCLUSIVE_11,
            "http://www.w3.org/2006/12/xml-c14n11#WithComments" => Self::INCLUSIVE_11_WITH_COMMENTS,
            "http://www.w3.org/2001/10/xml-exc-c14n#" => Self::EXCLUSIVE,
            "http://www.w3.org/2001/10/xml-exc-c14n#WithComments" => Self::EXCLUSIVE_WITH_COMMENTS,
            _ => return None,
        })
    }

    /// The XMLDSig algorithm URI of this method.
    pub fn uri(&self) -> &'static str {
        match (self.algorithm, self.with_comments) {
            (Algorithm::Inclusive10, false) => "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
            (Algorithm::Inclusive10, true) => {
                "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"
            }
            (Algorithm::Inclusive11, false) => "http://www.w3.org/2006/12/xml-c14n11",
            (Algorithm::Inclusive11, true) => "http://www.w3.org/2006/12/xml-c14n11#WithComments",
            (Algorithm::Exclusive, false) => "http://www.w3.org/2001/10/xml-exc-c14n#",
            (Algorithm::Exclusive, true) => "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
        }
    }
}

/// What to canonicalize and how.
#[derive(Clone, Debug)]
pub struct Options<'a> {
    /// The method.
    pub method: Method,
    /// Exclusive c14n only: the `InclusiveNamespaces PrefixList` (prefixes treated the inclusive
    /// way; `#default` stands for the default namespace).
    pub inclusive_prefixes: &'a [&'a str],
    /// Subtrees left out of the output (for the enveloped-signature transform: the `ds:Signature`
    /// element).
    pub exclude: &'a [NodeId],
}

impl<'a> Options<'a> {
    /// Options for `method` with no inclusive prefixes and nothing excluded.
    pub fn new(method: Method) -> Self {
        Options {
            method,
            inclusive_prefixes: &[],
            exclude: &[],
        }
    }

    /// Leaves the given subtrees out (document subset).
    pub fn excluding(mut self, exclude: &'a [NodeId]) -> Self {
        self.exclude = exclude;
        self
    }

    /// Sets the exclusive c14n `InclusiveNamespaces PrefixList`.
    pub fn with_inclusive_prefixes(mut self, prefixes: &'a [&'a str]) -> Self {
        self.inclusive_prefixes = prefixes;
        self
    }
}

/// The document could not be parsed (or uses a DTD, which we refuse).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed or refused XML: {reason}")]
pub struct ParseError {
    reason: String,
}

impl ParseError {
    /// Why the document was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Largest number of nodes we accept in one document (a guard against memory exhaustion).
const NODES_LIMIT: u32 = 4_000_000;

/// Parses XML safely: DTDs (and with them entity declarations, external entities and entity
/// expansion attacks) are refused; nothing is fetched from the network; line endings and
/// attribute values are normalized as XML 1.0 requires.
pub fn parse(xml: &str) -> Result<Document<'_>, ParseError> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: NODES_LIMIT,
        ..roxmltree::ParsingOptions::default()
    };
    Document::parse_with_options(xml, opts).map_err(|e| ParseError {
        reason: match e {
            roxmltree::Error::DtdDetected => {
                "the document has a DTD (<!DOCTYPE>); DTDs and entities are not allowed".to_owned()
            }
            other => other.to_string(),
        },
    })
}

/// Parses `xml` (see [`parse`]) and canonicalizes the whole document with `method`.
pub fn canonicalize_str(xml: &str, method: Method) -> Result<Vec<u8>, ParseError> {
    let doc = parse(xml)?;
    Ok(canonicalize(doc.root(), &Options::new(method)))
}

/// Canonicalizes `node`: the document node gives the whole document (with the PIs, and comments if
/// requested, around the root element); an element gives the document subset of that element and
/// its descendants, rendered with the namespace context of its ancestors.
pub fn canonicalize(node: Node<'_, '_>, opts: &Options<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(node.range().len() + 256);
    canonicalize_into(&mut out, node, opts);
    out
}

/// Like [`canonicalize`], appending to `out`.
pub fn canonicalize_into(out: &mut Vec<u8>, node: Node<'_, '_>, opts: &Options<'_>) {
    let mut c = Canonicalizer {
        out,
        opts,
        rendered: Vec::new(),
    };
    match node.node_type() {
        NodeType::Root => c.document(node),
        NodeType::Element => c.apex_element(node),
        NodeType::Text => {
            if let Some(t) = node.text() {
                escape_text(c.out, t);
            }
        }
        NodeType::Comment => {
            if opts.method.with_comments {
                c.comment(node);
            }
        }
        NodeType::PI => c.pi(node),
    }
}

struct Canonicalizer<'o, 'a> {
    out: &'o mut Vec<u8>,
    opts: &'o Options<'o>,
    /// Namespace declarations rendered by output ancestors, innermost last: (prefix, uri);
    /// the default namespace has prefix "".
    rendered: Vec<(&'a str, &'a str)>,
}

impl<'a> Canonicalizer<'_, 'a> {
    fn excluded(&self, node: Node<'_, '_>) -> bool {
        self.opts.exclude.contains(&node.id())
    }

    fn document<'d: 'a>(&mut self, root: Node<'a, 'd>) {
        let mut seen_element = false;
        for child in root.children() {
            match child.node_type() {
                NodeType::Element => {
                    if !self.excluded(child) {
                        self.element(child, None);
                    }
                    seen_element = true;
                }
                NodeType::PI | NodeType::Comment => {
                    if child.is_comment() && !self.opts.method.with_comments {
                        continue;
                    }
                    if self.excluded(child) {
                        continue;
                    }
                    if seen_element {
                        self.out.push(b'\n');
                    }
                    if child.is_comment() {
                        self.comment(child);
                    } else {
                        self.pi(child);
                    }
                    if !seen_element {
                        self.out.push(b'\n');
                    }
                }
                // Whitespace outside the root element is not part of the canonical form.
                NodeType::Text | NodeType::Root => {}
            }
        }
    }

    fn apex_element<'d: 'a>(&mut self, el: Node<'a, 'd>) {
        if self.excluded(el) {
            return;
        }
        let inherited = match self.opts.method.algorithm {
            Algorithm::Exclusive => Vec::new(),
            Algorithm::Inclusive10 => inherited_xml_10(el),
            Algorithm::Inclusive11 => inherited_xml_11(el),
        };
        self.element(el, Some(&inherited));
    }

    /// Renders `el` and its subtree. Iterative (an explicit stack, not recursion), so deeply
    /// nested input cannot overflow the call stack.
    fn element<'d: 'a>(&mut self, el: Node<'a, 'd>, inherited_xml: Option<&[XmlAttr<'a>]>) {
        enum Frame<'a, 'd> {
            Visit(Node<'a, 'd>),
            Close(&'a str, usize),
        }
        let (qname, mark) = self.start_tag(el, inherited_xml);
        let mut stack = vec![Frame::Close(qname, mark)];
        stack.extend(
            el.children()
                .rev()
                .filter(|c| !self.excluded(*c))
                .map(Frame::Visit),
        );
        while let Some(frame) = stack.pop() {
            match frame {
                Frame::Close(qname, mark) => {
                    self.out.extend_from_slice(b"</");
                    self.out.extend_from_slice(qname.as_bytes());
                    self.out.push(b'>');
                    self.rendered.truncate(mark);
                }
                Frame::Visit(child) => match child.node_type() {
                    NodeType::Element => {
                        let (qname, mark) = self.start_tag(child, None);
                        stack.push(Frame::Close(qname, mark));
                        stack.extend(
                            child
                                .children()
                                .rev()
                                .filter(|c| !self.excluded(*c))
                                .map(Frame::Visit),
                        );
                    }
                    NodeType::Text => {
                        if let Some(t) = child.text() {
                            escape_text(self.out, t);
                        }
                    }
                    NodeType::Comment => {
                        if self.opts.method.with_comments {
                            self.comment(child);
                        }
                    }
                    NodeType::PI => self.pi(child),
                    NodeType::Root => {}
                },
            }
        }
    }

    /// Renders the start tag of `el` (namespace declarations, attributes) and records the
    /// declarations it rendered; returns its qualified name and the scope mark to restore.
    fn start_tag<'d: 'a>(
        &mut self,
        el: Node<'a, 'd>,
        inherited_xml: Option<&[XmlAttr<'a>]>,
    ) -> (&'a str, usize) {
        let mark = self.rendered.len();
        let qname = element_qname(el);
        let prefix = qname.split_once(':').map(|(p, _)| p).unwrap_or("");

        // Namespace declarations to render.
        let mut decls: Vec<(&'a str, &'a str)> = Vec::new();
        match self.opts.method.algorithm {
            Algorithm::Inclusive10 | Algorithm::Inclusive11 => {
                let mut default_uri = "";
                for ns in el.namespaces() {
                    match ns.name() {
                        None => default_uri = ns.uri(),
                        Some("xml") => {}
                        Some(p) => {
                            if self.lookup(p) != Some(ns.uri()) {
                                decls.push((p, ns.uri()));
                            }
                        }
                    }
                }
                if self.lookup("").unwrap_or("") != default_uri {
                    decls.push(("", default_uri));
                }
            }
            Algorithm::Exclusive => {
                let mut used: Vec<&str> = Vec::with_capacity(4);
                used.push(prefix);
                for a in el.attributes() {
                    if a.namespace().is_some() {
                        let p = attr_prefix(el, &a);
                        if !p.is_empty() && !used.contains(&p) {
                            used.push(p);
                        }
                    }
                }
                for p in self.opts.inclusive_prefixes {
                    let p = if *p == "#default" { "" } else { *p };
                    if !used.contains(&p) {
                        // Inclusive prefixes are rendered only when in scope.
                        let in_scope = if p.is_empty() {
                            el.default_namespace().is_some_and(|u| !u.is_empty())
                        } else {
                            el.lookup_namespace_uri(Some(p)).is_some()
                        };
                        if in_scope {
                            used.push(p);
                        }
                    }
                }
                for p in used {
                    if p == "xml" {
                        continue;
                    }
                    let (p, uri): (&'a str, &'a str) = if p.is_empty() {
                        ("", el.default_namespace().unwrap_or(""))
                    } else {
                        match el.namespaces().find(|ns| ns.name() == Some(p)) {
                            Some(ns) => (ns.name().unwrap_or(""), ns.uri()),
                            None => continue,
                        }
                    };
                    if self.lookup(p).unwrap_or("") != uri {
                        decls.push((p, uri));
                    }
                }
            }
        }
        decls.sort_unstable_by(|a, b| a.0.cmp(b.0));

        self.out.push(b'<');
        self.out.extend_from_slice(qname.as_bytes());
        for (p, uri) in &decls {
            if p.is_empty() {
                self.out.extend_from_slice(b" xmlns=\"");
            } else {
                self.out.extend_from_slice(b" xmlns:");
                self.out.extend_from_slice(p.as_bytes());
                self.out.extend_from_slice(b"=\"");
            }
            escape_attr(self.out, uri);
            self.out.push(b'"');
        }
        self.rendered.extend(decls.iter().copied());

        // Attributes, sorted by (namespace URI, local name); no-namespace attributes first.
        let mut attrs: Vec<(&str, &str, &str, &str)> = el
            .attributes()
            .map(|a| {
                (
                    a.namespace().unwrap_or(""),
                    a.name(),
                    attr_qname(el, &a),
                    a.value(),
                )
            })
            .collect();
        if let Some(inh) = inherited_xml {
            // The apex's own xml:* attributes that the inheritance rules replace (a fixed-up
            // xml:base) or drop (an empty fix-up result) give way to the computed ones.
            attrs
                .retain(|(ns, local, _, _)| *ns != XML_NS || !inh.iter().any(|x| x.name == *local));
            for x in inh {
                if let Some(value) = x.value.as_deref() {
                    attrs.push((XML_NS, x.name, "", value));
                }
            }
        }
        attrs.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        for (ns, local, qn, value) in attrs {
            self.out.push(b' ');
            if qn.is_empty() && ns == XML_NS {
                self.out.extend_from_slice(b"xml:");
                self.out.extend_from_slice(local.as_bytes());
            } else {
                self.out.extend_from_slice(qn.as_bytes());
            }
            self.out.extend_from_slice(b"=\"");
            escape_attr(self.out, value);
            self.out.push(b'"');
        }
        self.out.push(b'>');
        (qname, mark)
    }

    fn lookup(&self, prefix: &str) -> Option<&'a str> {
        self.rendered
            .iter()
            .rev()
            .find(|(p, _)| *p == prefix)
            .map(|(_, u)| *u)
    }

    fn comment(&mut self, node: Node<'_, '_>) {
        self.out.extend_from_slice(b"<!--");
        self.out
            .extend_from_slice(node.text().unwrap_or("").as_bytes());
        self.out.extend_from_slice(b"-->");
    }

    fn pi(&mut self, node: Node<'_, '_>) {
        if let Some(pi) = node.pi() {
            self.out.extend_from_slice(b"<?");
            self.out.extend_from_slice(pi.target.as_bytes());
            if let Some(v) = pi.value
                && !v.is_empty()
            {
                self.out.push(b' ');
                self.out.extend_from_slice(v.as_bytes());
            }
            self.out.extend_from_slice(b"?>");
        }
    }
}

/// An `xml:*` attribute computed for the apex of a document subset (inherited from the omitted
/// ancestors, or a fixed-up `xml:base`). `value: None` removes the apex's own attribute.
struct XmlAttr<'a> {
    name: &'a str,
    value: Option<Cow<'a, str>>,
}

/// C14N 1.0 §2.4: the apex inherits the nearest occurrence of every `xml:*` attribute of its
/// (omitted) ancestors that it does not carry itself.
fn inherited_xml_10<'a, 'd: 'a>(el: Node<'a, 'd>) -> Vec<XmlAttr<'a>> {
    let mut v: Vec<XmlAttr<'a>> = Vec::new();
    for anc in el.ancestors().skip(1).filter(|n| n.is_element()) {
        for a in anc.attributes() {
            let name = a.name();
            if a.namespace() == Some(XML_NS)
                && el.attribute((XML_NS, name)).is_none()
                && !v.iter().any(|x| x.name == name)
            {
                v.push(XmlAttr {
                    name,
                    value: Some(Cow::Borrowed(a.value())),
                });
            }
        }
    }
    v
}

/// C14N 1.1 §2.4: the simple inheritable attributes `xml:lang` and `xml:space` are inherited
/// like in 1.0; `xml:id` and other `xml:*` attributes are not; `xml:base` gets the fix-up: the
/// apex's value (or, when it has none, the nearest ancestor's) resolved against the `xml:base`
/// values of the omitted ancestors above it, innermost first, with [`join_uri_references`].
fn inherited_xml_11<'a, 'd: 'a>(el: Node<'a, 'd>) -> Vec<XmlAttr<'a>> {
    let mut v: Vec<XmlAttr<'a>> = Vec::new();
    for name in ["lang", "space"] {
        if el.attribute((XML_NS, name)).is_some() {
            continue;
        }
        if let Some(value) = el
            .ancestors()
            .skip(1)
            .find_map(|anc| anc.attribute((XML_NS, name)))
        {
            v.push(XmlAttr {
                name,
                value: Some(Cow::Borrowed(value)),
            });
        }
    }
    let own = el.attribute((XML_NS, "base"));
    let mut ancestors = el.ancestors().skip(1).filter(|n| n.is_element());
    let mut value: Cow<'a, str> = match own {
        Some(b) => Cow::Borrowed(b),
        None => match ancestors.find_map(|anc| anc.attribute((XML_NS, "base"))) {
            Some(b) => Cow::Borrowed(b),
            None => return v,
        },
    };
    let mut joined = false;
    for anc in ancestors {
        if let Some(base) = anc.attribute((XML_NS, "base")) {
            value = Cow::Owned(join_uri_references(base, &value));
            joined = true;
        }
    }
    if own.is_none() || joined {
        v.push(XmlAttr {
            name: "base",
            value: (!value.is_empty()).then_some(value),
        });
    }
    v
}

/// The `join-URI-References` function of C14N 1.1 §2.4: RFC 3986 §5.2.2 reference resolution,
/// except that the base may itself be relative (then leading `..` segments that cannot be
/// removed are kept), and a base whose last path segment is `.` or `..` is read as a directory.
///
/// Our own code rather than a URI crate: the URI crates resolve only against absolute bases, and
/// the result goes into a digest, so it must be exactly this algorithm. (libxml2, and so xmlsec1,
/// departs from RFC 3986 in corner cases we follow the RFC on: `/./g` and `/../g` keep their dot
/// segments there, and a base ending in `x.y` is treated as a directory.)
pub(crate) fn join_uri_references(base: &str, reference: &str) -> String {
    let b = UriParts::parse(base);
    let r = UriParts::parse(reference);
    let mut t = UriParts::default();
    let path: String;
    if r.scheme.is_some() {
        t.scheme = r.scheme;
        t.authority = r.authority;
        path = remove_dot_segments(r.path);
        t.query = r.query;
    } else {
        if r.authority.is_some() {
            t.authority = r.authority;
            path = remove_dot_segments(r.path);
            t.query = r.query;
        } else {
            if r.path.is_empty() {
                path = b.path.to_owned();
                t.query = r.query.or(b.query);
            } else {
                path = if r.path.starts_with('/') {
                    remove_dot_segments(r.path)
                } else {
                    remove_dot_segments(&merge_paths(&b, r.path))
                };
                t.query = r.query;
            }
            t.authority = b.authority;
        }
        t.scheme = b.scheme;
    }
    t.fragment = r.fragment;
    let mut out = String::with_capacity(base.len() + reference.len());
    if let Some(s) = t.scheme {
        out.push_str(s);
        out.push(':');
    }
    if let Some(a) = t.authority {
        out.push_str("//");
        out.push_str(a);
    }
    out.push_str(&path);
    if let Some(q) = t.query {
        out.push('?');
        out.push_str(q);
    }
    if let Some(f) = t.fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// The five components of a URI reference (RFC 3986 Appendix B).
#[derive(Default)]
struct UriParts<'s> {
    scheme: Option<&'s str>,
    authority: Option<&'s str>,
    path: &'s str,
    query: Option<&'s str>,
    fragment: Option<&'s str>,
}

impl<'s> UriParts<'s> {
    fn parse(mut s: &'s str) -> Self {
        let mut p = UriParts::default();
        if let Some(i) = s.find('#') {
            p.fragment = Some(&s[i + 1..]);
            s = &s[..i];
        }
        if let Some(i) = s.find('?') {
            p.query = Some(&s[i + 1..]);
            s = &s[..i];
        }
        if let Some(i) = s.find(':')
            && i > 0
            && !s[..i].contains('/')
        {
            p.scheme = Some(&s[..i]);
            s = &s[i + 1..];
        }
        if let Some(rest) = s.strip_prefix("//") {
            let end = rest.find('/').unwrap_or(rest.len());
            p.authority = Some(&rest[..end]);
            s = &rest[end..];
        }
        p.path = s;
        p
    }
}

/// RFC 3986 §5.2.3, with a base path ending in a `.` or `..` segment read as a directory.
fn merge_paths(base: &UriParts<'_>, reference: &str) -> String {
    if base.authority.is_some() && base.path.is_empty() {
        return format!("/{reference}");
    }
    let last = base.path.rsplit('/').next().unwrap_or("");
    let dir = if last == "." || last == ".." {
        base.path
    } else {
        &base.path[..base.path.len() - last.len()]
    };
    let sep = if dir.is_empty() || dir.ends_with('/') {
        ""
    } else {
        "/"
    };
    format!("{dir}{sep}{reference}")
}

/// RFC 3986 §5.2.4 on segments; in a relative path, `..` segments that have nothing left to
/// remove are kept (C14N 1.1's modification), in an absolute one they stop at the root.
fn remove_dot_segments(path: &str) -> String {
    let absolute = path.starts_with('/');
    let body = if absolute { &path[1..] } else { path };
    let segments: Vec<&str> = body.split('/').collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    let n = segments.len();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == n;
        match *seg {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                match out.last() {
                    Some(&top) if top != ".." => {
                        out.pop();
                    }
                    _ if !absolute => out.push(".."),
                    _ => {}
                }
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

/// The qualified name of an element as written in the source (roxmltree keeps the namespace URI
/// but not the prefix, so we read it back from the element's start tag).
pub(crate) fn element_qname<'d>(el: Node<'_, 'd>) -> &'d str {
    let src = el.document().input_text();
    let start = el.range().start + 1;
    let rest = src.get(start..).unwrap_or("");
    let end = rest
        .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
        .unwrap_or(rest.len());
    &rest[..end]
}

fn attr_qname<'d>(el: Node<'_, 'd>, a: &roxmltree::Attribute<'_, 'd>) -> &'d str {
    el.document()
        .input_text()
        .get(a.range_qname())
        .unwrap_or_else(|| a.name())
}

fn attr_prefix<'d>(el: Node<'_, 'd>, a: &roxmltree::Attribute<'_, 'd>) -> &'d str {
    attr_qname(el, a)
        .split_once(':')
        .map(|(p, _)| p)
        .unwrap_or("")
}

/// Escapes character data the canonical way: `&` `<` `>` and carriage return.
pub(crate) fn escape_text(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut last = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let rep: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'\r' => b"&#xD;",
            _ => continue,
        };
        out.extend_from_slice(&bytes[last..i]);
        out.extend_from_slice(rep);
        last = i + 1;
    }
    out.extend_from_slice(&bytes[last..]);
}

/// Escapes an attribute value the canonical way: `&` `<` `"`, tab, newline and carriage return.
pub(crate) fn escape_attr(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut last = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let rep: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'"' => b"&quot;",
            b'\t' => b"&#x9;",
            b'\n' => b"&#xA;",
            b'\r' => b"&#xD;",
            _ => continue,
        };
        out.extend_from_slice(&bytes[last..i]);
        out.extend_from_slice(rep);
        last = i + 1;
    }
    out.extend_from_slice(&bytes[last..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(xml: &str, m: Method) -> String {
        String::from_utf8(canonicalize_str(xml, m).unwrap()).unwrap()
    }

    #[test]
    fn uri_round_trip() {
        for m in [
            Method::INCLUSIVE_10,
            Method::INCLUSIVE_10_WITH_COMMENTS,
            Method::INCLUSIVE_11,
            Method::INCLUSIVE_11_WITH_COMMENTS,
            Method::EXCLUSIVE,
            Method::EXCLUSIVE_WITH_COMMENTS,
        ] {
            assert_eq!(Method::from_uri(m.uri()), Some(m));
        }
        assert_eq!(Method::from_uri("urn:nope"), None);
    }

    #[test]
    fn refuses_dtd() {
        let e = parse("<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>").unwrap_err();
        assert!(e.reason().contains("DTD"), "{e}");
    }

    #[test]
    fn prefix_from_source() {
        let d = parse("<p:a xmlns:p='u'><b/></p:a>").unwrap();
        let r = d.root_element();
        assert_eq!(element_qname(r), "p:a");
    }

    #[test]
    fn join_uri_references_rfc3986_examples() {
        // RFC 3986 §5.4.1 (normal) and §5.4.2 (abnormal), base "http://a/b/c/d;p?q".
        let base = "http://a/b/c/d;p?q";
        for (r, want) in [
            ("g:h", "g:h"),
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q#s"),
            ("g#s", "http://a/b/c/g#s"),
            ("g?y#s", "http://a/b/c/g?y#s"),
            (";x", "http://a/b/c/;x"),
            ("g;x", "http://a/b/c/g;x"),
            ("g;x?y#s", "http://a/b/c/g;x?y#s"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("../../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            (".g", "http://a/b/c/.g"),
            ("g..", "http://a/b/c/g.."),
            ("..g", "http://a/b/c/..g"),
            ("./../g", "http://a/b/g"),
            ("./g/.", "http://a/b/c/g/"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
            ("g;x=1/../y", "http://a/b/c/y"),
            ("g?y/./x", "http://a/b/c/g?y/./x"),
            ("g?y/../x", "http://a/b/c/g?y/../x"),
            ("g#s/./x", "http://a/b/c/g#s/./x"),
            ("g#s/../x", "http://a/b/c/g#s/../x"),
            ("http:g", "http:g"),
        ] {
            assert_eq!(join_uri_references(base, r), want, "reference {r:?}");
        }
    }

    #[test]
    fn join_uri_references_relative_bases() {
        // C14N 1.1 joins xml:base values that may all be relative: `..` segments that have
        // nothing left to remove are kept; a base ending in `.` or `..` is a directory.
        for (b, r, want) in [
            ("../bar/", "foo", "../bar/foo"),
            ("bar/", "foo", "bar/foo"),
            ("a/b", "c", "a/c"),
            ("../../x/", "y", "../../x/y"),
            ("..", "x", "../x"),
            ("a/..", "x", "x"),
            ("a/b/..", "x", "a/x"),
            ("a/b/", "../../../x", "../x"),
            ("/abs/path", "x", "/abs/x"),
            ("/abs/path/", "../../../x", "/x"),
            ("", "x", "x"),
            ("x", "", "x"),
            ("a?q", "b", "b"),
            ("http://a/b", "", "http://a/b"),
            ("http://a", "b", "http://a/b"),
        ] {
            assert_eq!(
                join_uri_references(b, r),
                want,
                "base {b:?}, reference {r:?}"
            );
        }
    }

    #[test]
    fn default_undeclaration_inclusive() {
        let x = "<a xmlns='u'><b xmlns=''><c/></b></a>";
        assert_eq!(
            c(x, Method::INCLUSIVE_10),
            r#"<a xmlns="u"><b xmlns=""><c></c></b></a>"#
        );
        assert_eq!(
            c(x, Method::EXCLUSIVE),
            r#"<a xmlns="u"><b xmlns=""><c></c></b></a>"#
        );
    }
}
