#!/usr/bin/env python3
"""Generates crates/ksef-fa/src/generated.rs from the official FA(3) XSD.

Usage (from the repository root or anywhere):
    python3 crates/ksef-fa/codegen/gen.py           # rewrite the generated file
    python3 crates/ksef-fa/codegen/gen.py --check   # exit 1 if the committed file is stale

Only the Python standard library is used, so CI (which has python3) can run the drift check.

Mapping (see the crate README for the user-facing view):
- xsd:sequence -> struct fields in order; a nested optional sequence whose children are not all
  optional -> `Option<Group>`; a nested required sequence -> flattened into the parent.
- xsd:choice -> enum (one variant per alternative; a sequence alternative gets its own struct).
- minOccurs=0 -> Option, maxOccurs>1 -> Vec (counts checked on parse and in `validate`).
- simple types -> validated newtypes (strings, decimals via rust_decimal, integers, dates) or enums.
"""
import os
import re
import sys
import xml.etree.ElementTree as ET
from calendar import timegm

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
SPEC = os.path.join(ROOT, "spec", "fa")
OUT = os.path.join(ROOT, "crates", "ksef-fa", "src", "generated.rs")
XS = "{http://www.w3.org/2001/XMLSchema}"
TNS = "http://crd.gov.pl/wzor/2025/06/25/13775/"

FA = ET.parse(os.path.join(SPEC, "schemat_FA(3)_v1-0E.xsd")).getroot()
ETD_FILES = ["ElementarneTypyDanych_v10-0E.xsd", "KodyKrajow_v10-0E.xsd", "StrukturyDanych_v10-0E.xsd"]
ETD = {}
for f in ETD_FILES:
    for c in ET.parse(os.path.join(SPEC, f)).getroot():
        if c.get("name"):
            ETD[c.get("name")] = c
TNS_TYPES = {c.get("name"): c for c in FA if c.get("name") and c.tag in (XS + "simpleType", XS + "complexType")}

# English descriptions for enumerations, used in error messages ("... is not a VAT rate").
ENUM_WHAT = {
    "TStawkaPodatku": "a VAT rate",
    "TKodWaluty": "a currency code",
    "TKodKraju": "a country code",
    "TKodyKrajowUE": "an EU country code",
    "TRodzajFaktury": "an invoice kind",
    "TFormaPlatnosci": "a payment form (1-7)",
    "TTypKorekty": "a correction type (1-3)",
    "TGTU": "a GTU code",
    "TOznaczenieProcedury": "a procedure code",
    "TOznaczenieProceduryZ": "a procedure code",
    "TWybor1": "the value 1",
    "TWybor12": "1 or 2",
    # the form code of another form (FA (2) relabelled with the FA(3) namespace) must say so
    "KodSystemowy": 'the FA(3) system code "FA (3)" (this is not an FA(3) invoice)',
    "TKodFormularza": 'the form code "FA"',
}

# Field names for choices and groups where the first element's name reads badly.
CHOICE_FIELD = {
    ("TPodmiot2", "NIP"): "id",
    ("TPodmiot3", "NIP"): "id",
    ("Fa", "P_6"): "data_dostawy",
    ("Zwolnienie", "P_19"): "zwolnienie",
    ("NoweSrodkiTransportu", "P_22"): "nowe_srodki_transportu",
    ("PMarzy", "P_PMarzy"): "p_marzy",
    ("Podmiot3", "Rola"): "rola",
    ("Rozliczenie", "DoZaplaty"): "saldo",
    ("DaneFaKorygowanej", "NrKSeF"): "nr_ksef",
    ("FakturaZaliczkowa", "NrKSeFZN"): "faktura",
    ("Transport", "RodzajTransportu"): "rodzaj_transportu",
    ("Transport", "OpisLadunku"): "ladunek",
    ("Platnosc", "Zaplacono"): "zaplata",
    ("Platnosc", "FormaPlatnosci"): "forma_platnosci",
    ("ZaplataCzesciowa", "FormaPlatnosci"): "forma_platnosci",
    ("NowySrodekTransportu", "P_22B"): "pojazd",
}


def doc_of(e):
    d = e.find(XS + "annotation/" + XS + "documentation")
    if d is None or not (d.text or "").strip():
        return ""
    return " ".join(d.text.split())


def camel(name):
    if len(name) > 2 and name[0] == "T" and name[1].isupper() and name[2].isupper():
        return "T" + camel(name[1:])
    name = name.replace("KSeF", "Ksef")
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", name) if p]
    out = ""
    for p in parts:
        if p.isupper() and len(p) > 1:
            p = p[0] + p[1:].lower()
        elif p.isupper() is False and p[0].islower():
            p = p[0].upper() + p[1:]
        # digits followed by uppercase run: P22BMK -> keep
        out += p
    # An all-caps run inside a part (e.g. TNrNIP) is fine for rustc; make runs of 3+ capitals camel.
    out = re.sub(r"([A-Z])([A-Z]+)(?=[A-Z][a-z]|$|[0-9])", lambda m: m.group(1) + m.group(2).lower(), out)
    if out[0].isdigit():
        out = "V" + out
    return out


def snake(name):
    name = name.replace("KSeF", "Ksef")
    parts = [p for p in name.split("_") if p]
    out = []
    for p in parts:
        s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", p)
        s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
        out.append(s.lower())
    r = "_".join(out)
    if r in ("type", "match", "ref", "move", "box", "use", "mod", "fn", "in", "as"):
        r += "_"
    return r


