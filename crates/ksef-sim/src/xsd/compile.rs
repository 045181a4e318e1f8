//! Compiles XSD documents into a [`Schema`].

use std::collections::{HashMap, HashSet};

use roxmltree::{Node, NodeId};

use super::value::{Builtin, normalize};
use super::{
    AttrUse, ComplexType, Content, ElementDecl, Facets, NsSet, Particle, Process, Schema,
    SimpleType, Term, TypeRef, Variety, Wildcard, XS, pattern,
};

/// Compiles the schema whose main document is `files[0]`; imports and includes are resolved
/// among `files` by the last segment of their `schemaLocation` (so an http URL or a
/// `./bazowe/` path maps to the embedded file of that name).
pub(super) fn compile(files: &[(&'static str, &'static str)]) -> Result<Schema, String> {
    let mut docs: Vec<Doc> = Vec::new();
    let mut index = HashMap::new();
    let first = files.first().ok_or("brak plików schematu")?;
    let mut queue = vec![first.0];
    let mut seen = HashSet::new();
    while let Some(name) = queue.pop() {
        if !seen.insert(name) {
            continue;
        }
        let text = files
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .ok_or(format!("brak pliku {name}"))?;
        let doc = roxmltree::Document::parse(text).map_err(|e| format!("{name}: {e}"))?;
        let root = doc.root_element();
        for n in xs_children(root) {
            if matches!(n.tag_name().name(), "import" | "include")
                && let Some(loc) = n.attribute("schemaLocation")
            {
                let base = loc.rsplit('/').next().unwrap_or(loc);
                let found = files
                    .iter()
                    .find(|(n, _)| *n == base)
                    .ok_or(format!("{name}: brak importowanego pliku {loc}"))?;
                queue.push(found.0);
            }
        }
        docs.push(Doc {
            tns: root.attribute("targetNamespace").unwrap_or("").to_owned(),
            elements_qualified: root.attribute("elementFormDefault") == Some("qualified"),
            attributes_qualified: root.attribute("attributeFormDefault") == Some("qualified"),
            doc,
        });
    }
    for (d, doc) in docs.iter().enumerate() {
        let root = doc.doc.root_element();
        for n in xs_children(root) {
            let kind = match n.tag_name().name() {
                "element" => Kind::Element,
                "complexType" => Kind::Complex,
                "simpleType" => Kind::Simple,
                "attribute" => Kind::Attribute,
                "group" | "attributeGroup" => {
                    return Err(format!(
                        "nieobsługiwana konstrukcja {}",
                        n.tag_name().name()
                    ));
                }
                _ => continue,
            };
            let name = n.attribute("name").ok_or("deklaracja globalna bez nazwy")?;
            index.insert((kind, doc.tns.clone(), name.to_owned()), (d, n.id()));
        }
    }
    let mut c = Compiler {
        docs: &docs,
        index,
        out: Schema::default(),
        complex_memo: HashMap::new(),
        simple_memo: HashMap::new(),
        regexes: HashMap::new(),
    };
    let keys: Vec<_> = c.index.keys().cloned().collect();
    for (kind, ns, name) in keys {
        match kind {
            Kind::Element => {
                c.global_element(&(ns, name))?;
            }
            Kind::Attribute => {
                let (d, id) = c.index[&(kind, ns.clone(), name.clone())];
                let a = c.attribute(d, id, true)?;
                c.out.global_attrs.insert((ns, name), a);
            }
            _ => {}
        }
    }
    Ok(c.out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Element,
    Complex,
    Simple,
    Attribute,
}

struct Doc {
    doc: roxmltree::Document<'static>,
    tns: String,
    elements_qualified: bool,
    attributes_qualified: bool,
}

struct Compiler<'d> {
    docs: &'d [Doc],
    index: HashMap<(Kind, String, String), (usize, NodeId)>,
    out: Schema,
    complex_memo: HashMap<(String, String), usize>,
    simple_memo: HashMap<(String, String), usize>,
    regexes: HashMap<String, regex::Regex>,
}

/// The XSD-namespace element children of a schema node, without annotations.
fn xs_children<'a, 'i>(n: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(|c| {
        c.is_element()
            && c.tag_name().namespace() == Some(XS)
            && c.tag_name().name() != "annotation"
    })
}

