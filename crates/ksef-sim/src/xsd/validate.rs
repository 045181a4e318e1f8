//! Validates a parsed document against a compiled [`Schema`]; the first violation is reported
//! in Polish with the path of the element it is in.

use std::collections::HashSet;

use roxmltree::Node;

use super::value::normalize;
use super::{
    Content, Particle, Process, Schema, SimpleType, Term, TypeRef, Variety, Wildcard, XSI,
};

/// A child element with its interned name (`None`: a name no declaration has).
struct Kid<'a, 'i> {
    node: Node<'a, 'i>,
    sym: Option<u32>,
}

struct Run<'s> {
    schema: &'s Schema,
    ids: HashSet<String>,
}

/// Shortens a value for a message.
fn shown(v: &str) -> String {
    let mut s: String = v.chars().take(60).collect();
    if v.chars().count() > 60 {
        s.push('…');
    }
    s
}

/// The element's path below the document element: `Fa/FaWiersz[2]/P_8B`; the document element's
/// own name for itself.
fn path(n: Node<'_, '_>) -> String {
    let mut parts = Vec::new();
    let mut cur = Some(n);
    while let Some(e) = cur.filter(|e| e.is_element()) {
        let parent = e.parent().filter(|p| p.is_element());
        let name = e.tag_name();
        let label = match parent {
            Some(p) => {
                let same: Vec<_> = p
                    .children()
                    .filter(|c| c.is_element() && c.tag_name() == name)
                    .collect();
                if same.len() > 1 {
                    let i = same.iter().position(|c| *c == e).unwrap_or(0) + 1;
                    format!("{}[{i}]", name.name())
                } else {
                    name.name().to_owned()
                }
            }
            None => name.name().to_owned(),
        };
        if parent.is_none() && !parts.is_empty() {
            break;
        }
        parts.push(label);
        cur = parent;
    }
    parts.reverse();
    parts.join("/")
}

fn text_of<'a>(n: Node<'a, '_>) -> std::borrow::Cow<'a, str> {
    let mut texts = n
        .children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text());
    match (texts.next(), texts.next()) {
        (None, _) => "".into(),
        (Some(t), None) => t.into(),
        (Some(a), Some(b)) => {
            let mut s = format!("{a}{b}");
            for t in texts {
                s.push_str(t);
            }
            s.into()
        }
    }
}

fn has_text(n: Node<'_, '_>) -> bool {
    n.children().any(|c| {
        c.is_text()
            && c.text()
                .is_some_and(|t| !t.trim_matches([' ', '\t', '\n', '\r']).is_empty())
    })
}

impl Schema {
    /// Validates a document element against the schema's global declaration of its name.
    pub(crate) fn validate(&self, root: Node<'_, '_>) -> Result<(), String> {
        let name = root.tag_name();
        let key = (
            name.namespace().unwrap_or("").to_owned(),
            name.name().to_owned(),
        );
        let decl = self.globals.get(&key).ok_or_else(|| {
            format!(
                "element główny {} nie jest zadeklarowany w schemacie",
                name.name()
            )
        })?;
        let mut run = Run {
            schema: self,
            ids: HashSet::new(),
        };
        run.element(root, *decl)
    }

    fn sym_of(&self, n: Node<'_, '_>) -> Option<u32> {
        let name = n.tag_name();
        self.syms
            .get(name.namespace().unwrap_or(""))
            .and_then(|m| m.get(name.name()))
            .copied()
    }

    /// Checks a value against a simple type; `Err` says which facet or type it violates.
    fn check_simple(&self, s: usize, raw: &str) -> Result<String, String> {
        let st = &self.simple[s];
        let n = normalize(raw, st.ws);
        let v = shown(&n);
        let (len, key, value) = match &st.variety {
            Variety::Atomic(b) => {
                let value = b.parse(&n).map_err(|()| {
                    format!("wartość '{v}' nie jest poprawną wartością typu {}", st.name)
                })?;
                (b.length(&n, &value), value.key(&n), Some(value))
            }
            Variety::List(item) => {
                let mut count = 0;
                for i in n.split(' ').filter(|i| !i.is_empty()) {
                    self.check_simple(*item, i)?;
                    count += 1;
                }
                (count, n.to_string(), None)
            }
            Variety::Union(members) => {
                if !members.iter().any(|m| self.check_simple(*m, &n).is_ok()) {
                    return Err(format!(
                        "wartość '{v}' nie pasuje do żadnego z typów {}",
                        st.name
                    ));
                }
                (n.chars().count(), n.to_string(), None)
            }
        };
        self.facets(st, &n, len, &key, value.as_ref())?;
        Ok(key)
    }

