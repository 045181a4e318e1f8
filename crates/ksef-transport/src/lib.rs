#![doc = "KSeF 2.0 HTTP transport: one typed async call per API operation. (work in progress)"]