fn occurs(n: Node<'_, '_>, attr: &str) -> Result<u32, String> {
    match n.attribute(attr) {
        None => Ok(1),
        Some("unbounded") => Ok(u32::MAX),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("niepoprawne {attr}='{v}'")),
    }
}

impl<'d> Compiler<'d> {
    fn node(&self, d: usize, id: NodeId) -> Result<Node<'d, 'static>, String> {
        let docs: &'d [Doc] = self.docs;
        docs[d]
            .doc
            .get_node(id)
            .ok_or_else(|| "brak węzła schematu".to_owned())
    }

    /// Resolves a QName attribute value in the scope of a schema node.
    fn qname(n: Node<'_, '_>, v: &str) -> Result<(String, String), String> {
        let (prefix, local) = match v.trim().split_once(':') {
            Some((p, l)) => (Some(p), l),
            None => (None, v.trim()),
        };
        let ns = match n.lookup_namespace_uri(prefix) {
            Some(ns) => ns,
            None if prefix.is_none() => "",
            None => return Err(format!("nieznany prefiks w '{v}'")),
        };
        Ok((ns.to_owned(), local.to_owned()))
    }

    fn sym(&mut self, ns: &str, local: &str) -> u32 {
        let names = &mut self.out.sym_names;
        let by_local = self.out.syms.entry(ns.to_owned()).or_default();
        if let Some(&s) = by_local.get(local) {
            return s;
        }
        let s = u32::try_from(names.len()).unwrap_or(u32::MAX);
        names.push(local.to_owned());
        by_local.insert(local.to_owned(), s);
        s
    }

    fn global_element(&mut self, qn: &(String, String)) -> Result<usize, String> {
        if let Some(&e) = self.out.globals.get(qn) {
            return Ok(e);
        }
        let &(d, id) = self
            .index
            .get(&(Kind::Element, qn.0.clone(), qn.1.clone()))
            .ok_or(format!("brak deklaracji elementu {{{}}}{}", qn.0, qn.1))?;
        let e = self.new_element(&qn.0, &qn.1);
        self.out.globals.insert(qn.clone(), e);
        self.element_body(d, id, e)?;
        Ok(e)
    }

    fn new_element(&mut self, ns: &str, local: &str) -> usize {
        let sym = self.sym(ns, local);
        self.out.elems.push(ElementDecl {
            sym,
            ty: TypeRef::Any,
            fixed: None,
            is_abstract: false,
        });
        self.out.elems.len() - 1
    }

    /// A local element declaration or reference.
    fn local_element(&mut self, d: usize, id: NodeId) -> Result<usize, String> {
        let n = self.node(d, id)?;
        if let Some(r) = n.attribute("ref") {
            let qn = Self::qname(n, r)?;
            return self.global_element(&qn);
        }
        let name = n.attribute("name").ok_or("element bez nazwy")?.to_owned();
        let qualified = match n.attribute("form") {
            Some(f) => f == "qualified",
            None => self.docs[d].elements_qualified,
        };
        let ns = if qualified {
            self.docs[d].tns.clone()
        } else {
            String::new()
        };
        let e = self.new_element(&ns, &name);
        self.element_body(d, id, e)?;
        Ok(e)
    }

    fn element_body(&mut self, d: usize, id: NodeId, e: usize) -> Result<(), String> {
        let n = self.node(d, id)?;
        let ty = if let Some(t) = n.attribute("type") {
            let qn = Self::qname(n, t)?;
            self.type_ref(&qn)?
        } else if let Some(c) = xs_children(n).find(|c| c.tag_name().name() == "complexType") {
            TypeRef::Complex(self.anonymous_complex(d, c.id())?)
        } else if let Some(c) = xs_children(n).find(|c| c.tag_name().name() == "simpleType") {
            TypeRef::Simple(self.simple_type(d, c.id(), None)?)
        } else {
            TypeRef::Any
        };
        let n = self.node(d, id)?;
        let fixed = n.attribute("fixed").map(str::to_owned);
        let is_abstract = n.attribute("abstract") == Some("true");
        if n.attribute("substitutionGroup").is_some() {
            return Err("nieobsługiwane substitutionGroup".into());
        }
        let fixed = match (fixed, ty) {
            (Some(f), TypeRef::Simple(s)) => Some(self.key_of(s, &f)),
            (Some(f), TypeRef::Complex(c)) => match self.out.complex[c].content {
                Content::Simple(s) => Some(self.key_of(s, &f)),
                _ => Some(f),
            },
            (f, _) => f,
        };
        let decl = &mut self.out.elems[e];
        decl.ty = ty;
        decl.fixed = fixed;
        decl.is_abstract = is_abstract;
        Ok(())
    }