def rdoc(text, indent=""):
    text = text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").replace("<", "&lt;").replace(">", "&gt;")
    lines = []
    for ln in text.split("\n"):
        lines.append(f"{indent}/// {ln}".rstrip())
    return "\n".join(lines) + "\n"


def occurs(e):
    mn = int(e.get("minOccurs", "1"))
    mx = e.get("maxOccurs", "1")
    mx = None if mx == "unbounded" else int(mx)
    return mn, mx


# ---------------------------------------------------------------- simple types

BUILTIN = {
    "string": "string", "normalizedString": "string", "token": "string",
    "decimal": "decimal", "integer": "int", "byte": "int", "int": "int", "nonNegativeInteger": "int",
    "date": "date", "dateTime": "datetime",
}
WS_DEFAULT = {"string": "Preserve", "normalizedString": "Replace", "token": "Collapse"}


def resolve_ref(ref):
    """Facets of a named simple type reference like 'tns:TZnakowy' / 'etd:TData' / 'xsd:token'."""
    pfx, name = ref.split(":")
    if pfx in ("xsd", "xs"):
        kind = BUILTIN[name]
        f = {"kind": kind, "ws": WS_DEFAULT.get(name, "Collapse"), "patterns": [], "builtin": name}
        if name == "byte":
            f["min"], f["max"] = ("-128", True), ("127", True)
        if name == "nonNegativeInteger":
            f["min"] = ("0", True)
        if name == "int":
            f["min"], f["max"] = ("-2147483648", True), ("2147483647", True)
        return f
    node = TNS_TYPES[name] if pfx == "tns" else ETD[name]
    return resolve_simple(node)


def resolve_simple(st):
    r = st.find(XS + "restriction")
    u = st.find(XS + "union")
    if u is not None:
        pats = []
        base = None
        for sub in u.findall(XS + "simpleType"):
            f = resolve_simple(sub)
            assert len(f["patterns"]) == 1
            pats.append(f["patterns"][0])
            base = f
        f = dict(base)
        f["patterns"] = ["|".join("(?:%s)" % p for p in pats)]
        return f
    assert r is not None, st.attrib
    f = dict(resolve_ref(r.get("base")))
    f["patterns"] = list(f["patterns"])
    enums = []
    same_level_pats = []
    for c in r:
        t = c.tag.replace(XS, "")
        v = c.get("value")
        if t == "enumeration":
            enums.append((v, doc_of(c)))
        elif t == "pattern":
            same_level_pats.append(v)
        elif t == "minLength":
            f["minLength"] = int(v)
        elif t == "maxLength":
            f["maxLength"] = int(v)
        elif t == "length":
            f["minLength"] = f["maxLength"] = int(v)
        elif t == "totalDigits":
            f["totalDigits"] = int(v)
        elif t == "fractionDigits":
            f["fractionDigits"] = int(v)
        elif t == "minInclusive":
            f["min"] = (v, True)
        elif t == "maxInclusive":
            f["max"] = (v, True)
        elif t == "minExclusive":
            f["min"] = (v, False)
        elif t == "maxExclusive":
            f["max"] = (v, False)
        elif t == "whiteSpace":
            f["ws"] = {"preserve": "Preserve", "replace": "Replace", "collapse": "Collapse"}[v]
        elif t == "annotation":
            pass
        else:
            raise Exception("unsupported facet " + t)
    if same_level_pats:
        f["patterns"].append("|".join("(?:%s)" % p if len(same_level_pats) > 1 else p for p in same_level_pats))
    if enums:
        f["enums"] = enums
    return f


SIMPLE = {}  # rust name -> (facets, doc, xsd name)
SIMPLE_ORDER = []


def fkey(f):
    return repr(sorted((k, repr(v)) for k, v in f.items()))


def simple_type_for_ref(ref):
    pfx, name = ref.split(":")
    if pfx in ("xsd", "xs"):
        rust = {"string": "XsdString", "integer": "XsdInteger", "token": "XsdToken",
                "normalizedString": "XsdNormalizedString"}[name]
        xsd = "xsd:" + name
        node = None
        doc = f"Any `xsd:{name}` value."
    else:
        node = TNS_TYPES[name] if pfx == "tns" else ETD[name]
        rust = camel(name)
        if pfx == "etd" and name in TNS_TYPES:
            rust = "Etd" + rust
        xsd = ref
        doc = doc_of(node)
    f = resolve_ref(ref)
    register_simple(rust, f, doc, xsd)
    return rust


def register_simple(rust, f, doc, xsd):
    if rust in SIMPLE:
        assert fkey(SIMPLE[rust][0]) == fkey(f), rust
        return rust
    SIMPLE[rust] = (f, doc, xsd)
    SIMPLE_ORDER.append(rust)
    return rust


def anon_simple(st, elem_name, parent_struct):
    f = resolve_simple(st)
    rust = camel(elem_name)
    if rust in SIMPLE and fkey(SIMPLE[rust][0]) != fkey(f):
        rust = parent_struct + rust
    if rust in TNS_TYPES or rust in STRUCT_NAMES_TAKEN:
        rust = parent_struct + rust
    doc = doc_of(st) or f"Restricted value of `{elem_name}`."
    return register_simple(rust, f, doc, f"anonymous type of {elem_name}")


# ---------------------------------------------------------------- complex types

STRUCTS = []   # dicts
ENUMS = []
STRUCT_NAMES_TAKEN = set()
FIELDS_TABLE = []   # (scope, xml name, rust path)

