#!/usr/bin/env python3
"""Canonicalize an XPath-selected document subset with libxml2 (ctypes), the library xmlsec1 uses.
usage: c14n_oracle.py FILE MODE(10|11|exc) XPATH [prefix=uri ...]  -> canonical bytes on stdout"""
import ctypes, sys
lib = ctypes.CDLL("libxml2.so.2")
lib.xmlReadMemory.restype = ctypes.c_void_p
lib.xmlReadMemory.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
lib.xmlXPathNewContext.restype = ctypes.c_void_p
lib.xmlXPathNewContext.argtypes = [ctypes.c_void_p]
lib.xmlXPathRegisterNs.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
lib.xmlXPathEvalExpression.restype = ctypes.c_void_p
lib.xmlXPathEvalExpression.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
lib.xmlC14NDocDumpMemory.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
path, mode, xpath = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(path, "rb").read()
XML_PARSE_NOENT, XML_PARSE_DTDATTR = 2, 8
doc = lib.xmlReadMemory(data, len(data), b"noname.xml", None, XML_PARSE_NOENT | XML_PARSE_DTDATTR)
ctx = lib.xmlXPathNewContext(doc)
for kv in sys.argv[4:]:
    k, v = kv.split("=", 1)
    lib.xmlXPathRegisterNs(ctx, k.encode(), v.encode())
obj = lib.xmlXPathEvalExpression(xpath.encode(), ctx)
nodeset = ctypes.c_void_p.from_address(obj + 8).value
out = ctypes.c_char_p()
m = {"10": 0, "exc": 1, "11": 2}[mode]
n = lib.xmlC14NDocDumpMemory(doc, nodeset, m, None, 0, ctypes.byref(out))
if n < 0:
    sys.exit("c14n failed")
sys.stdout.buffer.write(ctypes.string_at(out, n))