    /// The value-space key of a lexical value of a simple type (for fixed and enumerated values).
    fn key_of(&self, s: usize, v: &str) -> String {
        let st = &self.out.simple[s];
        let n = normalize(v, st.ws);
        match st.variety {
            Variety::Atomic(b) => b.parse(&n).map(|x| x.key(&n)).unwrap_or(n.into_owned()),
            _ => n.into_owned(),
        }
    }

    fn type_ref(&mut self, qn: &(String, String)) -> Result<TypeRef, String> {
        if qn.0 == XS {
            if qn.1 == "anyType" {
                return Ok(TypeRef::Any);
            }
            return Ok(TypeRef::Simple(self.builtin(&qn.1)?));
        }
        if self
            .index
            .contains_key(&(Kind::Complex, qn.0.clone(), qn.1.clone()))
        {
            return Ok(TypeRef::Complex(self.named_complex(qn)?));
        }
        Ok(TypeRef::Simple(self.named_simple(qn)?))
    }

    fn builtin(&mut self, local: &str) -> Result<usize, String> {
        let key = (XS.to_owned(), local.to_owned());
        if let Some(&s) = self.simple_memo.get(&key) {
            return Ok(s);
        }
        let b = Builtin::by_name(local).ok_or(format!("nieobsługiwany typ xsd:{local}"))?;
        self.out.simple.push(SimpleType {
            name: format!("xsd:{local}"),
            variety: Variety::Atomic(b),
            ws: b.white_space(),
            facets: Facets::default(),
            is_id: b == Builtin::Id,
        });
        let s = self.out.simple.len() - 1;
        self.simple_memo.insert(key, s);
        Ok(s)
    }

    fn named_simple(&mut self, qn: &(String, String)) -> Result<usize, String> {
        if qn.0 == XS {
            return self.builtin(&qn.1);
        }
        if let Some(&s) = self.simple_memo.get(qn) {
            return Ok(s);
        }
        let &(d, id) = self
            .index
            .get(&(Kind::Simple, qn.0.clone(), qn.1.clone()))
            .ok_or(format!("brak typu prostego {{{}}}{}", qn.0, qn.1))?;
        let s = self.simple_type(d, id, Some(&qn.1))?;
        self.simple_memo.insert(qn.clone(), s);
        Ok(s)
    }

    /// A `simpleType` definition (named or anonymous).
    fn simple_type(&mut self, d: usize, id: NodeId, name: Option<&str>) -> Result<usize, String> {
        let n = self.node(d, id)?;
        let body = xs_children(n).next().ok_or("pusty simpleType")?;
        let body_id = body.id();
        let st = match body.tag_name().name() {
            "restriction" => self.restriction(d, body_id, name)?,
            "list" => {
                let item = match body.attribute("itemType") {
                    Some(t) => {
                        let qn = Self::qname(body, t)?;
                        self.named_simple(&qn)?
                    }
                    None => {
                        let c = xs_children(body).next().ok_or("list bez typu")?.id();
                        self.simple_type(d, c, None)?
                    }
                };
                SimpleType {
                    name: name.unwrap_or("lista").to_owned(),
                    variety: Variety::List(item),
                    ws: super::WhiteSpace::Collapse,
                    facets: Facets::default(),
                    is_id: false,
                }
            }
            "union" => {
                let mut members = Vec::new();
                let named: Vec<String> = body
                    .attribute("memberTypes")
                    .unwrap_or("")
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect();
                for m in named {
                    let qn = Self::qname(self.node(d, body_id)?, &m)?;
                    members.push(self.named_simple(&qn)?);
                }
                let inline: Vec<NodeId> = xs_children(body).map(|c| c.id()).collect();
                for c in inline {
                    members.push(self.simple_type(d, c, None)?);
                }
                SimpleType {
                    name: name.unwrap_or("unia").to_owned(),
                    variety: Variety::Union(members),
                    ws: super::WhiteSpace::Collapse,
                    facets: Facets::default(),
                    is_id: false,
                }
            }
            other => return Err(format!("nieobsługiwany simpleType/{other}")),
        };
        self.out.simple.push(st);
        Ok(self.out.simple.len() - 1)
    }