# Anonymous complex element names that occur more than once get their parent's name as prefix.
_anon_counts = {}
for e in FA.iter(XS + "element"):
    if e.find(XS + "complexType") is not None:
        _anon_counts[e.get("name")] = _anon_counts.get(e.get("name"), 0) + 1


def first_set(p):
    k = p["k"]
    if k == "elem":
        return [p["name"]]
    if k == "choice":
        out = []
        for a in p["alts"]:
            out += first_set(a)
        return out
    out = []
    for it in p["items"]:
        out += first_set(it)
        if not emptiable(it):
            break
    return out


def emptiable(p):
    if p["min"] == 0:
        return True
    if p["k"] == "elem":
        return False
    if p["k"] == "seq":
        return all(emptiable(i) for i in p["items"])
    return any(emptiable(a) for a in p["alts"])


def particles(node):
    """Reads an xsd:sequence / xsd:choice / xsd:element into a particle tree."""
    t = node.tag.replace(XS, "")
    mn, mx = occurs(node)
    if t == "element":
        return {"k": "elem", "name": node.get("name"), "min": mn, "max": mx, "node": node}
    kids = [particles(c) for c in node if c.tag in (XS + "element", XS + "sequence", XS + "choice")]
    if t == "sequence":
        return {"k": "seq", "items": kids, "min": mn, "max": mx}
    if t == "choice":
        return {"k": "choice", "alts": kids, "min": mn, "max": mx}
    raise Exception(t)


def elem_type(p, owner, scope):
    """Returns (rust type, is_complex) for an element particle; generates anonymous types."""
    node = p["node"]
    name = p["name"]
    if node.get("type"):
        ref = node.get("type")
        pfx, tname = ref.split(":")
        if pfx == "tns" and TNS_TYPES[tname].tag == XS + "complexType":
            return gen_named_complex(tname), True
        return simple_type_for_ref(ref), False
    st = node.find(XS + "simpleType")
    if st is not None:
        return anon_simple(st, name, owner), False
    ct = node.find(XS + "complexType")
    assert ct is not None, name
    sname = camel(name)
    if _anon_counts.get(name, 0) > 1 or sname in TNS_TYPES or sname in STRUCT_NAMES_TAKEN:
        sname = owner + sname
    return gen_complex(ct, sname, doc_of(node), scope + "/" + name if scope else name), True


NAMED_DONE = {}


def gen_named_complex(tname):
    if tname in NAMED_DONE:
        return NAMED_DONE[tname]
    rust = camel(tname)
    NAMED_DONE[tname] = rust
    gen_complex(TNS_TYPES[tname], rust, doc_of(TNS_TYPES[tname]), tname)
    return rust


def gen_complex(ct, sname, doc, scope):
    """A complexType (named or anonymous) -> struct `sname`. `scope` names it in SCHEMA_FIELDS."""
    STRUCT_NAMES_TAKEN.add(sname)
    st = {"name": sname, "doc": doc, "scope": scope, "fields": [], "attrs": [], "simple": None, "elem": True}
    STRUCTS.append(st)
    cc = ct.find(XS + "complexContent")
    sc = ct.find(XS + "simpleContent")
    attrs = ct.findall(XS + "attribute")
    if sc is not None:
        ext = sc.find(XS + "extension")
        st["simple"] = simple_type_for_ref(ext.get("base"))
        FIELDS_TABLE.append((scope, "#text", f"{sname}.value"))
        attrs = ext.findall(XS + "attribute")
        content = None
    elif cc is not None:
        ext = cc.find(XS + "extension")
        base = ext.get("base").split(":")[1]
        # extension without additions: same content as the base type
        assert len(list(ext)) == 0, sname
        content = [c for c in TNS_TYPES[base] if c.tag in (XS + "sequence", XS + "choice")]
        # record the base's fields under this scope too
        scope_src = base
    else:
        content = [c for c in ct if c.tag in (XS + "sequence", XS + "choice")]
    for a in attrs:
        an = a.get("name")
        if a.get("type"):
            at = simple_type_for_ref(a.get("type"))
        else:
            at = anon_simple(a.find(XS + "simpleType"), an, sname)
        if a.get("fixed") is not None:
            f = {"kind": "string", "ws": "Preserve", "patterns": [], "enums": [(a.get("fixed"), "")]}
            at = register_simple(camel(an), f, f"The fixed value `{a.get('fixed')}` of attribute `{an}`.", "fixed attribute")
        req = a.get("use") == "required"
        st["attrs"].append({"xml": an, "rust": snake(an), "ty": at, "req": req, "doc": doc_of(a)})
        FIELDS_TABLE.append((scope, "@" + an, f"{sname}.{snake(an)}"))
    if content:
        assert len(content) == 1
        top = particles(content[0])
        if top["k"] == "seq":
            items = top["items"]
            if top["min"] == 0:
                assert all(emptiable(i) for i in items), sname
        else:
            items = [top]
        st["fields"] = seq_fields(items, sname, scope)
    return sname