    fn facets(
        &self,
        st: &SimpleType,
        n: &str,
        len: usize,
        key: &str,
        value: Option<&super::Value>,
    ) -> Result<(), String> {
        let f = &st.facets;
        let v = shown(n);
        let fail = |what: String| Err(format!("wartość '{v}' narusza ograniczenie {what}"));
        if let Some(l) = f.length
            && len != l
        {
            return fail(format!("length={l}"));
        }
        if let Some(l) = f.min_length
            && len < l
        {
            return fail(format!("minLength={l}"));
        }
        if let Some(l) = f.max_length
            && len > l
        {
            return fail(format!("maxLength={l}"));
        }
        if let Some(super::Value::Dec(d)) = value {
            if let Some(t) = f.total_digits
                && d.total_digits() > t
            {
                return fail(format!("totalDigits={t}"));
            }
            if let Some(t) = f.fraction_digits
                && d.fraction_digits() > t
            {
                return fail(format!("fractionDigits={t}"));
            }
        }
        use std::cmp::Ordering::{Greater, Less};
        type Bound<'a> = (
            &'a Vec<(String, super::Value)>,
            &'a str,
            &'a [std::cmp::Ordering],
        );
        let bounds: [Bound<'_>; 4] = [
            (&f.min_inclusive, "minInclusive", &[Less]),
            (&f.max_inclusive, "maxInclusive", &[Greater]),
            (
                &f.min_exclusive,
                "minExclusive",
                &[Less, std::cmp::Ordering::Equal],
            ),
            (
                &f.max_exclusive,
                "maxExclusive",
                &[Greater, std::cmp::Ordering::Equal],
            ),
        ];
        for (list, name, bad) in bounds {
            for (lex, b) in list {
                let order = value.and_then(|v| v.compare(b));
                if order.is_none_or(|o| bad.contains(&o)) {
                    return fail(format!("{name}={lex}"));
                }
            }
        }
        for step in &f.patterns {
            if !step.iter().any(|(_, re)| re.is_match(n)) {
                let srcs: Vec<&str> = step.iter().map(|(s, _)| s.as_str()).collect();
                return fail(format!("pattern='{}'", srcs.join("' | '")));
            }
        }
        for (values, keys) in &f.enums {
            if !keys.contains(key) {
                let mut list: Vec<&str> = values.iter().take(8).map(String::as_str).collect();
                if values.len() > 8 {
                    list.push("…");
                }
                return fail(format!("enumeration ({})", list.join(", ")));
            }
        }
        Ok(())
    }
}