    /// A simple type restricting its base with the facets under `id` (a `restriction` node).
    fn restriction(
        &mut self,
        d: usize,
        id: NodeId,
        name: Option<&str>,
    ) -> Result<SimpleType, String> {
        let n = self.node(d, id)?;
        let base = match n.attribute("base") {
            Some(b) => {
                let qn = Self::qname(n, b)?;
                self.named_simple(&qn)?
            }
            None => {
                let c = xs_children(n)
                    .find(|c| c.tag_name().name() == "simpleType")
                    .ok_or("restriction bez typu bazowego")?
                    .id();
                self.simple_type(d, c, None)?
            }
        };
        let mut st = self.out.simple[base].clone();
        if let Some(name) = name {
            st.name = name.to_owned();
        }
        self.apply_facets(d, id, &mut st)?;
        Ok(st)
    }

    fn apply_facets(&mut self, d: usize, id: NodeId, st: &mut SimpleType) -> Result<(), String> {
        let n = self.node(d, id)?;
        let facets: Vec<(String, String)> = xs_children(n)
            .filter_map(|c| {
                c.attribute("value")
                    .map(|v| (c.tag_name().name().to_owned(), v.to_owned()))
            })
            .collect();
        let mut enums = Vec::new();
        let mut patterns = Vec::new();
        let num = |v: &str| -> Result<usize, String> {
            v.trim()
                .parse()
                .map_err(|_| format!("niepoprawna wartość aspektu '{v}'"))
        };
        for (facet, v) in facets {
            match facet.as_str() {
                "enumeration" => enums.push(v),
                "pattern" => patterns.push(v),
                "whiteSpace" => {
                    let ws = match v.as_str() {
                        "preserve" => super::WhiteSpace::Preserve,
                        "replace" => super::WhiteSpace::Replace,
                        _ => super::WhiteSpace::Collapse,
                    };
                    st.ws = st.ws.max(ws);
                }
                "length" => st.facets.length = Some(num(&v)?),
                "minLength" => st.facets.min_length = Some(num(&v)?),
                "maxLength" => st.facets.max_length = Some(num(&v)?),
                "totalDigits" => st.facets.total_digits = Some(num(&v)?),
                "fractionDigits" => st.facets.fraction_digits = Some(num(&v)?),
                bound @ ("minInclusive" | "maxInclusive" | "minExclusive" | "maxExclusive") => {
                    let Variety::Atomic(b) = st.variety else {
                        return Err(format!("{bound} dla typu nieatomowego"));
                    };
                    let norm = normalize(&v, st.ws).into_owned();
                    let value = b
                        .parse(&norm)
                        .map_err(|_| format!("niepoprawna wartość {bound} '{v}'"))?;
                    let list = match bound {
                        "minInclusive" => &mut st.facets.min_inclusive,
                        "maxInclusive" => &mut st.facets.max_inclusive,
                        "minExclusive" => &mut st.facets.min_exclusive,
                        _ => &mut st.facets.max_exclusive,
                    };
                    list.push((norm, value));
                }
                other => return Err(format!("nieobsługiwany aspekt {other}")),
            }
        }
        if !patterns.is_empty() {
            let mut step = Vec::new();
            for p in patterns {
                let re = match self.regexes.get(&p) {
                    Some(r) => r.clone(),
                    None => {
                        let t =
                            pattern::translate(&p).map_err(|e| format!("wzorzec '{p}': {e}"))?;
                        let r = regex::Regex::new(&t).map_err(|e| format!("wzorzec '{p}': {e}"))?;
                        self.regexes.insert(p.clone(), r.clone());
                        r
                    }
                };
                step.push((p, re));
            }
            st.facets.patterns.push(step);
        }
        if !enums.is_empty() {
            let keys = enums
                .iter()
                .map(|v| {
                    let n = normalize(v, st.ws);
                    match st.variety {
                        Variety::Atomic(b) => {
                            b.parse(&n).map(|x| x.key(&n)).unwrap_or(n.into_owned())
                        }
                        _ => n.into_owned(),
                    }
                })
                .collect();
            st.facets.enums.push((enums, keys));
        }
        Ok(())
    }

