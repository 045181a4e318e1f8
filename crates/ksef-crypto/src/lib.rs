#![doc = "KSeF 2.0 cryptography (work in progress)."]