impl Run<'_> {
    fn element(&mut self, n: Node<'_, '_>, e: usize) -> Result<(), String> {
        let s = self.schema;
        let decl = &s.elems[e];
        if decl.is_abstract {
            return Err(format!("{}: element abstrakcyjny", path(n)));
        }
        for a in n.attributes() {
            if a.namespace() == Some(XSI) && matches!(a.name(), "type" | "nil") {
                return Err(format!(
                    "{}: atrybut xsi:{} nie jest obsługiwany",
                    path(n),
                    a.name()
                ));
            }
        }
        match decl.ty {
            TypeRef::Any => self.lax(n),
            TypeRef::Simple(st) => {
                if let Some(a) = n.attributes().find(|a| a.namespace() != Some(XSI)) {
                    return Err(format!("{}: nieoczekiwany atrybut '{}'", path(n), a.name()));
                }
                self.simple_content(n, st, decl.fixed.as_deref())
            }
            TypeRef::Complex(c) => {
                let ct = &s.complex[c];
                if ct.is_abstract {
                    return Err(format!("{}: typ abstrakcyjny", path(n)));
                }
                self.attributes(n, c)?;
                match &ct.content {
                    Content::Empty => {
                        if let Some(k) = n.children().find(|k| k.is_element()) {
                            return Err(format!(
                                "{}: nieoczekiwany element '{}' (treść pusta)",
                                path(n),
                                k.tag_name().name()
                            ));
                        }
                        if has_text(n) {
                            return Err(format!("{}: niedozwolony tekst (treść pusta)", path(n)));
                        }
                        Ok(())
                    }
                    Content::Simple(st) => self.simple_content(n, *st, decl.fixed.as_deref()),
                    Content::Elements { particle, mixed } => {
                        if !mixed && has_text(n) {
                            return Err(format!(
                                "{}: niedozwolony tekst między elementami",
                                path(n)
                            ));
                        }
                        let kids: Vec<Kid<'_, '_>> = n
                            .children()
                            .filter(|k| k.is_element())
                            .map(|node| Kid {
                                node,
                                sym: s.sym_of(node),
                            })
                            .collect();
                        let mut pos = 0;
                        self.particle(particle, &kids, &mut pos, n)?;
                        if let Some(k) = kids.get(pos) {
                            return Err(format!(
                                "{}: nieoczekiwany element '{}'",
                                path(n),
                                k.node.tag_name().name()
                            ));
                        }
                        Ok(())
                    }
                }
            }
        }
    }

    fn simple_content(
        &mut self,
        n: Node<'_, '_>,
        st: usize,
        fixed: Option<&str>,
    ) -> Result<(), String> {
        if let Some(k) = n.children().find(|k| k.is_element()) {
            return Err(format!(
                "{}: nieoczekiwany element '{}' (treść prosta)",
                path(n),
                k.tag_name().name()
            ));
        }
        let text = text_of(n);
        let key = self
            .schema
            .check_simple(st, &text)
            .map_err(|e| format!("{}: {e}", path(n)))?;
        if let Some(f) = fixed
            && key != f
        {
            return Err(format!(
                "{}: wartość '{}' różni się od wartości stałej '{f}'",
                path(n),
                shown(&text)
            ));
        }
        Ok(())
    }

    fn attributes(&mut self, n: Node<'_, '_>, c: usize) -> Result<(), String> {
        let s = self.schema;
        let ct = &s.complex[c];
        for a in n.attributes() {
            let ns = a.namespace().unwrap_or("");
            if ns == XSI {
                continue;
            }
            if let Some(u) = ct.attrs.iter().find(|u| u.name == a.name() && u.ns == ns) {
                self.attribute_value(n, a.name(), a.value(), u)?;
            } else if let Some(w) = ct.any_attr.as_ref().filter(|w| w.allows(ns)) {
                let global = s.global_attrs.get(&(ns.to_owned(), a.name().to_owned()));
                match (w.process, global) {
                    (Process::Skip, _) => {}
                    (_, Some(u)) => self.attribute_value(n, a.name(), a.value(), u)?,
                    (Process::Lax, None) => {}
                    (Process::Strict, None) => {
                        return Err(format!(
                            "{}: atrybut '{}' nie jest zadeklarowany",
                            path(n),
                            a.name()
                        ));
                    }
                }
            } else {
                return Err(format!("{}: nieoczekiwany atrybut '{}'", path(n), a.name()));
            }
        }
        for u in ct.attrs.iter().filter(|u| u.required) {
            let present = n
                .attributes()
                .any(|a| a.name() == u.name && a.namespace().unwrap_or("") == u.ns);
            if !present {
                return Err(format!(
                    "{}: brak wymaganego atrybutu '{}'",
                    path(n),
                    u.name
                ));
            }
        }
        Ok(())
    }

    fn attribute_value(
        &mut self,
        n: Node<'_, '_>,
        name: &str,
        value: &str,
        u: &super::AttrUse,
    ) -> Result<(), String> {
        let key = self
            .schema
            .check_simple(u.ty, value)
            .map_err(|e| format!("{}/@{name}: {e}", path(n)))?;
        if let Some(f) = &u.fixed
            && key != *f
        {
            return Err(format!(
                "{}/@{name}: wartość '{}' różni się od wartości stałej '{f}'",
                path(n),
                shown(value)
            ));
        }
        if self.schema.simple[u.ty].is_id && !self.ids.insert(key.clone()) {
            return Err(format!(
                "{}/@{name}: powtórzony identyfikator '{key}'",
                path(n)
            ));
        }
        Ok(())
    }

    /// Content of `xsd:anyType` or a lax wildcard: declared elements and attributes are
    /// validated, others only walked.
    fn lax(&mut self, n: Node<'_, '_>) -> Result<(), String> {
        let s = self.schema;
        for a in n.attributes() {
            let key = (a.namespace().unwrap_or("").to_owned(), a.name().to_owned());
            if let Some(u) = s.global_attrs.get(&key) {
                self.attribute_value(n, a.name(), a.value(), u)?;
            }
        }
        for k in n.children().filter(|k| k.is_element()) {
            self.wildcard_element(k, Process::Lax)?;
        }
        Ok(())
    }

    fn wildcard_element(&mut self, n: Node<'_, '_>, process: Process) -> Result<(), String> {
        if process == Process::Skip {
            return Ok(());
        }
        let name = n.tag_name();
        let key = (
            name.namespace().unwrap_or("").to_owned(),
            name.name().to_owned(),
        );
        match (self.schema.globals.get(&key), process) {
            (Some(&e), _) => self.element(n, e),
            (None, Process::Lax) => self.lax(n),
            (None, _) => Err(format!(
                "{}: element '{}' nie jest zadeklarowany",
                path(n),
                name.name()
            )),
        }
    }

    fn starts(p: &Particle, k: &Kid<'_, '_>) -> bool {
        k.sym.is_some_and(|s| p.first.binary_search(&s).is_ok())
            || p.first_any
                .iter()
                .any(|w| w.allows(k.node.tag_name().namespace().unwrap_or("")))
    }

    fn particle(
        &mut self,
        p: &Particle,
        kids: &[Kid<'_, '_>],
        pos: &mut usize,
        parent: Node<'_, '_>,
    ) -> Result<(), String> {
        let mut count = 0u32;
        while count < p.max {
            let Some(k) = kids.get(*pos) else { break };
            if !Self::starts(p, k) {
                break;
            }
            let before = *pos;
            self.term(&p.term, kids, pos, parent)?;
            if *pos == before {
                break;
            }
            count += 1;
        }
        if count < p.min && !p.term_nullable {
            let expected = self.expected(p);
            return Err(match kids.get(*pos) {
                Some(k) => format!(
                    "{}: nieoczekiwany element '{}'; oczekiwano: {expected}",
                    path(parent),
                    k.node.tag_name().name()
                ),
                None => format!("{}: brak wymaganego elementu {expected}", path(parent)),
            });
        }
        Ok(())
    }

    fn expected(&self, p: &Particle) -> String {
        let mut names: Vec<&str> = p
            .first
            .iter()
            .filter_map(|s| self.schema.sym_names.get(*s as usize))
            .map(String::as_str)
            .collect();
        if !p.first_any.is_empty() {
            names.push("(dowolny element)");
        }
        names.join(" lub ")
    }

    fn term(
        &mut self,
        t: &Term,
        kids: &[Kid<'_, '_>],
        pos: &mut usize,
        parent: Node<'_, '_>,
    ) -> Result<(), String> {
        match t {
            Term::Element(e) => {
                if let Some(k) = kids.get(*pos) {
                    *pos += 1;
                    self.element(k.node, *e)?;
                }
                Ok(())
            }
            Term::Any(Wildcard { process, .. }) => {
                if let Some(k) = kids.get(*pos) {
                    *pos += 1;
                    self.wildcard_element(k.node, *process)?;
                }
                Ok(())
            }
            Term::Seq(ps) => {
                for sp in ps {
                    self.particle(sp, kids, pos, parent)?;
                }
                Ok(())
            }
            Term::Choice(ps) => {
                if let Some(k) = kids.get(*pos)
                    && let Some(sp) = ps.iter().find(|sp| Self::starts(sp, k))
                {
                    self.particle(sp, kids, pos, parent)?;
                }
                Ok(())
            }
        }
    }
}