    fn named_complex(&mut self, qn: &(String, String)) -> Result<usize, String> {
        if let Some(&c) = self.complex_memo.get(qn) {
            return Ok(c);
        }
        let &(d, id) = self
            .index
            .get(&(Kind::Complex, qn.0.clone(), qn.1.clone()))
            .ok_or(format!("brak typu złożonego {{{}}}{}", qn.0, qn.1))?;
        let c = self.placeholder();
        self.complex_memo.insert(qn.clone(), c);
        let body = self.complex_body(d, id)?;
        self.out.complex[c] = body;
        Ok(c)
    }

    fn anonymous_complex(&mut self, d: usize, id: NodeId) -> Result<usize, String> {
        let c = self.placeholder();
        let body = self.complex_body(d, id)?;
        self.out.complex[c] = body;
        Ok(c)
    }

    fn placeholder(&mut self) -> usize {
        self.out.complex.push(ComplexType {
            attrs: Vec::new(),
            any_attr: None,
            content: Content::Empty,
            is_abstract: false,
        });
        self.out.complex.len() - 1
    }

    fn complex_body(&mut self, d: usize, id: NodeId) -> Result<ComplexType, String> {
        let n = self.node(d, id)?;
        let is_abstract = n.attribute("abstract") == Some("true");
        let mut mixed = n.attribute("mixed") == Some("true");
        let first = xs_children(n).next();
        let derivation =
            first.filter(|c| matches!(c.tag_name().name(), "simpleContent" | "complexContent"));
        let Some(dc) = derivation else {
            // Content model and attributes directly under complexType.
            let (particle, attrs, any_attr) = self.model_and_attributes(d, id)?;
            return Ok(ComplexType {
                attrs,
                any_attr,
                content: Self::content(particle, mixed),
                is_abstract,
            });
        };
        let simple = dc.tag_name().name() == "simpleContent";
        if dc.attribute("mixed") == Some("true") {
            mixed = true;
        }
        let der = xs_children(dc).next().ok_or("pusta derywacja")?;
        let der_id = der.id();
        let extension = match der.tag_name().name() {
            "extension" => true,
            "restriction" => false,
            other => return Err(format!("nieobsługiwana derywacja {other}")),
        };
        let base_qn = Self::qname(der, der.attribute("base").ok_or("derywacja bez base")?)?;
        let base = self.type_ref(&base_qn)?;
        let (particle, own_attrs, own_any) = self.model_and_attributes(d, der_id)?;
        let (base_attrs, base_any, base_content) = match base {
            TypeRef::Complex(c) => {
                let b = &self.out.complex[c];
                (b.attrs.clone(), b.any_attr.clone(), Some(b.content.clone()))
            }
            TypeRef::Simple(s) => (Vec::new(), None, Some(Content::Simple(s))),
            TypeRef::Any => (Vec::new(), None, None),
        };
        let attrs = merge_attrs(base_attrs, own_attrs);
        let any_attr = own_any.or(base_any);
        let content = if simple {
            let Some(Content::Simple(s)) = base_content else {
                return Err("simpleContent na typie bez treści prostej".into());
            };
            if extension {
                Content::Simple(s)
            } else {
                let mut st = self.out.simple[s].clone();
                self.apply_facets_filtered(d, der_id, &mut st)?;
                self.out.simple.push(st);
                Content::Simple(self.out.simple.len() - 1)
            }
        } else if extension {
            match (base_content, particle) {
                (
                    Some(Content::Elements {
                        particle: bp,
                        mixed: bm,
                    }),
                    Some(p),
                ) => Content::Elements {
                    particle: self.finish(1, 1, Term::Seq(vec![bp, p])),
                    mixed: mixed || bm,
                },
                (
                    Some(Content::Elements {
                        particle: bp,
                        mixed: bm,
                    }),
                    None,
                ) => Content::Elements {
                    particle: bp,
                    mixed: mixed || bm,
                },
                (_, p) => Self::content(p, mixed),
            }
        } else {
            Self::content(particle, mixed)
        };
        Ok(ComplexType {
            attrs,
            any_attr,
            content,
            is_abstract,
        })
    }