def seq_fields(items, owner, scope):
    fields = []
    for p in items:
        k = p["k"]
        if k == "elem":
            ty, cx = elem_type(p, owner, scope)
            mn, mx = p["min"], p["max"]
            occ = "one" if (mn, mx) == (1, 1) else "opt" if (mn, mx) == (0, 1) else "many"
            fname = snake(p["name"])
            fixed = p["node"].get("fixed")
            fields.append({"k": "elem", "xml": p["name"], "rust": fname, "ty": ty, "cx": cx, "occ": occ,
                           "min": mn, "max": mx, "doc": doc_of(p["node"]), "fixed": fixed})
            FIELDS_TABLE.append((scope, p["name"], f"{owner}.{fname}"))
        elif k == "seq":
            assert p["max"] == 1
            if p["min"] == 1 or all(emptiable(i) for i in p["items"]):
                fields += seq_fields(p["items"], owner, scope)
            else:
                first = first_set(p)[0]
                gname = owner + camel(first) + "Group"
                gen_group(p["items"], gname, scope, f"Optional group of {', '.join(first_set_all(p))}.")
                fields.append({"k": "group", "rust": snake(first) + "_group", "ty": gname, "opt": True,
                               "first": first_set(p), "doc": f"Optional group starting with `{first}`."})
        elif k == "choice":
            assert p["max"] == 1
            first = first_set(p["alts"][0])[0]
            fname = CHOICE_FIELD.get((owner, first))
            if fname is None:
                for (o, f0), v in CHOICE_FIELD.items():
                    if f0 == first and owner.endswith(o):
                        fname = v
            if fname is None:
                fname = snake(first) + "_choice"
            ename = owner + camel(fname)
            gen_choice(p, ename, scope)
            fields.append({"k": "choice", "rust": fname, "ty": ename, "opt": p["min"] == 0 and not False,
                           "first": first_set(p),
                           "doc": "Choice of " + ", ".join(f"`{x}`" for x in first_set_all(p)) + "."})
    return fields


def first_set_all(p):
    if p["k"] == "elem":
        return [p["name"]]
    out = []
    for c in (p["items"] if p["k"] == "seq" else p["alts"]):
        out += first_set_all(c)
    return out


def gen_group(items, gname, scope, doc):
    STRUCT_NAMES_TAKEN.add(gname)
    st = {"name": gname, "doc": doc, "scope": scope, "fields": [], "attrs": [], "simple": None, "elem": False}
    STRUCTS.append(st)
    st["fields"] = seq_fields(items, gname, scope)
    return gname


def gen_choice(p, ename, scope):
    en = {"name": ename, "variants": [], "scope": scope}
    ENUMS.append(en)
    seen = set()
    for a in p["alts"]:
        fs = first_set(a)
        assert not (set(fs) & seen), (ename, fs)
        seen |= set(fs)
        if a["k"] == "elem":
            assert a["max"] == 1
            ty, cx = elem_type(a, ename, scope)
            vname = camel(a["name"])
            en["variants"].append({"k": "elem", "name": vname, "xml": a["name"], "ty": ty, "cx": cx,
                                   "first": fs, "doc": doc_of(a["node"])})
            FIELDS_TABLE.append((scope, a["name"], f"{ename}::{vname}"))
        elif a["k"] == "seq":
            assert a["max"] == 1 and a["min"] == 1
            vname = camel(first_set(a)[0])
            gname = ename + vname
            gen_group(a["items"], gname, scope, "Alternative of " + ", ".join(f"`{x}`" for x in first_set_all(a)) + ".")
            en["variants"].append({"k": "group", "name": vname, "ty": gname, "first": fs,
                                   "doc": "Alternative of " + ", ".join(f"`{x}`" for x in first_set_all(a)) + "."})
        else:
            raise Exception("choice in choice")


# ---------------------------------------------------------------- emit

def rust_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def date_tuple(v):
    y, m, d = v[:10].split("-")
    return f"({int(y)}, {int(m)}, {int(d)})"


