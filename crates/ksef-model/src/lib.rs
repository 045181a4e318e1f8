#![doc = "KSeF 2.0 domain model (work in progress)."]