    /// Facets under a simpleContent restriction (skipping its attributes).
    fn apply_facets_filtered(
        &mut self,
        d: usize,
        id: NodeId,
        st: &mut SimpleType,
    ) -> Result<(), String> {
        let n = self.node(d, id)?;
        if let Some(c) = xs_children(n).find(|c| c.tag_name().name() == "simpleType") {
            let s = self.simple_type(d, c.id(), None)?;
            *st = self.out.simple[s].clone();
        }
        let n = self.node(d, id)?;
        let has_facets = xs_children(n).any(|c| {
            !matches!(
                c.tag_name().name(),
                "attribute" | "anyAttribute" | "simpleType" | "attributeGroup"
            )
        });
        if has_facets {
            // apply_facets reads only nodes with a `value` attribute (the facets).
            self.apply_facets(d, id, st)?;
        }
        Ok(())
    }

    fn content(particle: Option<Particle>, mixed: bool) -> Content {
        match particle {
            Some(particle) => Content::Elements { particle, mixed },
            None if mixed => Content::Elements {
                particle: Particle {
                    min: 1,
                    max: 1,
                    term: Term::Seq(Vec::new()),
                    term_nullable: true,
                    first: Vec::new(),
                    first_any: Vec::new(),
                },
                mixed,
            },
            None => Content::Empty,
        }
    }

    /// The content model particle and attribute declarations directly under `id`.
    #[allow(clippy::type_complexity)]
    fn model_and_attributes(
        &mut self,
        d: usize,
        id: NodeId,
    ) -> Result<(Option<Particle>, Vec<AttrUse>, Option<Wildcard>), String> {
        let n = self.node(d, id)?;
        let kids: Vec<(String, NodeId)> = xs_children(n)
            .map(|c| (c.tag_name().name().to_owned(), c.id()))
            .collect();
        let mut particle = None;
        let mut attrs = Vec::new();
        let mut any_attr = None;
        for (name, cid) in kids {
            match name.as_str() {
                "sequence" | "choice" => particle = self.particle(d, cid)?,
                "attribute" => attrs.push(self.attribute(d, cid, false)?),
                "anyAttribute" => any_attr = Some(self.wildcard(d, cid)?),
                "simpleType" => {}
                other
                    if [
                        "enumeration",
                        "pattern",
                        "length",
                        "minLength",
                        "maxLength",
                        "totalDigits",
                        "fractionDigits",
                        "minInclusive",
                        "maxInclusive",
                        "minExclusive",
                        "maxExclusive",
                        "whiteSpace",
                    ]
                    .contains(&other) => {}
                other => return Err(format!("nieobsługiwana konstrukcja {other}")),
            }
        }
        Ok((particle, attrs, any_attr))
    }

    fn attribute(&mut self, d: usize, id: NodeId, global: bool) -> Result<AttrUse, String> {
        let n = self.node(d, id)?;
        let required = n.attribute("use") == Some("required");
        let prohibited = n.attribute("use") == Some("prohibited");
        if let Some(r) = n.attribute("ref") {
            let qn = Self::qname(n, r)?;
            let &(rd, rid) = self
                .index
                .get(&(Kind::Attribute, qn.0.clone(), qn.1.clone()))
                .ok_or(format!("brak deklaracji atrybutu {}", qn.1))?;
            let mut a = self.attribute(rd, rid, true)?;
            a.required = required;
            a.prohibited = prohibited;
            let n = self.node(d, id)?;
            if let Some(f) = n.attribute("fixed") {
                a.fixed = Some(self.key_of(a.ty, f));
            }
            return Ok(a);
        }
        let name = n.attribute("name").ok_or("atrybut bez nazwy")?.to_owned();
        let qualified = global
            || match n.attribute("form") {
                Some(f) => f == "qualified",
                None => self.docs[d].attributes_qualified,
            };
        let ns = if qualified {
            self.docs[d].tns.clone()
        } else {
            String::new()
        };
        let fixed = n.attribute("fixed").map(str::to_owned);
        let ty = if let Some(t) = n.attribute("type") {
            let qn = Self::qname(n, t)?;
            self.named_simple(&qn)?
        } else if let Some(c) = xs_children(n).find(|c| c.tag_name().name() == "simpleType") {
            self.simple_type(d, c.id(), None)?
        } else {
            self.builtin("anySimpleType")?
        };
        let fixed = fixed.map(|f| self.key_of(ty, &f));
        Ok(AttrUse {
            ns,
            name,
            required,
            prohibited,
            ty,
            fixed,
        })
    }