def datetime_ts(v):
    m = re.match(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$", v)
    y, mo, d, h, mi, s = map(int, m.groups())
    return timegm((y, mo, d, h, mi, s, 0, 0, 0))


# Enumerations that ksef-model already defines with the same value list (from the KSeF API
# spec): the FA(3) field type is ksef-model's enum rather than a second copy of it. The schema's
# value list is emitted as a string so a test checks the two lists stay the same.
SHARED_ENUMS = {"TKodWaluty": "ksef_model::api::CurrencyCode"}


def emit_simple(name, f, doc, xsd, out):
    kind = f["kind"]
    out.append(rdoc(doc or name))
    out.append(f"///\n/// Schema type: `{xsd}`.\n")
    if name in SHARED_ENUMS:
        assert "enums" in f and kind == "string", name
        target = SHARED_ENUMS[name]
        what = ENUM_WHAT.get(name, f"a valid `{name}` value")
        out.append("///\n")
        out.append(f"/// The same type as [`{target}`] (the KSeF API's enumeration has the same value list; a\n")
        out.append("/// test checks it). Its `Unknown` arm is never the result of parsing an invoice: values\n")
        out.append("/// outside the schema's list are refused, and [`crate::Faktura::validate`] reports one set in\n")
        out.append("/// code.\n")
        out.append(f"pub type {name} = {target};\n")
        vals = " ".join(v for v, _ in f["enums"])
        out.append(f"/// The schema's value list of `{name}`, in schema order.\n")
        out.append(f"#[cfg(test)]\npub(crate) const {name.upper()}_VALUES: &str = {rust_str(vals)};\n")
        out.append(f"rt::shared_enum_impls!({name}, rt::Ws::{f['ws']}, {rust_str(what)});\n\n")
        return
    if "enums" in f:
        what = ENUM_WHAT.get(name, f"a valid `{name}` value")
        ws = "Int" if kind == "int" else f["ws"]
        variants = []
        used = set()
        for v, d in f["enums"]:
            vn = camel(v) if re.search(r"[A-Za-z0-9]", v) else "Empty"
            if vn in used:
                vn += "X"
            used.add(vn)
            variants.append((vn, v, d))
        out.append("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\n")
        out.append(f"pub enum {name} {{\n")
        for vn, v, d in variants:
            out.append(rdoc(f"`{v}`" + (f" — {d}" if d else ""), "    "))
            out.append(f"    {vn},\n")
        out.append("}\n")
        out.append(f"impl {name} {{\n")
        out.append("    /// Every value the schema allows, in schema order.\n")
        out.append(f"    pub const ALL: &'static [Self] = &[{', '.join('Self::' + vn for vn, _, _ in variants)}];\n")
        out.append("    /// The value as written in XML.\n")
        out.append("    pub const fn as_str(self) -> &'static str {\n        match self {\n")
        for vn, v, _ in variants:
            out.append(f"            Self::{vn} => {rust_str(v)},\n")
        out.append("        }\n    }\n")
        out.append("    /// Looks up a value by its exact XML spelling (after whitespace normalisation).\n")
        out.append("    pub fn from_xml_str(s: &str) -> Option<Self> {\n        match s {\n")
        for vn, v, _ in variants:
            out.append(f"            {rust_str(v)} => Some(Self::{vn}),\n")
        out.append("            _ => None,\n        }\n    }\n}\n")
        out.append(f"rt::enum_impls!({name}, rt::Ws::{ws}, {rust_str(what)});\n\n")
        return
    if kind == "string":
        out.append("#[derive(Debug, Clone, PartialEq, Eq, Hash)]\n")
        out.append(f"pub struct {name}(String);\n")
        pats = f["patterns"]
        for i, p in enumerate(pats):
            out.append(f"static {name.upper()}_RE{i}: rt::Pattern = rt::Pattern::new({rust_str(p)});\n")
        out.append(f"impl {name} {{\n")
        if "minLength" in f:
            out.append(f"    /// Minimum length in characters.\n    pub const MIN_LEN: usize = {f['minLength']};\n")
        if "maxLength" in f:
            out.append(f"    /// Maximum length in characters.\n    pub const MAX_LEN: usize = {f['maxLength']};\n")
        out.append("    /// Normalises whitespace as the schema does, then checks the schema's restrictions.\n")
        out.append("    pub fn new(value: impl Into<String>) -> Result<Self, ValueError> {\n")
        mn = f.get("minLength")
        mx = f.get("maxLength")
        # whitespace, characters and length in one call (one pass for the usual plain value)
        out.append(f"        let v = rt::text_value(value.into(), rt::Ws::{f['ws']}, {mn or 0}, {mx if mx is not None else 'usize::MAX'})?;\n")
        for i, p in enumerate(pats):
            out.append(f"        {name.upper()}_RE{i}.check(&v)?;\n")
        out.append("        Ok(Self(v))\n    }\n")
        out.append("    /// The value.\n    pub fn as_str(&self) -> &str {\n        &self.0\n    }\n}\n")
        out.append(f"rt::string_impls!({name});\n\n")
        return
    if kind == "decimal":
        out.append("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\n")
        out.append(f"pub struct {name}(Decimal);\n")
        lex = "rt::DecLex::Any"
        pats = f["patterns"]
        if pats:
            assert len(pats) == 1
            m = re.fullmatch(r"-\?\(\[1-9\]\\d\{0,(\d+)\}\|0\)\(\\\.\\d\{1,(\d+)\}\)\?", pats[0])
            assert m, pats[0]
            lex = f"rt::DecLex::Plain {{ int_digits: {int(m.group(1)) + 1}, frac_digits: {m.group(2)} }}"
        def bound(b):
            if b is None:
                return "None"
            v, incl = b
            d = v.split(".")
            scale = len(d[1]) if len(d) > 1 else 0
            mant = int(v.replace(".", ""))
            return f"Some(({mant}, {scale}, {'true' if incl else 'false'}))"
        out.append(f"const {name.upper()}_SPEC: rt::DecimalSpec = rt::DecimalSpec {{ total_digits: {f.get('totalDigits', 28)}, "
                   f"fraction_digits: {f.get('fractionDigits', 28)}, lex: {lex}, min: {bound(f.get('min'))}, max: {bound(f.get('max'))} }};\n")
        out.append(f"impl {name} {{\n")
        out.append("    /// Checks the schema's digit and range restrictions.\n")
        out.append(f"    pub fn new(value: Decimal) -> Result<Self, ValueError> {{\n        {name.upper()}_SPEC.check(value).map(Self)\n    }}\n")
        out.append("    /// The exact value.\n    pub const fn get(self) -> Decimal {\n        self.0\n    }\n}\n")
        out.append(f"rt::decimal_impls!({name}, {name.upper()}_SPEC);\n\n")
        return
    if kind == "int":
        def ib(b, lo):
            if b is None:
                return "None"
            v, incl = b
            n = int(v)
            if not incl:
                n = n + 1 if lo else n - 1
            return f"Some({n})"
        out.append("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\n")
        out.append(f"pub struct {name}(i64);\n")
        td = f.get("totalDigits")
        out.append(f"const {name.upper()}_SPEC: rt::IntSpec = rt::IntSpec {{ min: {ib(f.get('min'), True)}, max: {ib(f.get('max'), False)}, "
                   f"total_digits: {('Some(%d)' % td) if td else 'None'} }};\n")
        out.append(f"impl {name} {{\n")
        out.append("    /// Checks the schema's range restrictions.\n")
        out.append(f"    pub fn new(value: i64) -> Result<Self, ValueError> {{\n        {name.upper()}_SPEC.check(value).map(Self)\n    }}\n")
        out.append("    /// The value.\n    pub const fn get(self) -> i64 {\n        self.0\n    }\n}\n")
        out.append(f"rt::int_impls!({name}, {name.upper()}_SPEC);\n\n")
        return
    if kind == "date":
        mn = f.get("min")
        mx = f.get("max")
        out.append("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\n")
        out.append(f"pub struct {name}(Date);\n")
        out.append(f"const {name.upper()}_SPEC: rt::DateSpec = rt::DateSpec {{ min: {date_tuple(mn[0])}, max: {date_tuple(mx[0])} }};\n")
        out.append(f"impl {name} {{\n")
        out.append("    /// Checks the schema's date range.\n")
        out.append(f"    pub fn new(value: Date) -> Result<Self, ValueError> {{\n        {name.upper()}_SPEC.check(value).map(Self)\n    }}\n")
        out.append("    /// The date.\n    pub const fn get(self) -> Date {\n        self.0\n    }\n}\n")
        out.append(f"rt::date_impls!({name}, {name.upper()}_SPEC);\n\n")
        return
    if kind == "datetime":
        mn = f.get("min")
        mx = f.get("max")
        out.append("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\n")
        out.append(f"pub struct {name}(XsdDateTime);\n")
        out.append(f"const {name.upper()}_SPEC: rt::DateTimeSpec = rt::DateTimeSpec {{ min: {datetime_ts(mn[0]) if mn else 'i64::MIN'}, max: {datetime_ts(mx[0]) if mx else 'i64::MAX'} }};\n")
        out.append(f"impl {name} {{\n")
        out.append("    /// Checks the schema's date-time range.\n")
        out.append(f"    pub fn new(value: XsdDateTime) -> Result<Self, ValueError> {{\n        {name.upper()}_SPEC.check(value).map(Self)\n    }}\n")
        out.append("    /// The date-time.\n    pub const fn get(self) -> XsdDateTime {\n        self.0\n    }\n}\n")
        out.append(f"rt::datetime_impls!({name}, {name.upper()}_SPEC);\n\n")
        return
    raise Exception(kind)


def field_type(fd):
    if fd["k"] == "elem":
        t = fd["ty"]
        if fd["cx"] and fd["occ"] == "one" and False:
            t = f"Box<{t}>"
        return {"one": t, "opt": f"Option<{t}>", "many": f"Vec<{t}>"}[fd["occ"]]
    t = fd["ty"]
    return f"Option<{t}>" if fd["opt"] else t


def first_pat(names):
    return " | ".join(rust_str(n) for n in names)


def emit_fields_parse(fields, out, ind):
    for fd in fields:
        r = fd["rust"]
        if fd["k"] == "elem":
            x = rust_str(fd["xml"])
            if fd["occ"] == "one":
                assert fd.get("fixed") is None, "fixed required element: not in FA(3)"
                out.append(f"{ind}{r}: c.one({x})?,\n")
            elif fd["occ"] == "opt" and fd.get("fixed") is not None:
                out.append(f"{ind}{r}: {{\n{ind}    let v: Option<{fd['ty']}> = c.opt({x})?;\n"
                           f"{ind}    if let Some(v) = &v {{\n{ind}        rt::fixed_value(v.as_str(), {x}, {rust_str(fd['fixed'])})?;\n{ind}    }}\n"
                           f"{ind}    v\n{ind}}},\n")
            elif fd["occ"] == "opt":
                out.append(f"{ind}{r}: c.opt({x})?,\n")
            else:
                mx = fd["max"] if fd["max"] is not None else "usize::MAX"
                out.append(f"{ind}{r}: c.many({x}, {fd['min']}, {mx})?,\n")
        else:
            if fd["opt"]:
                out.append(f"{ind}{r}: if matches!(c.peek(), Some({first_pat(fd['first'])})) {{ Some({fd['ty']}::parse_seq(c)?) }} else {{ None }},\n")
            else:
                out.append(f"{ind}{r}: {fd['ty']}::parse_seq(c)?,\n")


def emit_fields_write(fields, out, ind, prefix="self."):
    for fd in fields:
        r = prefix + fd["rust"]
        if fd["k"] == "elem":
            x = rust_str(fd["xml"])
            fn = {"one": "one", "opt": "opt", "many": "many"}[fd["occ"]]
            out.append(f"{ind}w.{fn}({x}, &{r});\n")
        else:
            if fd["opt"]:
                out.append(f"{ind}if let Some(g) = &{r} {{\n{ind}    g.write_seq(w);\n{ind}}}\n")
            else:
                out.append(f"{ind}{r}.write_seq(w);\n")


def emit_fields_check(fields, out, ind):
    for fd in fields:
        r = "self." + fd["rust"]
        if fd["k"] == "elem" and fd["ty"] in SHARED_ENUMS:
            x = rust_str(fd["xml"])
            if fd["occ"] == "one":
                out.append(f"{ind}v.known({x}, &{r});\n")
            elif fd["occ"] == "opt":
                out.append(f"{ind}if let Some(x) = &{r} {{\n{ind}    v.known({x}, x);\n{ind}}}\n")
            else:
                out.append(f"{ind}for x in &{r} {{\n{ind}    v.known({x}, x);\n{ind}}}\n")
            if fd["occ"] == "many":
                mx = fd["max"] if fd["max"] is not None else "usize::MAX"
                out.append(f"{ind}v.count({x}, &{r}, {fd['min']}, {mx});\n")
            continue
        if fd["k"] == "elem":
            x = rust_str(fd["xml"])
            if fd["occ"] == "one":
                if fd["cx"]:
                    out.append(f"{ind}v.one({x}, &{r});\n")
                if fd.get("fixed") is not None:
                    out.append(f"{ind}v.fixed({x}, {r}.as_str(), {rust_str(fd['fixed'])});\n")
            elif fd["occ"] == "opt":
                if fd["cx"]:
                    out.append(f"{ind}v.opt({x}, &{r});\n")
                if fd.get("fixed") is not None:
                    out.append(f"{ind}if let Some(x) = &{r} {{\n{ind}    v.fixed({x}, x.as_str(), {rust_str(fd['fixed'])});\n{ind}}}\n")
            else:
                mx = fd["max"] if fd["max"] is not None else "usize::MAX"
                fn = "many" if fd["cx"] else "count"
                out.append(f"{ind}v.{fn}({x}, &{r}, {fd['min']}, {mx});\n")
        else:
            if fd["opt"]:
                out.append(f"{ind}if let Some(g) = &{r} {{\n{ind}    g.check(v);\n{ind}}}\n")
            else:
                out.append(f"{ind}{r}.check(v);\n")


def emit_struct(st, out):
    name = st["name"]
    doc = st["doc"] or name
    out.append(rdoc(doc))
    if st["elem"]:
        out.append(f"///\n/// Schema: `{st['scope']}`.\n")
    out.append("#[derive(Debug, Clone, PartialEq, Eq)]\n")
    out.append(f"pub struct {name} {{\n")
    if st["simple"]:
        out.append(f"    /// The element's text.\n    pub value: {st['simple']},\n")
    for a in st["attrs"]:
        out.append(rdoc(f"`@{a['xml']}`" + (f" — {a['doc']}" if a["doc"] else ""), "    "))
        t = a["ty"] if a["req"] else f"Option<{a['ty']}>"
        out.append(f"    pub {a['rust']}: {t},\n")
    for fd in st["fields"]:
        if fd["k"] == "elem":
            d = f"`{fd['xml']}`" + (f" — {fd['doc']}" if fd["doc"] else "")
        else:
            d = fd["doc"]
        out.append(rdoc(d, "    "))
        out.append(f"    pub {fd['rust']}: {field_type(fd)},\n")
    out.append("}\n")
    out.append(f"impl {name} {{\n")
    if st["simple"] is None and not st["elem"]:
        out.append("    pub(crate) fn parse_seq(c: &mut Cursor<'_, '_>) -> Result<Self, Error> {\n")
        out.append("        Ok(Self {\n")
        emit_fields_parse(st["fields"], out, "            ")
        out.append("        })\n    }\n")
    if st["simple"] is None:
        out.append("    pub(crate) fn write_seq(&self, w: &mut Writer) {\n")
        if not st["fields"]:
            out.append("        let _ = w;\n")
        emit_fields_write(st["fields"], out, "        ")
        out.append("    }\n")
    out.append("    pub(crate) fn check(&self, v: &mut Check) {\n")
    if not any(fd["k"] != "elem" or fd["cx"] or fd["occ"] == "many" or fd.get("fixed") or fd["ty"] in SHARED_ENUMS
               for fd in st["fields"]):
        out.append("        let _ = v;\n")
    emit_fields_check(st["fields"], out, "        ")
    out.append("    }\n}\n")
    if st["elem"]:
        out.append(f"impl rt::XmlElement for {name} {{\n")
        out.append("    fn from_node(node: Node<'_, '_>) -> Result<Self, Error> {\n")
        names = ", ".join(rust_str(a["xml"]) for a in st["attrs"])
        out.append(f"        rt::check_attrs(&node, &[{names}])?;\n")
        # attributes first: the start tag is current only until the content is read
        for a in st["attrs"]:
            fn = "attr" if a["req"] else "attr_opt"
            out.append(f"        let {a['rust']} = rt::{fn}(&node, {rust_str(a['xml'])})?;\n")
        if st["simple"] is None:
            out.append("        let mut cur = Cursor::new(node)?;\n        let c = &mut cur;\n")
        out.append("        let r = Self {\n")
        if st["simple"]:
            out.append("            value: rt::simple_text(node)?,\n")
        for a in st["attrs"]:
            out.append(f"            {a['rust']},\n")
        emit_fields_parse(st["fields"], out, "            ")
        out.append("        };\n")
        if st["simple"] is None:
            out.append("        cur.finish()?;\n")
        out.append("        Ok(r)\n    }\n")
        out.append("    fn write_node(&self, name: &'static str, w: &mut Writer) {\n")
        out.append("        w.open(name);\n")
        for a in st["attrs"]:
            if a["req"]:
                out.append(f"        w.attr({rust_str(a['xml'])}, &self.{a['rust']});\n")
            else:
                out.append(f"        if let Some(a) = &self.{a['rust']} {{\n            w.attr({rust_str(a['xml'])}, a);\n        }}\n")
        out.append("        w.open_end();\n")
        if st["simple"]:
            out.append("        rt::XmlValue::write_xml(&self.value, w.out());\n")
        else:
            out.append("        self.write_seq(w);\n")
        out.append("        w.close(name);\n    }\n")
        out.append("    fn check_node(&self, v: &mut Check) {\n        self.check(v);\n    }\n}\n")
    out.append("\n")


def emit_enum(en, out):
    name = en["name"]
    out.append(rdoc("Choice: " + " | ".join(", ".join(f"`{x}`" for x in v["first"][:1]) for v in en["variants"]) + "."))
    out.append("#[derive(Debug, Clone, PartialEq, Eq)]\n")
    out.append(f"pub enum {name} {{\n")
    for v in en["variants"]:
        d = (f"`{v['xml']}`" + (f" — {v['doc']}" if v["doc"] else "")) if v["k"] == "elem" else v["doc"]
        out.append(rdoc(d, "    "))
        out.append(f"    {v['name']}({v['ty']}),\n")
    out.append("}\n")
    out.append(f"impl {name} {{\n")
    out.append("    pub(crate) fn parse_seq(c: &mut Cursor<'_, '_>) -> Result<Self, Error> {\n")
    out.append("        match c.peek() {\n")
    allnames = []
    for v in en["variants"]:
        allnames += v["first"]
        if v["k"] == "elem":
            out.append(f"            Some({rust_str(v['xml'])}) => Ok(Self::{v['name']}(c.one({rust_str(v['xml'])})?)),\n")
        else:
            out.append(f"            Some({first_pat(v['first'])}) => Ok(Self::{v['name']}({v['ty']}::parse_seq(c)?)),\n")
    out.append(f"            _ => Err(c.expected(&[{', '.join(rust_str(n) for n in allnames)}])),\n")
    out.append("        }\n    }\n")
    out.append("    pub(crate) fn write_seq(&self, w: &mut Writer) {\n        match self {\n")
    for v in en["variants"]:
        if v["k"] == "elem":
            out.append(f"            Self::{v['name']}(x) => w.one({rust_str(v['xml'])}, x),\n")
        else:
            out.append(f"            Self::{v['name']}(g) => g.write_seq(w),\n")
    out.append("        }\n    }\n")
    out.append("    pub(crate) fn check(&self, v: &mut Check) {\n        let _ = &v;\n        match self {\n")
    for v in en["variants"]:
        if v["k"] == "elem":
            if v["cx"]:
                out.append(f"            Self::{v['name']}(x) => v.one({rust_str(v['xml'])}, x),\n")
            else:
                out.append(f"            Self::{v['name']}(_) => {{}}\n")
        else:
            out.append(f"            Self::{v['name']}(g) => g.check(v),\n")
    out.append("        }\n    }\n}\n\n")


def generate():
    root = FA.find(XS + "element")
    assert root.get("name") == "Faktura"
    FIELDS_TABLE.append(("", "Faktura", "Faktura"))
    gen_complex(root.find(XS + "complexType"), "Faktura", doc_of(root), "Faktura")
    out = []
    out.append("// @generated by crates/ksef-fa/codegen/gen.py from spec/fa/schemat_FA(3)_v1-0E.xsd and its\n")
    out.append("// base schemas. Do not edit by hand: change the generator and run it again.\n")
    out.append("// Check for drift with `python3 crates/ksef-fa/codegen/gen.py --check`.\n\n")
    out.append("use crate::rt::{self, Check, Cursor, Error, Node, ValueError, Writer};\n")
    out.append("use crate::XsdDateTime;\nuse rust_decimal::Decimal;\nuse time::Date;\n\n")
    out.append(f"/// The FA(3) target namespace.\npub const NAMESPACE: &str = {rust_str(TNS)};\n\n")
    out.append("// ------------------------------------------------------------ simple types\n\n")
    for n in sorted(SIMPLE_ORDER):
        f, doc, xsd = SIMPLE[n]
        emit_simple(n, f, doc, xsd, out)
    out.append("// ------------------------------------------------------------ complex types\n\n")
    for st in STRUCTS:
        emit_struct(st, out)
    out.append("// ------------------------------------------------------------ choices\n\n")
    for en in ENUMS:
        emit_enum(en, out)
    out.append("/// Every element and attribute of the schema with the Rust item that holds it:\n")
    out.append("/// `(scope, XML name, Rust path)`. The scope is a named complex type or the element path of an\n")
    out.append("/// anonymous one. A test walks the XSD and checks every declaration is listed here.\n")
    out.append("#[doc(hidden)]\npub const SCHEMA_FIELDS: &[(&str, &str, &str)] = &[\n")
    for s, x, r in FIELDS_TABLE:
        out.append(f"    ({rust_str(s)}, {rust_str(x)}, {rust_str(r)}),\n")
    out.append("];\n")
    text = "".join(out)
    return text


def main():
    text = generate()
    if "--check" in sys.argv:
        try:
            with open(OUT, encoding="utf-8") as fh:
                cur = fh.read()
        except FileNotFoundError:
            cur = ""
        if cur != text:
            print(f"{OUT} is out of date: run python3 crates/ksef-fa/codegen/gen.py", file=sys.stderr)
            sys.exit(1)
        print("ksef-fa generated code is up to date")
        return
    with open(OUT, "w", encoding="utf-8") as fh:
        fh.write(text)
    print(f"wrote {OUT}: {len(STRUCTS)} structs, {len(ENUMS)} choice enums, {len(SIMPLE)} simple types")


if __name__ == "__main__":
    main()