    fn wildcard(&mut self, d: usize, id: NodeId) -> Result<Wildcard, String> {
        let n = self.node(d, id)?;
        let tns = self.docs[d].tns.clone();
        let ns = match n.attribute("namespace").unwrap_or("##any").trim() {
            "##any" => NsSet::Any,
            "##other" => NsSet::Not(tns),
            list => NsSet::List(
                list.split_whitespace()
                    .map(|t| match t {
                        "##targetNamespace" => tns.clone(),
                        "##local" => String::new(),
                        uri => uri.to_owned(),
                    })
                    .collect(),
            ),
        };
        let process = match n.attribute("processContents").unwrap_or("strict") {
            "lax" => Process::Lax,
            "skip" => Process::Skip,
            _ => Process::Strict,
        };
        Ok(Wildcard { ns, process })
    }

    /// A particle (`element`, `any`, `sequence`, `choice`); `None` when `maxOccurs="0"`.
    fn particle(&mut self, d: usize, id: NodeId) -> Result<Option<Particle>, String> {
        let n = self.node(d, id)?;
        let min = occurs(n, "minOccurs")?;
        let max = occurs(n, "maxOccurs")?;
        if max == 0 {
            return Ok(None);
        }
        let kind = n.tag_name().name().to_owned();
        let kids: Vec<NodeId> = xs_children(n).map(|c| c.id()).collect();
        let term = match kind.as_str() {
            "element" => Term::Element(self.local_element(d, id)?),
            "any" => Term::Any(self.wildcard(d, id)?),
            "sequence" | "choice" => {
                let mut ps = Vec::new();
                for k in kids {
                    if let Some(p) = self.particle(d, k)? {
                        ps.push(p);
                    }
                }
                if kind == "sequence" {
                    Term::Seq(ps)
                } else {
                    Term::Choice(ps)
                }
            }
            other => return Err(format!("nieobsługiwana cząstka {other}")),
        };
        Ok(Some(self.finish(min, max, term)))
    }

    /// A particle with its FIRST set and nullability computed.
    fn finish(&self, min: u32, max: u32, term: Term) -> Particle {
        let mut first = Vec::new();
        let mut first_any = Vec::new();
        let term_nullable = match &term {
            Term::Element(e) => {
                first.push(self.out.elems[*e].sym);
                false
            }
            Term::Any(w) => {
                first_any.push(w.clone());
                false
            }
            Term::Seq(ps) => {
                let mut nullable = true;
                for p in ps {
                    first.extend_from_slice(&p.first);
                    first_any.extend(p.first_any.iter().cloned());
                    if !(p.min == 0 || p.term_nullable) {
                        nullable = false;
                        break;
                    }
                }
                nullable
            }
            Term::Choice(ps) => {
                for p in ps {
                    first.extend_from_slice(&p.first);
                    first_any.extend(p.first_any.iter().cloned());
                }
                ps.iter().any(|p| p.min == 0 || p.term_nullable)
            }
        };
        first.sort_unstable();
        first.dedup();
        first_any.dedup();
        Particle {
            min,
            max,
            term,
            term_nullable,
            first,
            first_any,
        }
    }
}

/// The attributes of a derived type: the base's, replaced or removed (`prohibited`) by the
/// derivation's own of the same name.
fn merge_attrs(base: Vec<AttrUse>, own: Vec<AttrUse>) -> Vec<AttrUse> {
    let mut out = base;
    for a in own {
        out.retain(|b| !(b.ns == a.ns && b.name == a.name));
        if !a.prohibited {
            out.push(a);
        }
    }
    out
}
